"""Which input channels the Rasa server offers, written as a credentials file at start-up.

Always: REST (`/webhooks/rest/webhook`, bot/rest.py: Rasa's REST channel with input limits)
and the web chat page (`/webhooks/webchat/`).
Slack, when its tokens are set (both can run side by side; a Slack app uses one or the other):

- Socket Mode (bot/slack_socket.py): SLACK_BOT_TOKEN and SLACK_APP_TOKEN; the server connects
  out to Slack, no public URL needed;
- the Events API (`/webhooks/slack/webhook`, bot/slack.py): SLACK_BOT_TOKEN and
  SLACK_SIGNING_SECRET; Slack posts to a public HTTPS address in front of the server.

The file never contains a token or the signing secret: the Slack channels read them from the
Rasa server's environment, so nothing secret is written to disk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import yaml

WEBCHAT_CHANNEL = "bot.webchat.WebChatInput"
SLACK_CHANNEL = "bot.slack.SegmentSlackInput"
SLACK_SOCKET_CHANNEL = "bot.slack_socket.SlackSocketModeInput"
REST_CHANNEL = "bot.rest.RestChannel"
SLACK_SECRETS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
SOCKET_MODE_SECRETS = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN")


def _all_set(env: Mapping[str, str], names) -> bool:
    return all(env.get(name, "").strip() for name in names)


def slack_enabled(env: Mapping[str, str]) -> bool:
    """True when the Events API is configured: the bot token and the signing secret."""
    return _all_set(env, SLACK_SECRETS)


def socket_mode_enabled(env: Mapping[str, str]) -> bool:
    """True when Socket Mode is configured: the bot token and the app-level token."""
    return _all_set(env, SOCKET_MODE_SECRETS)


def slack_settings(env: Mapping[str, str]) -> Dict[str, Any]:
    """The Slack channels' non-secret settings, from the environment."""
    from bot.slack_handler import settings_from_env

    return settings_from_env(env)


def channel_settings(env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """The REST and web chat channels always; each Slack channel when its tokens are set."""
    env = os.environ if env is None else env
    settings: Dict[str, Any] = {REST_CHANNEL: None, WEBCHAT_CHANNEL: None}
    if slack_enabled(env):
        settings[SLACK_CHANNEL] = slack_settings(env)
    if socket_mode_enabled(env):
        settings[SLACK_SOCKET_CHANNEL] = slack_settings(env)
    return settings


def slack_banner(env: Mapping[str, str], rasa_url: str) -> List[str]:
    """The start-up lines that say how Slack is connected (or how to connect it)."""
    lines = []
    if socket_mode_enabled(env):
        lines.append(
            "Slack:         Socket Mode (SLACK_APP_TOKEN): connecting out to Slack, "
            f"status at {rasa_url}/webhooks/slack_socket/"
        )
    if slack_enabled(env):
        lines.append(f"Slack webhook: {rasa_url}/webhooks/slack/webhook (Events API)")
    return lines or [
        "Slack:         off (set SLACK_BOT_TOKEN, and SLACK_APP_TOKEN for Socket Mode or "
        "SLACK_SIGNING_SECRET for the Events API)"
    ]


def write_credentials(folder: Path, env: Optional[Mapping[str, str]] = None) -> Path:
    """Write the credentials file for `rasa run --credentials` and return its path."""
    path = folder / "credentials.yml"
    path.write_text(yaml.safe_dump(channel_settings(env), sort_keys=False))
    return path
