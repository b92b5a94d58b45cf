"""Telling the user what happened to their turn, on every channel.

The tracker store knows when a turn could not be saved or a conversation could not be loaded;
the channels know how to reach the user. `tell()` leaves a notice for a conversation and
`deliver_notices()` wraps a channel's `on_new_message` so that, once the turn is handled, any
notice for that conversation is sent to the user as the last message of the answer (REST and
web chat: the last item of the JSON list; Slack: a message in the thread).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Optional

from rasa.core.channels.channel import UserMessage

logger = logging.getLogger(__name__)

ACTION_SERVER_DOWN = (
    "Sorry, I can't look that up right now: the part of me that reads the segment data isn't "
    "responding. Please try again in a minute."
)
ACTION_FAILED = (
    "Sorry, something went wrong while I was looking that up, so I have no answer for this "
    "one. Please try again, or ask in another way."
)
NOT_TAKEN = (
    "Sorry, I couldn't take that message: the service that keeps each conversation's messages "
    "in order isn't answering. Please send it again in a minute."
)
MAX_WAITING = 10_000  # notices nobody collected (saves outside a channel) are dropped oldest first

_notices: "OrderedDict[str, str]" = OrderedDict()
_lock = threading.Lock()


def tell(sender_id: str, text: str) -> None:
    """Leave `text` for the user of `sender_id` (several notices of one turn are joined)."""
    with _lock:
        earlier = _notices.pop(sender_id, None)
        _notices[sender_id] = text if not earlier or text in earlier else f"{earlier}\n{text}"
        while len(_notices) > MAX_WAITING:
            _notices.popitem(last=False)


def take(sender_id: str) -> Optional[str]:
    """The notice waiting for `sender_id`, removed; None when there is none."""
    with _lock:
        return _notices.pop(sender_id, None)


def deliver_notices(
    on_new_message: Callable[[UserMessage], Awaitable[Any]]
) -> Callable[[UserMessage], Awaitable[Any]]:
    """`on_new_message`, followed by the conversation's notice (if any) on its output channel."""

    async def handle(message: UserMessage) -> Any:
        try:
            return await on_new_message(message)
        finally:
            text = take(message.sender_id)
            if text and message.output_channel is not None:
                try:
                    await message.output_channel.send_text_message(message.sender_id, text)
                except Exception:  # noqa: BLE001 - the channel logs its own failures
                    logger.exception("Could not send a notice to %s", message.sender_id)

    return handle
