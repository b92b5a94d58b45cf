"""Actions about segmentation runs: what changed, when, and how good."""

from __future__ import annotations

from typing import List

from rasa_sdk.events import EventType

from actions import answers
from actions.common import QueryAction, queries, segments_in_message


class ActionChanges(QueryAction):
    action_name, topic, intent = "action_changes", "changes", "ask_changes"

    def answer(self, dispatcher, tracker) -> List[EventType]:
        change = queries().migration()
        named = segments_in_message(tracker)
        if len(named) >= 2:
            source = queries().resolve_segment(change.from_run, named[0])
            target = queries().resolve_segment(change.to_run, named[1])
            dispatcher.utter_message(text=answers.changes_text(change, source, target))
        else:
            dispatcher.utter_message(text=answers.changes_text(change))
        return []


class ActionRunInfo(QueryAction):
    action_name, topic, intent = "action_run_info", "run_info", "ask_run_info"

    def answer(self, dispatcher, tracker) -> List[EventType]:
        dispatcher.utter_message(text=answers.run_info_text(queries().current_run()))
        return []


class ActionQuality(QueryAction):
    action_name, topic, intent = "action_quality", "quality", "ask_quality"

    def answer(self, dispatcher, tracker) -> List[EventType]:
        dispatcher.utter_message(text=answers.quality_text(queries().current_run()))
        return []
