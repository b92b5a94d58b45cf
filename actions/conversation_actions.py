"""Follow-ups that carry only an entity, and clarification when the NLU is unsure."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.common import QueryAction, entity_values, payload
from actions.run_actions import ActionChanges, ActionQuality, ActionRunInfo
from actions.segment_actions import (
    ActionCompareSegments,
    ActionMetric,
    ActionOverview,
    ActionSegmentProfile,
    ActionSegmentSize,
    ActionShowChart,
    ActionTargetingAdvice,
)
from actions.user_actions import ActionBreakdown, ActionListMembers, ActionUserLookup

ACTIONS_BY_TOPIC: Dict[str, QueryAction] = {
    action.topic: action
    for action in (
        ActionOverview(),
        ActionSegmentSize(),
        ActionSegmentProfile(),
        ActionMetric(),
        ActionCompareSegments(),
        ActionTargetingAdvice(),
        ActionShowChart(),
        ActionUserLookup(),
        ActionListMembers(),
        ActionBreakdown(),
        ActionChanges(),
        ActionRunInfo(),
        ActionQuality(),
    )
}
# Topics that are not about one segment: a segment follow-up after them means "describe it".
NOT_PER_SEGMENT = {"overview", "run_info", "quality", "changes", "user", None}


def follow_up_topic(tracker: Tracker) -> str:
    """Which question an `inform` message continues."""
    topic = tracker.get_slot("topic")
    if entity_values(tracker, "user_id"):
        return "user"
    if entity_values(tracker, "dimension") or entity_values(tracker, "dimension_value"):
        return "breakdown"
    if entity_values(tracker, "metric"):
        return "metric"
    if entity_values(tracker, "segment") and topic in NOT_PER_SEGMENT:
        return "segment_profile"
    return topic or "segment_profile"


class ActionFollowUp(Action):
    """Answers "and the moderate ones?" / "what about user 88?" with the last question type."""

    def name(self) -> Text:
        return "action_follow_up"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        return await ACTIONS_BY_TOPIC[follow_up_topic(tracker)].run(dispatcher, tracker, domain)


INTENT_TITLES = {
    "ask_overview": "Overview of all segments",
    "ask_segment_size": "How many users a segment has",
    "ask_segment_profile": "What a segment looks like",
    "ask_metric": "One measure across segments",
    "compare_segments": "Compare two segments",
    "lookup_user": "Which segment a user is in",
    "list_members": "List a segment's users",
    "breakdown_segment": "Break a segment down by country, device or plan",
    "targeting_advice": "How to target a segment",
    "ask_changes": "What changed since the last run",
    "ask_run_info": "When the segments were updated",
    "ask_quality": "How good the clustering is",
    "ask_chart": "A chart",
}
SUGGESTIONS = 3


class ActionClarify(Action):
    """When the NLU is unsure: offer the likeliest questions as buttons, never guess."""

    def name(self) -> Text:
        return "action_clarify"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        message = tracker.latest_message
        entities = {}
        for item in message.get("entities", []):
            entities.setdefault(item["entity"], item["value"])
        ranking = [i.get("name") for i in message.get("intent_ranking", [])]
        likely = [name for name in ranking if name in INTENT_TITLES][:SUGGESTIONS]
        buttons = [
            {"title": INTENT_TITLES[name], "payload": payload(name, **entities)} for name in likely
        ]
        dispatcher.utter_message(
            text="I'm not sure what you mean. Did you want one of these? "
            '(Or type "help" for example questions.)',
            buttons=buttons,
        )
        return []
