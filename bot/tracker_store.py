"""Conversations in the SQL database, read from memory while they are active.

`CachedSQLTrackerStore` is Rasa's `SQLTrackerStore` with two changes measured to matter on the
REST round trip (bench/bench_chat.py):

- each turn's new events are written with ONE INSERT (Rasa adds one ORM object per event, and
  with MySQL each is its own round trip because the ORM fetches every new id);
- the trackers of recent conversations are also kept in memory (serialised, as Rasa's
  InMemoryTrackerStore keeps them), so a turn does not read its conversation back from SQL.

Every event is still written to the `events` table before the answer goes out, in the same
rows as Rasa's store, so the database holds every conversation. The memory copy assumes one
Rasa server process per database (Rasa's own default lock store assumes the same).
endpoints.yml selects it with `type: bot.tracker_store.CachedSQLTrackerStore`.
"""

from __future__ import annotations

import itertools
import json
from collections import OrderedDict
from typing import Any, Dict, Optional, Text

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker, get_trackers_for_conversation_sessions
from rasa.shared.nlu.constants import INTENT_NAME_KEY

CACHED_CONVERSATIONS = 10_000


def event_row(sender_id: str, event: Event) -> Dict[str, Any]:
    """The `events` row Rasa's SQLTrackerStore writes for `event`."""
    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }


class CachedSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore: one INSERT per turn, and active conversations read from memory."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._recent: "OrderedDict[str, Text]" = OrderedDict()  # sender -> serialised tracker
        self._stored: Dict[str, int] = {}  # sender -> events of the retrieved tracker in SQL

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The latest conversation session, from memory when it is there."""
        serialised = self._recent.get(sender_id)
        if serialised is None:  # every session from SQL, then trimmed like the memory copy
            tracker = await self.retrieve_full_tracker(sender_id)
        else:
            self._recent.move_to_end(sender_id)
            tracker = self.deserialise_tracker(sender_id, serialised)
        # The latest session, from its action_session_start, as Rasa's InMemoryTrackerStore
        # returns it. (Rasa's SQL query for it compares FLOAT timestamps, which MySQL keeps in
        # single precision, so there it can return earlier sessions too.)
        sessions = get_trackers_for_conversation_sessions(tracker) if tracker else []
        tracker = sessions[-1] if len(sessions) > 1 else tracker
        # Everything in the tracker handed out is in SQL already; save() writes the rest.
        self._stored[sender_id] = len(tracker.events) if tracker else 0
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Write the turn's new events in one INSERT, then remember the tracker."""
        await self.stream_events(tracker)
        stored = self._stored.pop(tracker.sender_id, None)
        with self.session_scope() as session:
            if stored is None:  # not retrieved through this store: count what SQL has
                new_events = self._additional_events(session, tracker)
            else:
                new_events = itertools.islice(tracker.events, stored, None)
            rows = [event_row(tracker.sender_id, event) for event in new_events]
            if rows:
                session.execute(self.SQLEvent.__table__.insert(), rows)
            session.commit()
        self._recent[tracker.sender_id] = self.serialise_tracker(tracker)
        self._recent.move_to_end(tracker.sender_id)
        while len(self._recent) > CACHED_CONVERSATIONS:
            self._recent.popitem(last=False)
