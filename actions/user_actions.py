"""Actions about users: one user's segment and why, member lists, breakdowns."""

from __future__ import annotations

import re
from typing import List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from actions import answers
from actions.common import (
    QueryAction,
    current,
    current_segment,
    entity_values,
    payload,
    queries,
)
from segmentation.queries import DIMENSIONS

PAGE_SIZE = 10
MAX_PAGE_SIZE = 50
KEY_FEATURES = 3
ID_IN_TEXT = re.compile(
    r"\b(?:user|customer|member|id)\s*#?\s*([A-Za-z0-9_\-]*\d[A-Za-z0-9_\-]*)", re.I
)


def user_id_from(tracker: Tracker) -> Optional[str]:
    """The user id entity, else one written as "user 123" in the text, else the context."""
    values = entity_values(tracker, "user_id")
    if values:
        return values[0].lstrip("#")
    match = ID_IN_TEXT.search(tracker.latest_message.get("text") or "")
    if match:
        return match.group(1)
    slot = tracker.get_slot("user_id")
    return str(slot) if slot else None


class ActionUserLookup(QueryAction):
    action_name, topic, intent = "action_user_lookup", "user", "lookup_user"

    def answer(self, dispatcher, tracker) -> List[EventType]:
        user_id = user_id_from(tracker)
        if not user_id:
            dispatcher.utter_message(text='Which user? Send me their id, for example "user 4521".')
            return []
        result = queries().user_segment(user_id)
        dispatcher.utter_message(text=answers.user_text(result))
        return [SlotSet("user_id", result.user_id), SlotSet("segment", result.segment)]


def page_size(tracker: Tracker) -> int:
    number = current(tracker, "number")
    try:
        return max(1, min(int(float(number)), MAX_PAGE_SIZE)) if number else PAGE_SIZE
    except ValueError:
        return PAGE_SIZE


def _order(tracker: Tracker, segment: str, names) -> str:
    """Most engaged first, except when listing the lowest segment without asking for "top"."""
    text = (tracker.latest_message.get("text") or "").lower()
    wants_top = any(word in text for word in ("top", "most", "best"))
    return "least" if segment == names[0] and not wants_top else "most"


class ActionListMembers(QueryAction):
    action_name, topic, intent = "action_list_members", "members", "list_members"

    def show(self, dispatcher, segment: str, size: int, offset: int, order: str) -> List[EventType]:
        page = queries().top_members(segment, limit=size, offset=offset, order=order)
        key = page.run.features[:KEY_FEATURES]
        dispatcher.utter_message(text=answers.members_text(page, key, page.run))
        return [
            SlotSet("segment", page.segment),
            SlotSet("page", float(offset + len(page.members))),
            SlotSet("number", float(size)),
            SlotSet("list_order", order),
        ]

    def answer(self, dispatcher, tracker) -> List[EventType]:
        segment = current_segment(tracker)
        if not segment:
            return self.ask_segment(dispatcher, "Which segment's users should I list?")
        run = queries().current_run()
        segment = queries().resolve_segment(run, segment)
        return self.show(
            dispatcher, segment, page_size(tracker), 0, _order(tracker, segment, run.segment_names)
        )


class ActionMoreMembers(ActionListMembers):
    action_name, topic, intent = "action_more_members", "members", "list_members"

    def answer(self, dispatcher, tracker) -> List[EventType]:
        segment = current_segment(tracker)
        offset = tracker.get_slot("page")
        if not segment or offset is None:
            dispatcher.utter_message(
                text='More of what? Ask for a list first, e.g. "top 10 highly engaged users".'
            )
            return []
        order = tracker.get_slot("list_order") or "most"
        return self.show(dispatcher, segment, page_size(tracker), int(offset), order)


class ActionBreakdown(QueryAction):
    action_name, topic, intent = "action_breakdown", "breakdown", "breakdown_segment"

    def dimension_of(self, value: str) -> Optional[str]:
        """The users-table column that has `value` (e.g. "iOS" -> device)."""
        for dimension in DIMENSIONS:
            if value.lower() in (v.lower() for v in queries().dimension_values(dimension)):
                return dimension
        return None

    def asked(self, tracker: Tracker):
        """(dimension, value) from the latest message, else from the context."""
        values, dimensions = entity_values(tracker, "dimension_value"), entity_values(
            tracker, "dimension"
        )
        if values or dimensions:
            value = values[0] if values else None
            dimension = dimensions[0] if dimensions else None
        else:
            value, dimension = tracker.get_slot("dimension_value"), tracker.get_slot("dimension")
        if value and (not dimension or not values):
            dimension = self.dimension_of(value) or dimension
        return dimension, value

    def answer(self, dispatcher, tracker) -> List[EventType]:
        dimension, value = self.asked(tracker)
        segment = current_segment(tracker)
        if not segment:
            extra = {"dimension": dimension} if dimension else {}
            return self.ask_segment(dispatcher, "Which segment should I break down?", **extra)
        if not dimension:
            if value:
                dispatcher.utter_message(text=f'No user has the country, device or plan "{value}".')
                return []
            dispatcher.utter_message(
                text=f"Break down {segment} by what?",
                buttons=[
                    {
                        "title": d.title(),
                        "payload": payload(self.intent, segment=segment, dimension=d),
                    }
                    for d in DIMENSIONS
                ],
            )
            return []
        result = queries().breakdown(segment, dimension, value)
        dispatcher.utter_message(text=answers.breakdown_text(result))
        return [
            SlotSet("segment", result.segment),
            SlotSet("dimension", dimension),
            SlotSet("dimension_value", result.value),
        ]
