"""Actions about whole segments: overview, size, profile, metric, compare, advice, charts."""

from __future__ import annotations

from typing import List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import answers
from actions.advice import advice_text
from actions.common import (
    SEGMENTS,
    QueryAction,
    chart_url,
    current,
    current_segment,
    payload,
    queries,
    segment_buttons,
    segments_in_message,
    supports_images,
)
from segmentation import charts
from segmentation.config import charts_dir

METRIC_BUTTONS = (
    ("Clicks", "clicks"),
    ("Searches", "searches"),
    ("Time on articles", "avg_article_time"),
)


def send_chart(dispatcher: CollectingDispatcher, tracker: Tracker, result) -> None:
    """Send the chart of `result` as an image; on the terminal, say where the file is."""
    path = charts.chart_for(result, charts_dir())
    asked = tracker.latest_message.get("intent", {}).get("name") == "ask_chart"
    terminal = tracker.get_latest_input_channel() == "cmdline"
    if supports_images(tracker) or (asked and not terminal):
        dispatcher.utter_message(image=chart_url(path))
    elif asked:
        dispatcher.utter_message(text=f"Chart saved to {path}")


class ActionOverview(QueryAction):
    action_name, topic, intent = "action_overview", "overview", "ask_overview"

    def answer(self, dispatcher, tracker) -> List[EventType]:
        overview = queries().overview()
        dispatcher.utter_message(text=answers.overview_text(overview))
        send_chart(dispatcher, tracker, overview)
        return []


class ActionSegmentSize(QueryAction):
    action_name, topic, intent = "action_segment_size", "segment_size", "ask_segment_size"

    def answer(self, dispatcher, tracker) -> List[EventType]:
        segment = current_segment(tracker)
        if not segment:
            return self.ask_segment(dispatcher, "Which segment do you want the size of?")
        dispatcher.utter_message(text=answers.size_text(queries().segment_size(segment)))
        return [SlotSet("segment", segment)]


class ActionSegmentProfile(QueryAction):
    action_name, topic, intent = "action_segment_profile", "segment_profile", "ask_segment_profile"

    def answer(self, dispatcher, tracker) -> List[EventType]:
        segment = current_segment(tracker)
        if not segment:
            return self.ask_segment(dispatcher, "Which segment should I describe?")
        profile = queries().segment_profile(segment)
        dispatcher.utter_message(text=answers.profile_text(profile))
        send_chart(dispatcher, tracker, profile)
        return [SlotSet("segment", profile.segment.name)]


class ActionMetric(QueryAction):
    action_name, topic, intent = "action_metric", "metric", "ask_metric"

    def answer(self, dispatcher, tracker) -> List[EventType]:
        metric = current(tracker, "metric")
        segment = segments_in_message(tracker)
        named = segment[0] if segment else None
        if not metric:
            dispatcher.utter_message(
                text="Which measure? For example clicks, searches, active days or time on articles.",
                buttons=[
                    {
                        "title": title,
                        "payload": payload(
                            self.intent, metric=value, **({"segment": named} if named else {})
                        ),
                    }
                    for title, value in METRIC_BUTTONS
                ],
            )
            return []
        result = queries().metric_by_segment(metric)
        resolved = queries().resolve_segment(result.run, named) if named else None
        dispatcher.utter_message(text=answers.metric_text(result, resolved))
        return [SlotSet("metric", metric)] + ([SlotSet("segment", resolved)] if resolved else [])


class ActionCompareSegments(QueryAction):
    action_name, topic, intent = "action_compare_segments", "compare", "compare_segments"

    def pair(self, tracker: Tracker) -> Optional[List[str]]:
        named = segments_in_message(tracker)
        if len(named) >= 2:
            return named[:2]
        first = tracker.get_slot("compare_first")
        if len(named) == 1 and first and first != named[0]:
            return [first, named[0]]
        if not named:
            return [SEGMENTS[0], SEGMENTS[-1]]
        return None

    def answer(self, dispatcher, tracker) -> List[EventType]:
        pair = self.pair(tracker)
        if pair is None:
            first = segments_in_message(tracker)[0]
            dispatcher.utter_message(
                text=f"Compare {first} with which segment?",
                buttons=segment_buttons(self.intent, exclude=first),
            )
            return [SlotSet("compare_first", first)]
        comparison = queries().compare_segments(*pair)
        dispatcher.utter_message(text=answers.compare_text(comparison))
        send_chart(dispatcher, tracker, comparison)
        return [SlotSet("compare_first", None), SlotSet("segment", comparison.second.name)]


class ActionTargetingAdvice(QueryAction):
    action_name, topic, intent = "action_targeting_advice", "targeting", "targeting_advice"

    def answer(self, dispatcher, tracker) -> List[EventType]:
        segment = current_segment(tracker)
        if not segment:
            return self.ask_segment(dispatcher, "Which segment do you want to target?")
        profile = queries().segment_profile(segment)
        rank, k = profile.segment.rank, len(profile.run.segment_names)
        gap = None
        if 0 < rank < k - 1:
            gap = queries().compare_segments(profile.segment.name, profile.run.segment_names[-1])
        dispatcher.utter_message(text=advice_text(profile, rank, k, gap))
        return [SlotSet("segment", profile.segment.name)]


class ActionShowChart(QueryAction):
    action_name, topic, intent = "action_show_chart", "chart", "ask_chart"

    def answer(self, dispatcher, tracker) -> List[EventType]:
        named = segments_in_message(tracker)
        if len(named) >= 2:
            comparison = queries().compare_segments(named[0], named[1])
            dispatcher.utter_message(text=f"{comparison.first.name} vs {comparison.second.name}:")
            send_chart(dispatcher, tracker, comparison)
        elif len(named) == 1:
            profile = queries().segment_profile(named[0])
            dispatcher.utter_message(text=f"{profile.segment.name} against the average user:")
            send_chart(dispatcher, tracker, profile)
        else:
            overview = queries().overview()
            dispatcher.utter_message(text=f"Segment sizes ({overview.run.label}):")
            send_chart(dispatcher, tracker, overview)
        return []
