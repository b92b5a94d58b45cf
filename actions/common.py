"""What every custom action shares: the query layer, entities in context, errors, buttons."""

from __future__ import annotations

import abc
import difflib
import json
import logging
import os
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from segmentation.errors import DatabaseUnavailable, NoDataError, SegmentationError
from segmentation.queries import SegmentQueries

log = logging.getLogger(__name__)

SEGMENTS = ("Low Engagement", "Moderate Engagement", "Highly Engaged")
# Channels that show images; elsewhere (the terminal) a chart is a file path.
IMAGE_CHANNELS = {"slack", "webchat", "socketio"}

_queries: Optional[SegmentQueries] = None


def queries() -> SegmentQueries:
    """The query layer for DATABASE_URL; its engine is created on first use, not at import."""
    global _queries
    if _queries is None:
        _queries = SegmentQueries()
    return _queries


def entity_values(tracker: Tracker, entity: str) -> List[str]:
    """Values of `entity` in the latest message, in text order, without repeats."""
    found = [e for e in tracker.latest_message.get("entities", []) if e.get("entity") == entity]
    found.sort(key=lambda e: e.get("start", 0))
    values: List[str] = []
    for item in found:
        value = str(item.get("value", "")).strip()
        if value and value not in values:
            values.append(value)
    return values


def current(tracker: Tracker, entity: str) -> Optional[str]:
    """The entity from the latest message, else the slot of the same name (the context)."""
    values = entity_values(tracker, entity)
    if values:
        return values[0]
    slot = tracker.get_slot(entity)
    return None if slot in (None, "") else str(slot)


# Words that identify a segment when an entity value is not canonical (typos, new synonyms).
SEGMENT_WORDS = {
    "Low Engagement": ("low", "inactive", "disengaged", "risk", "casual", "dormant", "least"),
    "Moderate Engagement": ("moderate", "medium", "mid", "average", "middle"),
    "Highly Engaged": ("high", "power", "most", "heavy", "super", "engaged"),
}


def normalize_segment(value: Optional[str]) -> Optional[str]:
    """A canonical segment name for an entity value (exact, close spelling, or keyword)."""
    if not value:
        return None
    text = value.strip().lower()
    for name in SEGMENTS:
        if text == name.lower():
            return name
    close = difflib.get_close_matches(text, [n.lower() for n in SEGMENTS], n=1, cutoff=0.75)
    if close:
        return next(n for n in SEGMENTS if n.lower() == close[0])
    for name, words in SEGMENT_WORDS.items():  # "engaged" last: "low engagement" is Low
        for word in text.split():
            if difflib.get_close_matches(word, words, n=1, cutoff=0.8):
                return name
    return value.strip()


def segments_in_message(tracker: Tracker) -> List[str]:
    """Canonical segments named in the latest message, in text order."""
    names: List[str] = []
    for value in entity_values(tracker, "segment"):
        name = normalize_segment(value)
        if name and name not in names:
            names.append(name)
    return names


def current_segment(tracker: Tracker) -> Optional[str]:
    """The segment of the latest message, else the one in context (slot)."""
    named = segments_in_message(tracker)
    return named[0] if named else normalize_segment(tracker.get_slot("segment"))


def payload(intent: str, **entities: Any) -> str:
    """A button payload that sends `intent` with entities, e.g. /ask_segment_size{"segment":..}."""
    return f"/{intent}{json.dumps(entities)}" if entities else f"/{intent}"


def segment_buttons(
    intent: str, exclude: Optional[str] = None, **extra: Any
) -> List[Dict[str, str]]:
    """One button per segment that re-asks `intent` for that segment."""
    return [
        {"title": name, "payload": payload(intent, segment=name, **extra)}
        for name in SEGMENTS
        if name != exclude
    ]


def source_line(run) -> str:
    """Which run the numbers come from."""
    return f"_From {run.label}._"


def supports_images(tracker: Tracker) -> bool:
    return (tracker.get_latest_input_channel() or "") in IMAGE_CHANNELS


def chart_url(path) -> str:
    """Where the Rasa server serves a chart file (web chat channel), or the file path."""
    base = os.environ.get("SI_PUBLIC_URL", "").rstrip("/")
    return f"{base}/webhooks/webchat/charts/{path.name}" if base else str(path)


class QueryAction(Action, metaclass=abc.ABCMeta):
    """An action that queries the segment database and replies.

    Subclasses set `action_name`, `topic` (remembered for follow-ups) and `intent` (what a
    button re-asks), and implement `answer`. Database and data problems become clear replies.
    """

    action_name: Text = ""
    topic: Text = ""
    intent: Text = ""

    def name(self) -> Text:
        return self.action_name

    @abc.abstractmethod
    def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
        """Query, format, reply; return extra events (slots)."""

    def ask_segment(
        self, dispatcher: CollectingDispatcher, question: str, **extra: Any
    ) -> List[EventType]:
        """Ask for the missing segment, with one button per segment."""
        dispatcher.utter_message(text=question, buttons=segment_buttons(self.intent, **extra))
        return []

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        events: List[EventType] = [SlotSet("topic", self.topic)] if self.topic else []
        try:
            return events + self.answer(dispatcher, tracker)
        except DatabaseUnavailable:
            log.exception("database unavailable")
            dispatcher.utter_message(
                text="I can't reach the segment database right now, so I can't give you "
                "numbers. Please try again in a minute; nothing was lost."
            )
        except NoDataError as exc:
            dispatcher.utter_message(text=_sentence(str(exc)))
        except SegmentationError as exc:
            dispatcher.utter_message(text=f"Sorry, that didn't work: {exc}")
        return events


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]) if text else text
