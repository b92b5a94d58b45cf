"""Which input channels the Rasa server offers, written as a credentials file at start-up.

Always: REST (`/webhooks/rest/webhook`, bot/rest.py: Rasa's REST channel with input limits)
and the web chat page (`/webhooks/webchat/`).
Slack (`/webhooks/slack/webhook`) only when SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are both
set. The file never contains the token or the signing secret: the Slack channel reads them
from the Rasa server's environment, so nothing secret is written to disk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import yaml

WEBCHAT_CHANNEL = "bot.webchat.WebChatInput"
SLACK_CHANNEL = "bot.slack.SegmentSlackInput"
REST_CHANNEL = "bot.rest.RestChannel"
SLACK_SECRETS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")


def slack_enabled(env: Mapping[str, str]) -> bool:
    """True when both the bot token and the signing secret are set."""
    return all(env.get(name, "").strip() for name in SLACK_SECRETS)


def slack_settings(env: Mapping[str, str]) -> Dict[str, Any]:
    """The Slack channel's non-secret settings, from the environment."""
    from bot.slack import settings_from_env

    return settings_from_env(env)


def channel_settings(env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """The REST and web chat channels always; Slack when its token and secret are set."""
    env = os.environ if env is None else env
    settings: Dict[str, Any] = {REST_CHANNEL: None, WEBCHAT_CHANNEL: None}
    if slack_enabled(env):
        settings[SLACK_CHANNEL] = slack_settings(env)
    return settings


def write_credentials(folder: Path, env: Optional[Mapping[str, str]] = None) -> Path:
    """Write the credentials file for `rasa run --credentials` and return its path."""
    path = folder / "credentials.yml"
    path.write_text(yaml.safe_dump(channel_settings(env), sort_keys=False))
    return path
