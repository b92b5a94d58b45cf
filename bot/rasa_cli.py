"""The `rasa` command line, quiet, polite and with one hot spot fixed, for our servers and chat.

Quiet: Sanic adds `filterwarnings("once", DeprecationWarning)` when it is imported and Rasa
adds "once" for UserWarning, which undoes PYTHONWARNINGS=ignore. Importing Sanic and matplotlib
(whose pyparsing use warns at import) first, with warnings ignored, keeps the chat clean.

Fast: Rasa checks every action server response with `jsonschema.validate()`, which validates
the schema itself again on every call; measured here that was about 40% of the Rasa server's
time per message. `fast_action_result_validation` builds the validator once instead, and on a
bad response falls back to Rasa's own check, so the errors are unchanged.

Polite: when the action server is down, restarting, too slow (`SI_ACTION_TIMEOUT` seconds,
default 30) or fails, Rasa logs the error and the user gets no answer at all.
`polite_action_failures` makes the failed action answer with a short message saying so.

Told: the terminal (`rasa shell`'s cmdline channel) gets the same notices as REST, web chat
and Slack when a turn could not be saved or a conversation could not be loaded.

Safe: with `--enable-api`, the API token comes from SI_API_TOKEN in the environment.
"""

import os
import sys
import warnings

import sanic  # noqa: F401 - imported for its side effect on the warning filters

warnings.simplefilter("ignore")

import matplotlib.pyplot  # noqa: E402,F401 - warns at import; import it while ignored


def fast_action_result_validation() -> None:
    """Validate action server responses with a validator built once (same errors as Rasa)."""
    from jsonschema import ValidationError
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator = validator_for(schema)(schema)
    rasa_validation = RemoteAction._validate_action_result

    def validate(self, result):
        try:
            validator.validate(result)
            return True
        except ValidationError:
            return rasa_validation(self, result)  # raises with Rasa's message

    RemoteAction._validate_action_result = validate


def polite_action_failures() -> None:
    """Custom actions that can't run answer with a message instead of silence."""
    import asyncio
    import logging

    from aiohttp import ClientResponseError
    from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
    from rasa.shared.core.events import BotUttered
    from rasa.shared.exceptions import RasaException

    from bot.notices import ACTION_FAILED, ACTION_SERVER_DOWN

    logger = logging.getLogger("bot.rasa_cli")
    deadline = float(os.environ.get("SI_ACTION_TIMEOUT", "30"))
    rasa_run = RemoteAction.run

    async def run(self, output_channel, nlg, tracker, domain):
        try:
            return await asyncio.wait_for(
                rasa_run(self, output_channel, nlg, tracker, domain), deadline
            )
        except ActionExecutionRejection:
            raise
        except (RasaException, asyncio.TimeoutError) as exc:
            failed = isinstance(getattr(exc, "__cause__", None), ClientResponseError)
            logger.error("Custom action %s failed: %s", self.name(), exc or "timed out")
            return [BotUttered(ACTION_FAILED if failed else ACTION_SERVER_DOWN)]

    RemoteAction.run = run


def terminal_notices() -> None:
    """`rasa shell`'s channel ends each answer with the conversation's notice, if any."""
    from rasa.core.channels.console import CmdlineInput

    from bot.notices import deliver_notices

    blueprint = CmdlineInput.blueprint

    def with_notices(self, on_new_message):
        return blueprint(self, deliver_notices(on_new_message))

    CmdlineInput.blueprint = with_notices


if __name__ == "__main__":
    from rasa.__main__ import main

    fast_action_result_validation()
    polite_action_failures()
    terminal_notices()
    token = os.environ.get("SI_API_TOKEN", "").strip()
    if token and "--enable-api" in sys.argv:  # from the environment: not in the process list
        sys.argv += ["--auth-token", token]
    sys.argv[0] = "rasa"
    main()
