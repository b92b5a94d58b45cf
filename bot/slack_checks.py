"""Slack request checks: settings from the environment, replay memory, body parsing and the
shapes of events and clicks (used by bot/slack.py before Rasa's handler sees a request)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from http import HTTPStatus
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import parse_qs

from sanic.request import Request

from bot.rest import Refused, too_long
from bot.slack_output import api_base_url

GRANULARITIES = ("thread", "channel", "sender")
# Slack answers time out after 3 s and are retried; a request older than this is refused.
MAX_REQUEST_AGE = 5 * 60
# Message subtypes that carry a person's words; every other subtype is ignored.
USER_SUBTYPES = {None, "", "file_share", "thread_broadcast", "me_message"}
# Rasa's handler drops retries for the reasons listed here; we decide by event_id instead.
NEVER_DROP_RETRIES = ("-",)
SLACK_ID = re.compile(r"^[A-Za-z0-9]{1,40}$")
SLACK_TS = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,9})?$")
EVENT_IDS = ("user", "channel", "team", "bot_id")
EVENT_TEXTS = ("text", "subtype", "type", "channel_type")
EVENT_STAMPS = ("ts", "thread_ts", "event_ts")


# --- settings --------------------------------------------------------------------------------
def split_ids(value: Any) -> List[str]:
    """ "C1, C2" or ["C1", "C2"] -> ["C1", "C2"]."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [item.strip() for item in items if item and item.strip()]


def settings_from_env(env: Mapping[str, str]) -> Dict[str, Any]:
    """Non-secret channel settings from the environment (for the credentials file)."""
    granularity = env.get("SLACK_CONVERSATION_GRANULARITY", "").strip() or "thread"
    return {
        "use_threads": True,
        "conversation_granularity": granularity,
        "api_url": api_base_url(env.get("SLACK_API_URL")),
        "allowed_channels": split_ids(env.get("SLACK_ALLOWED_CHANNELS")),
        "allowed_teams": split_ids(env.get("SLACK_ALLOWED_TEAMS")),
    }


# --- replay protection -----------------------------------------------------------------------
class SeenCache:
    """Keys seen in the last `ttl` seconds (at most `max_items`): a replay detector."""

    def __init__(self, ttl: float, max_items: int = 100_000) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self._items: "OrderedDict[str, float]" = OrderedDict()
        self._lock = threading.Lock()

    def seen_before(self, key: str, now: Optional[float] = None) -> bool:
        """True if `key` was seen within `ttl`; records it otherwise."""
        now = time.time() if now is None else now
        with self._lock:
            while self._items:
                oldest, stamp = next(iter(self._items.items()))
                if now - stamp <= self.ttl and len(self._items) < self.max_items:
                    break
                self._items.popitem(last=False)
            if key in self._items:
                return True
            self._items[key] = now
            return False


# --- input -----------------------------------------------------------------------------------
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
