"""What the action shares: the query layer (created on first use), a worker pool, the turn."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker

from segmentation.queries import SegmentQueries

# Channels that show images; elsewhere (the terminal) a chart is a file path.
IMAGE_CHANNELS = {"slack", "webchat", "socketio"}
# Database work runs on these threads, never on the action server's event loop.
WORKERS = ThreadPoolExecutor(
    max_workers=int(os.environ.get("SI_ACTION_THREADS", "8")), thread_name_prefix="answer"
)
MAX_TEXT = 2000

_queries: Optional[SegmentQueries] = None


def queries() -> SegmentQueries:
    """The query layer for DATABASE_URL; its engine is created on first use, not at import."""
    global _queries
    if _queries is None:
        _queries = SegmentQueries()
    return _queries


@dataclass
class Turn:
    """What the action needs from the tracker, copied so worker threads never touch it."""

    text: str
    intent: Optional[str]
    channel: str
    previous: Optional[str]  # the `query` slot: the last question as JSON
    entities: Dict[str, Any] = field(default_factory=dict)
    ranking: List[str] = field(default_factory=list)  # likeliest intents, best first

    @classmethod
    def from_tracker(cls, tracker: Tracker) -> "Turn":
        message = tracker.latest_message or {}
        text = str(message.get("text") or "")
        if text.startswith("/"):  # a button payload: the intent and entities say it all
            text = ""
        entities = {}
        for item in message.get("entities") or []:
            if isinstance(item, dict) and "entity" in item:
                entities.setdefault(str(item["entity"]), item.get("value"))
        return cls(
            text=text[:MAX_TEXT],
            intent=(message.get("intent") or {}).get("name"),
            channel=tracker.get_latest_input_channel() or "",
            previous=tracker.get_slot("query"),
            entities=entities,
            ranking=[i.get("name") for i in message.get("intent_ranking") or [] if i.get("name")],
        )

    @property
    def shows_images(self) -> bool:
        return self.channel in IMAGE_CHANNELS

    @property
    def terminal(self) -> bool:
        return self.channel == "cmdline"


def button_payload(intent: str, **entities: Any) -> str:
    """A payload that sends `intent` with entities, e.g. /inform{"query": "..."}."""
    return f"/{intent}{json.dumps(entities)}" if entities else f"/{intent}"


def chart_url(path) -> str:
    """Where the Rasa server serves a chart file (web chat route), or the file path."""
    base = os.environ.get("SI_PUBLIC_URL", "").rstrip("/")
    return f"{base}/webhooks/webchat/charts/{path.name}" if base else str(path)


def export_url(name: str) -> str:
    """Where the Rasa server serves an export (web chat route, relative to the page unless
    SI_PUBLIC_URL is set)."""
    base = os.environ.get("SI_PUBLIC_URL", "").rstrip("/")
    return f"{base}/webhooks/webchat/exports/{name}" if base else f"exports/{name}"
