"""Slack request checks: body parsing and the shapes of events and clicks (used by the Events
API channel and the shared handler before the assistant sees a payload)."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any, Dict, Optional
from urllib.parse import parse_qs

from sanic.request import Request

from bot.rest import Refused, too_long

# Slack answers time out after 3 s and are retried; a request older than this is refused.
MAX_REQUEST_AGE = 5 * 60
# Rasa's handler drops retries for the reasons listed here; we decide by event_id instead.
NEVER_DROP_RETRIES = ("-",)
SLACK_ID = re.compile(r"^[A-Za-z0-9]{1,40}$")
SLACK_TS = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,9})?$")
EVENT_IDS = ("user", "channel", "team", "bot_id")
EVENT_TEXTS = ("text", "subtype", "type", "channel_type")
EVENT_STAMPS = ("ts", "thread_ts", "event_ts")


# --- parsing and shapes ----------------------------------------------------------------------
def media_type(request: Request) -> str:
    """The request's content type without parameters, lower case."""
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower()


def parse_body(request: Request) -> Optional[Dict[str, Any]]:
    """The event (JSON body) or the interactive payload (form field `payload`)."""
    try:
        kind = media_type(request)
        if kind == "application/json":
            body = json.loads(request.body or b"{}")
        elif kind == "application/x-www-form-urlencoded":
            body = json.loads(parse_qs(request.body.decode("utf-8"))["payload"][0])
        else:
            return None
    except (ValueError, KeyError, IndexError, UnicodeDecodeError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def as_text(value: Any) -> str:
    """`value` if it is a string, else "" (for fields of untrusted shape)."""
    return value if isinstance(value, str) else ""


def _bad(what: str) -> Refused:
    return Refused(HTTPStatus.BAD_REQUEST, f"unreadable {what}")


def checked_event(event: Any) -> Dict[str, Any]:
    """The Events API `event`, if its fields have the shapes Slack sends; else `Refused`."""
    if not isinstance(event, dict):
        raise _bad("event")
    for key in EVENT_IDS + EVENT_TEXTS + EVENT_STAMPS:
        value = event.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _bad(f"event.{key}")
        if key in EVENT_IDS and not SLACK_ID.match(value):
            raise _bad(f"event.{key}")
        if key in EVENT_STAMPS and not SLACK_TS.match(value):
            raise _bad(f"event.{key}")
    return event


def checked_action(body: Dict[str, Any]) -> None:
    """A block_actions payload with the shapes Rasa's handler reads; else `Refused`."""
    user, actions = body.get("user"), body.get("actions")
    if not isinstance(user, dict) or not SLACK_ID.match(as_text(user.get("id"))):
        raise _bad("user")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise _bad("actions")
    for key in ("channel", "container", "team", "message", "enterprise"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            raise _bad(key)
    value = actions[0].get("value")
    if value is not None and (not isinstance(value, str) or too_long(value)):
        raise _bad("action value")
