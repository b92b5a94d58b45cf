"""What Slack sends an app: event and click payloads, and Events API requests signed the way
Slack signs them (v0 HMAC-SHA256 over `v0:{timestamp}:{body}`).

The payload builders give the bodies both transports carry: the Events API posts them to the
webhook (`SlackSigner`), Socket Mode wraps them in envelopes (tests/fake_socket_mode.py).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Optional
from urllib.parse import urlencode

import requests

TEAM_ID = "T0SEGMENTS"
BOT_USER_ID = "U0SEGBOT"
BOT_ID = "B0SEGBOT"
APP_ID = "A0SEGAPP"

_ids = itertools.count(1)


def unique(prefix: str) -> str:
    """A fresh Slack-looking id, e.g. unique("C") -> "C0T1A2B3C4"."""
    return f"{prefix}0T{next(_ids)}{uuid.uuid4().hex[:6].upper()}"


def new_ts() -> str:
    return f"{time.time():.6f}"


# --- payloads --------------------------------------------------------------------------------
def event_callback(
    event: Dict[str, Any], team_id: str = TEAM_ID, event_id: Optional[str] = None, **extra: Any
) -> Dict[str, Any]:
    """The `event_callback` wrapper around `event`, as the Events API delivers it."""
    return {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "api_app_id": APP_ID,
        "event": {"team": team_id, "event_ts": event.get("ts"), **event},
        "type": "event_callback",
        "event_id": event_id or unique("Ev"),
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        **extra,
    }


def mention_event(text: str, channel: str, user: str, ts: Optional[str] = None, **fields: Any):
    """An app_mention event: "<@BOT> text" in a channel."""
    return {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts or new_ts(),
        "channel": channel,
        **fields,
    }


def direct_event(text: str, channel: str, user: str, ts: Optional[str] = None, **fields: Any):
    """A message.im event: a direct message to the bot."""
    return {
        "type": "message",
        "channel_type": "im",
        "user": user,
        "text": text,
        "ts": ts or new_ts(),
        "channel": channel,
        **fields,
    }


def buttons_message(choices: Dict[str, str], text: str = "Which segment?") -> Dict[str, Any]:
    """A message of the bot's with one button per choice (title -> value), as a click
    payload carries it."""
    elements = [
        {
            "type": "button",
            "action_id": f"choice_{index}",
            "text": {"type": "plain_text", "text": title},
            "value": value,
        }
        for index, (title, value) in enumerate(choices.items())
    ]
    return {"ts": new_ts(), "text": text, "blocks": [{"type": "actions", "elements": elements}]}


def block_actions(
    message: Dict[str, Any], channel: str, user: str, value: str, team_id: str = TEAM_ID
) -> Dict[str, Any]:
    """A block_actions payload: `user` clicked the button with `value` on `message`."""
    button = next(
        element
        for block in message.get("blocks", [])
        if block.get("type") == "actions"
        for element in block["elements"]
        if element.get("value") == value
    )
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "pm", "name": "pm", "team_id": team_id},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
            "thread_ts": message.get("thread_ts"),
        },
        "trigger_id": unique("Tr"),
        "team": {"id": team_id, "domain": "segments"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "product"},
        "message": message,
        "state": {"values": {}},
        "response_url": "https://hooks.slack.test/actions/unused",
        "actions": [
            {
                "action_id": button["action_id"],
                "block_id": "choices",
                "text": button["text"],
                "value": value,
                "type": "button",
                "action_ts": new_ts(),
            }
        ],
    }


# --- signed requests to the Events API webhook -----------------------------------------------
def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Request:
    """A request to send to the Slack webhook: body bytes and headers (incl. signature)."""

    body: bytes
    headers: Dict[str, str]


class SlackSigner:
    """Builds and posts Slack requests to the Rasa server's Slack webhook."""

    def __init__(self, webhook_url: str, secret: str, team_id: str = TEAM_ID) -> None:
        self.webhook_url = webhook_url
        self.secret = secret
        self.team_id = team_id

    def sign(
        self,
        body: bytes,
        content_type: str,
        timestamp: Optional[int] = None,
        secret: Optional[str] = None,
    ) -> Request:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return Request(
            body,
            {
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": signature(secret or self.secret, stamp, body),
                "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            },
        )

    def event_body(self, event: Dict[str, Any], event_id: Optional[str] = None, **extra: Any):
        return json.dumps(event_callback(event, self.team_id, event_id, **extra)).encode()

    def mention(self, text: str, channel: str, user: str, ts: Optional[str] = None, **kw: Any):
        """A signed app_mention event."""
        event = mention_event(text, channel, user, ts, **kw.pop("event", {}))
        return self.sign(self.event_body(event, **kw), "application/json")

    def direct(self, text: str, channel: str, user: str, ts: Optional[str] = None, **kw: Any):
        """A signed message.im event."""
        event = direct_event(text, channel, user, ts, **kw.pop("event", {}))
        return self.sign(self.event_body(event, **kw), "application/json")

    def click(self, message: Dict[str, Any], channel: str, user: str, value: str) -> Request:
        """A signed block_actions payload (form-encoded, as Slack posts it)."""
        payload = block_actions(message, channel, user, value, self.team_id)
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.sign(body, "application/x-www-form-urlencoded")

    def post(self, request: Request, **headers: str) -> requests.Response:
        """POST `request` (plus extra headers, e.g. X-Slack-Retry-Num) to the webhook."""
        return requests.post(
            self.webhook_url,
            data=request.body,
            headers={**request.headers, **headers},
            timeout=30,
        )
