"""The REST channel (`/webhooks/rest/webhook`) with input limits, shared with the web chat.

`RestChannel` replaces Rasa's RestInput under the same name ("rest"): it takes
`{"sender": id, "message": text, "metadata": {...}}` and answers with the assistant's
replies as a JSON list, like Rasa's, but refuses what Rasa's lets through:

- a body that is not a JSON object (arrays, null, strings, bad JSON), or over
  `MAX_BODY_BYTES`: 400 / 413 (the Rasa server refuses any body over 1 MB before reading
  it: SANIC_REQUEST_MAX_SIZE, bot/processes.py);
- a sender id that is not 1-128 letters, digits or `_ - . : @ + =` (so it always fits the
  `events.sender_id` column): 400;
- a message that is not a non-empty string, or longer than `MAX_MESSAGE_CHARS` characters
  or `MAX_MESSAGE_JSON` bytes once JSON-escaped (an emoji takes 12 bytes there, and the
  stored user event holds the text three times, so this keeps it far below the 64 KB
  `events.data` column): 400 / 413. Control characters (NUL...) become spaces;
- metadata that is not an object or over `MAX_METADATA_JSON` bytes: 400 / 413.

Every refusal is a JSON `{"error": "..."}`; nothing reaches the NLU. Rasa's `?stream=true`
variant is not offered. A turn the tracker store could not save ends with a notice saying
so (bot/notices.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Dict, Optional, Pattern, Text, Tuple

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.lock_store import LockError
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.notices import NOT_TAKEN, deliver_notices

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_MESSAGE_CHARS = 2000
MAX_MESSAGE_JSON = 8000
MAX_METADATA_JSON = 2000
REST_SENDER = re.compile(r"^[A-Za-z0-9_.:@+=-]{1,128}$")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class Refused(Exception):
    """A request the channel does not take: HTTP status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error(status: int, message: str) -> HTTPResponse:
    """A JSON error response with the channel's security headers."""
    return response.json({"error": message}, status=status, headers=SECURITY_HEADERS)


TOO_LONG = f"message too long (at most {MAX_MESSAGE_CHARS:,} characters)"


def too_long(text: str) -> bool:
    """Over the character limit, or over the byte limit once JSON-escaped (emoji: 12 bytes)."""
    return len(text) > MAX_MESSAGE_CHARS or len(json.dumps(text)) > MAX_MESSAGE_JSON


def message_text(value: Any) -> str:
    """A user message, checked: a non-empty string within the limits, control characters
    replaced by spaces. Raises `Refused`."""
    if not isinstance(value, str):
        raise Refused(HTTPStatus.BAD_REQUEST, "message: a non-empty string")
    text = CONTROL.sub(" ", value).strip()
    if not text:
        raise Refused(HTTPStatus.BAD_REQUEST, "message: a non-empty string")
    if too_long(text):
        raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, TOO_LONG)
    return text


def parse_message(
    request: Request, sender_rule: Pattern[str], sender_help: str
) -> Tuple[str, str, Optional[Dict[str, Any]]]:
    """(sender, text, metadata) of a message request, or `Refused`."""
    if len(request.body or b"") > MAX_BODY_BYTES:
        raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise Refused(HTTPStatus.BAD_REQUEST, "expected a JSON object")
    sender = body.get("sender")
    if not isinstance(sender, str) or not sender_rule.match(sender):
        raise Refused(HTTPStatus.BAD_REQUEST, f"sender: {sender_help}")
    text = message_text(body.get("message"))
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise Refused(HTTPStatus.BAD_REQUEST, "metadata: a JSON object")
    if metadata and len(json.dumps(metadata)) > MAX_METADATA_JSON:
        raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "metadata too large")
    return sender, text, metadata or None


class AnswerCollector(CollectingOutputChannel):
    """Each of our answers as one JSON message: its text whole (Rasa's collector splits it
    at blank lines, which cuts tables), with its structured form (`custom`: the reply, a
    chart or an export), buttons and image, so a client reads them together."""

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        custom = message.get("custom")
        if isinstance(custom, dict) and {"reply", "chart", "export"} & set(custom):
            await self._persist_message(
                self._message(
                    recipient_id,
                    text=message.get("text"),
                    image=message.get("image"),
                    buttons=message.get("buttons"),
                    custom=custom,
                )
            )
            return
        await super().send_response(recipient_id, message)


async def answer(
    on_new_message: Callable[[UserMessage], Awaitable[Any]],
    sender: str,
    text: str,
    channel: str,
    metadata: Optional[Dict[str, Any]] = None,
) -> HTTPResponse:
    """Run the turn and return the replies (and any notice) as a JSON list."""
    collector = AnswerCollector()
    try:
        await deliver_notices(on_new_message)(
            UserMessage(text, collector, sender, input_channel=channel, metadata=metadata)
        )
    except asyncio.CancelledError:
        logger.error("%s message timed out", channel)
    except LockError as exc:  # the Redis lock store of several servers is not answering
        logger.error("%s message not taken: %s", channel, exc)
        collector.messages.append({"recipient_id": sender, "text": NOT_TAKEN})
    except Exception:  # noqa: BLE001 - like Rasa's REST channel: answer what we have
        logger.exception("%s message failed", channel)
    return response.json(collector.messages, headers=SECURITY_HEADERS)


def storage_report(request: Request) -> Optional[Dict[str, Any]]:
    """How conversation storage is doing (turns held for the database, writes failing), if
    known. No error text: this route is as public as the web chat."""
    agent = getattr(request.app.ctx, "agent", None)
    store = getattr(agent, "tracker_store", None)
    store = getattr(store, "_tracker_store", store)  # inside Rasa's FailSafeTrackerStore
    writer = getattr(store, "writer", None)
    if writer is None:
        return None
    return {
        "held_turns": len(writer),
        "writes": "failing" if writer.last_error else "ok",
        "written_turns": writer.written_turns,
    }


class RestChannel(RestInput):
    """Rasa's REST channel ("rest") with the input limits of this module."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        rest = Blueprint("rest_webhook", __name__)

        @rest.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok", "conversations": storage_report(request)})

        @rest.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                sender, text, metadata = parse_message(
                    request, REST_SENDER, "1-128 letters, digits or _ - . : @ + ="
                )
            except Refused as refused:
                return error(refused.status, refused.message)
            return await answer(on_new_message, sender, text, self.name(), metadata)

        return rest
