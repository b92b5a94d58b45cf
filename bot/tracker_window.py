"""What Rasa sees of a conversation: its latest session, and of a long session only the end.

Rasa's work per turn grows with the tracker it is handed: it copies the tracker for every
action, computes the dialogue states of every earlier turn for the policies, and sends every
event to the action server. So a session longer than `MAX_EVENTS` events is compacted to its
last turns (about `KEEP_EVENTS` events, cut where a user message starts), preceded by what
Rasa itself writes when a session starts with carried-over slots: action_session_start,
session_started, one slot event per slot value at the cut, action_listen. The policies here
look at the last few turns only (MemoizationPolicy, RulePolicy) and the slots keep the
context, so the answers are the same; the `events` table still gets every event (the
compacted prefix is never written).
"""

from __future__ import annotations

from typing import List

from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.events import (
    ActionExecuted,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

MAX_EVENTS = 400
KEEP_EVENTS = 150


def starts_session(event: Event) -> bool:
    """True for the action_session_start event that opens a conversation session."""
    return isinstance(event, ActionExecuted) and event.action_name == ACTION_SESSION_START_NAME


def trimmed(tracker: DialogueStateTracker) -> DialogueStateTracker:
    """What Rasa gets: `tracker` from its latest session start, compacted when too long
    (`tracker` itself when it is neither)."""
    events = list(tracker.events)
    starts = [i for i, e in enumerate(events) if starts_session(e)]
    if starts and starts[-1] > 0:
        tracker = rebuilt(tracker, events[starts[-1] :])
    return compacted(tracker) if needs_compaction(tracker) else tracker


def rebuilt(tracker: DialogueStateTracker, events: List[Event]) -> DialogueStateTracker:
    """A new tracker for the same conversation made of `events`."""
    fresh = tracker.init_copy()
    fresh.sender_source = tracker.sender_source
    fresh.model_id = tracker.model_id
    fresh.assistant_id = tracker.assistant_id
    for event in events:
        fresh.update(event)
    return fresh


def needs_compaction(tracker: DialogueStateTracker, max_events: int = MAX_EVENTS) -> bool:
    return len(tracker.events) > max_events


def compacted(tracker: DialogueStateTracker, keep: int = KEEP_EVENTS) -> DialogueStateTracker:
    """The last turns of `tracker` (about `keep` events, starting at a user message) after a
    session start carrying the slot values at the cut; `tracker` itself if there is no cut."""
    events = list(tracker.events)
    cut = max(1, len(events) - keep)
    while cut < len(events) and not isinstance(events[cut], UserUttered):
        cut += 1
    if cut >= len(events):
        return tracker
    head = rebuilt(tracker, events[:cut])
    stamp = events[cut].timestamp
    prefix: List[Event] = [
        ActionExecuted(ACTION_SESSION_START_NAME, timestamp=stamp),
        SessionStarted(timestamp=stamp),
    ]
    prefix += [
        SlotSet(slot.name, slot.value, timestamp=stamp)
        for slot in head.slots.values()
        if slot.value != slot.initial_value
    ]
    prefix.append(ActionExecuted(ACTION_LISTEN_NAME, timestamp=stamp))
    return rebuilt(tracker, prefix + events[cut:])
