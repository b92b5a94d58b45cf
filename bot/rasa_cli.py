"""The `rasa` command line, quiet and with one hot spot fixed, for our servers and the chat.

Quiet: Sanic adds `filterwarnings("once", DeprecationWarning)` when it is imported and Rasa
adds "once" for UserWarning, which undoes PYTHONWARNINGS=ignore. Importing Sanic and matplotlib
(whose pyparsing use warns at import) first, with warnings ignored, keeps the chat clean.

Fast: Rasa checks every action server response with `jsonschema.validate()`, which validates
the schema itself again on every call; measured here that was about 40% of the Rasa server's
time per message. `fast_action_result_validation` builds the validator once instead, and on a
bad response falls back to Rasa's own check, so the errors are unchanged.
"""

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


if __name__ == "__main__":
    from rasa.__main__ import main

    fast_action_result_validation()
    sys.argv[0] = "rasa"
    main()
