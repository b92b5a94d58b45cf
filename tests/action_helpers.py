"""Running custom actions directly: a real Tracker and CollectingDispatcher, no Rasa server."""

from __future__ import annotations

import asyncio
from typing import Dict, List, Optional, Sequence, Tuple

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher


def entity(name: str, value: str, start: int = 0) -> dict:
    return {"entity": name, "value": value, "start": start, "end": start + len(value)}


def make_tracker(
    intent: str,
    text: str = "",
    entities: Sequence[dict] = (),
    slots: Optional[Dict[str, object]] = None,
    channel: str = "rest",
    ranking: Sequence[Tuple[str, float]] = (),
) -> Tracker:
    message = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.99},
        "entities": list(entities),
        "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
    }
    events = [{"event": "user", "text": text, "parse_data": message, "input_channel": channel}]
    return Tracker(
        "test-user", dict(slots or {}), message, events, False, None, {}, "action_listen"
    )


def run_action(action, tracker: Tracker) -> Tuple[List[dict], List[dict]]:
    """Run `action` and return (messages sent, events returned)."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return dispatcher.messages, events


def slots_set(events: List[dict]) -> Dict[str, object]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def only_text(messages: List[dict]) -> str:
    return "\n".join(m["text"] for m in messages if m.get("text"))
