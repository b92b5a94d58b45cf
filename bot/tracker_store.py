"""Conversations in the SQL database, kept in memory while they are active; no lost turns.

`CachedSQLTrackerStore` writes the same `events` rows as Rasa's `SQLTrackerStore` (endpoints.yml
selects it with `type: bot.tracker_store.CachedSQLTrackerStore`), and:

- **never blocks the event loop**: SQL runs on threads (reads on a small pool, writes on the
  `TurnWriter`'s own thread) and is awaited with a deadline, so a slow or hung database
  holds up neither other conversations nor `/status`; the engine's connect, read, write and
  statement limits (segmentation/db.py) bound the threads themselves;
- **never loses a turn silently**: each turn's new events are written in one INSERT before the
  answer goes out. When the database does not take them within `SAVE_DEADLINE`, the turn is
  held (in memory and in a spool file, bot/turn_writer.py) and written as soon as the
  database is back, and the user is told so with the answer (bot/notices.py); if even the
  holding space is full the user is told the turn will not be saved. `save()` and
  `retrieve()` never raise, so Rasa's silent fall-back to an in-memory store never happens.
  A conversation that can't be read (database down) starts afresh, and the user is told;
- **costs the same per turn however long the conversation**: active conversations stay in
  memory as tracker objects (nothing is re-serialised or re-read per turn), only the new
  events are written, and a long session is compacted (bot/tracker_window.py). The memory
  copy is bounded (conversations and events);
- **lets several Rasa servers share the database** (SI_RASA_SERVERS > 1, set by
  `python -m bot serve --rasa-servers N`, with the Redis lock store serialising each
  conversation's turns): before a turn uses its memory copy, the store counts the sender's
  rows in SQL (one indexed COUNT) and compares them with the rows it wrote or read itself
  (plus those it holds); when another server has written since, the conversation is read
  from SQL again. With one server (the default) the memory copy is used as it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Text

from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker, get_trackers_for_conversation_sessions
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from bot import notices, tracker_window
from bot.turn_writer import Spool, TurnWriter, database_key
from segmentation.config import runtime_dir
from segmentation.db import build_engine

logger = logging.getLogger(__name__)

CACHED_CONVERSATIONS = 2_000
CACHED_EVENTS = 200_000  # all cached trackers together (a session holds at most ~400)
SAVE_DEADLINE = 2.5  # seconds a turn waits for its INSERT before the answer goes out anyway
READ_DEADLINE = 3.0  # seconds to load a conversation that is not in memory
MAX_EVENT_DATA = 65_000  # the `events.data` column is a TEXT: 65,535 bytes on MySQL

HELD = (
    "Note: the conversation database isn't answering, so this exchange isn't saved yet. It is "
    "kept on the server and will be saved as soon as the database is back."
)
NOT_KEPT = (
    "Note: the conversation database isn't answering and the server has no room left to hold "
    "unsaved messages, so this exchange will not be saved."
)
NO_HISTORY = (
    "Note: I can't load our earlier conversation right now (the conversation database isn't "
    "answering), so I'm answering without its context."
)


def _shortened(value: Any, limit: int) -> Any:
    """`value` with every string cut to `limit` characters and every list to 50 items."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + " …[truncated]"
    if isinstance(value, list):
        return [_shortened(v, limit) for v in value[:50]]
    if isinstance(value, dict):
        return {k: _shortened(v, limit) for k, v in value.items()}
    return value


def event_data(data: Dict[str, Any], limit: int = MAX_EVENT_DATA) -> str:
    """The JSON of an event, shortened (long strings cut, logged) when it would not fit the
    `data` column; input limits on the channels keep user messages well below this."""
    text = json.dumps(data)
    cut = 8192
    while len(text) > limit and cut >= 16:
        text = json.dumps(_shortened(data, cut))
        cut //= 4
    if len(text) > limit:
        text = json.dumps({"event": data.get("event"), "timestamp": data.get("timestamp")})
    if cut < 8192:
        logger.warning("Shortened a %s event to fit the events table", data.get("event"))
    return text


def event_row(sender_id: str, event: Event) -> Dict[str, Any]:
    """The `events` row Rasa's SQLTrackerStore writes for `event`."""
    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
        "action_name": data.get("name"),
        "data": event_data(data),
    }


class CachedSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore off the event loop, with held turns, a memory copy and compaction."""

    def __init__(
        self,
        domain=None,
        host: Optional[Text] = None,
        event_broker=None,
        spool: bool = True,
        shared: Optional[bool] = None,
        **kwargs: Any,
    ) -> None:
        # Not SQLTrackerStore.__init__: it waits for the database forever at start-up.
        TrackerStore.__init__(self, domain, event_broker, **kwargs)
        url = host if host and "://" in host else f"sqlite:///{host or 'rasa.db'}"
        self.engine = build_engine(make_url(url))
        self.sessionmaker = sessionmaker(bind=self.engine)
        self.table = self.SQLEvent.__table__
        self._reads = ThreadPoolExecutor(4, thread_name_prefix="si-tracker-read")
        self._cache: "OrderedDict[str, DialogueStateTracker]" = OrderedDict()
        self._saved: Dict[str, int] = {}  # sender -> events of the cached tracker written/held
        self._rows: Dict[str, int] = {}  # sender -> its rows in SQL (+ held) as this store knows
        if shared is None:
            shared = int(os.environ.get("SI_RASA_SERVERS", "1") or 1) > 1
        self.shared = shared  # several Rasa servers on this database: check the memory copy
        self._cached_events = 0
        self._afresh: "OrderedDict[str, bool]" = OrderedDict()  # senders with nothing stored
        folder = runtime_dir() / "unsaved-turns"
        self.writer = TurnWriter(
            self.engine,
            self.table,
            Spool(folder, database_key(url)) if spool else None,
            prepare=self._create_table,
        )
        try:
            with self.engine.begin() as conn:
                self._create_table(conn)
            self.writer.mark_prepared()
        except Exception as exc:  # noqa: BLE001 - serve anyway; the writer creates it later
            logger.error("The events table can't be reached at start-up: %s", exc)
        if len(self.writer):
            self.writer.flush_soon()

    def _create_table(self, conn) -> None:
        self.table.create(conn, checkfirst=True)

    # -- reading ------------------------------------------------------------------------------
    def _read_events(self, sender_id: Text, all_sessions: bool = False) -> List[Dict[str, Any]]:
        """The stored events of `sender_id`'s latest session (or of all sessions)."""
        table = self.table
        query = select(table.c.data).where(table.c.sender_id == sender_id).order_by(table.c.id)
        if not all_sessions:
            start = (
                select(func.coalesce(func.max(table.c.id), 0))
                .where(table.c.sender_id == sender_id)
                .where(table.c.type_name == "action")
                .where(table.c.action_name == tracker_window.ACTION_SESSION_START_NAME)
                .scalar_subquery()
            )
            query = query.where(table.c.id >= start)
        with self.engine.connect() as conn:
            return [json.loads(data) for data in conn.execute(query).scalars()]

    def _count_rows(self, sender_id: Text) -> int:
        """How many rows `sender_id` has in SQL (all sessions)."""
        query = select(func.count()).select_from(self.table)
        with self.engine.connect() as conn:
            return conn.execute(query.where(self.table.c.sender_id == sender_id)).scalar_one()

    def _known_rows(self, sender_id: Text) -> int:
        """The sender's rows held plus those in SQL (held counted first, so a write in between
        makes the memory check fail, not pass)."""
        held = len(self.writer.pending_rows(sender_id))
        return held + self._count_rows(sender_id)

    def _read_counted(self, sender_id: Text, read) -> tuple:
        """(read(sender_id), the sender's rows held plus in SQL), held counted before reading."""
        held = len(self.writer.pending_rows(sender_id))
        events = read(sender_id)
        return events, held + self._count_rows(sender_id)

    def _unchanged(self, sender_id: Text) -> bool:
        """With several servers: True when SQL (plus held rows) still has exactly the rows this
        store knows of for `sender_id`, i.e. no other server took a turn since. A database
        that can't answer counts as unchanged: no server can write to it either."""
        known = self._rows.get(sender_id)
        if known is None:
            return False
        try:
            return self._known_rows(sender_id) == known
        except Exception as exc:  # noqa: BLE001 - database down: the memory copy is the best
            logger.warning("Could not check conversation %s against SQL: %s", sender_id, exc)
            return True

    def _read_with_held_turns(self, sender_id: Text) -> List[Dict[str, Any]]:
        """On the writer thread (no write can interleave): held turns written if possible,
        then the stored events plus those still held."""
        self.writer.flush()
        events = self._read_events(sender_id)
        return events + [json.loads(row["data"]) for row in self.writer.pending_rows(sender_id)]

    async def _off_loop(self, executor, deadline: float, function, *args):
        future = asyncio.get_running_loop().run_in_executor(executor, function, *args)
        return await asyncio.wait_for(future, deadline)

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The latest conversation session: from memory, else from SQL (plus held turns); an
        empty tracker (and a notice) when it can't be read. Never raises."""
        try:
            return await self._retrieve_session(sender_id)
        except Exception:  # noqa: BLE001 - e.g. an unreadable stored event
            logger.exception("Could not rebuild conversation %s", sender_id)
            notices.tell(sender_id, NO_HISTORY)
            self._starts_afresh(sender_id)
            return None

    async def _retrieve_session(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        tracker = self._cache.get(sender_id)
        if tracker is not None and self.shared:
            try:
                fresh = await self._off_loop(self._reads, READ_DEADLINE, self._unchanged, sender_id)
            except asyncio.TimeoutError:
                fresh = True  # a hung database: nobody else can write either
            if not fresh or self._cache.get(sender_id) is not tracker:
                logger.debug("Conversation %s changed on another server: reading it", sender_id)
                self._forget(sender_id)
                tracker = None
        if tracker is not None:
            self._cache.move_to_end(sender_id)
            handed = tracker_window.trimmed(tracker)
            if handed is not tracker:
                self._remember(handed, self._rows.get(sender_id))
            return handed
        rows = None
        try:
            if self.writer.pending_rows(sender_id):
                executor, read = self.writer.executor, self._read_with_held_turns
            else:
                executor, read = self._reads, self._read_events
            if self.shared:
                events, rows = await self._off_loop(
                    executor, READ_DEADLINE, self._read_counted, sender_id, read
                )
            else:
                events = await self._off_loop(executor, READ_DEADLINE, read, sender_id)
        except Exception as exc:  # noqa: BLE001 - database down, hung or broken
            logger.error("Could not load conversation %s: %s", sender_id, exc or "timed out")
            notices.tell(sender_id, NO_HISTORY)
            events = []
        if not events:  # Rasa creates the tracker and saves it: all its events are new
            self._starts_afresh(sender_id)
            return None
        tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        tracker = get_trackers_for_conversation_sessions(tracker)[-1]
        if tracker_window.needs_compaction(tracker):
            tracker = tracker_window.compacted(tracker)
        self._remember(tracker, rows)
        return tracker

    async def retrieve_full_tracker(self, conversation_id: Text) -> Optional[DialogueStateTracker]:
        """Every session of the conversation, from SQL (the HTTP API's full history)."""
        events = await self._off_loop(
            self._reads, READ_DEADLINE * 10, self._read_events, conversation_id, True
        )
        if not events:
            return None
        return DialogueStateTracker.from_dict(conversation_id, events, self.domain.slots)

    # -- writing ------------------------------------------------------------------------------
    async def _stored_count(self, tracker: DialogueStateTracker) -> int:
        """For a tracker not handed out by this store: how many of its events SQL has."""
        events = await self._off_loop(
            self._reads, READ_DEADLINE, self._read_events, tracker.sender_id
        )
        return len(events)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Write the turn's new events (one INSERT); hold them and tell the user when the
        database does not take them in time. Never raises."""
        try:
            await self._save(tracker)
        except Exception:  # noqa: BLE001 - never Rasa's silent in-memory fall-back
            logger.exception("Could not save a turn of %s", tracker.sender_id)
            notices.tell(tracker.sender_id, NOT_KEPT)
            self._forget(tracker.sender_id)

    async def _save(self, tracker: DialogueStateTracker) -> None:
        sender_id = tracker.sender_id
        known: Optional[int] = None  # the sender's rows in SQL before this save, if known
        if self._cache.get(sender_id) is tracker:
            start = self._saved.get(sender_id, 0)
            known = self._rows.get(sender_id)
        elif self._afresh.pop(sender_id, None):
            start = known = 0
        else:
            start = await self._stored_count(tracker)
        new_events = list(tracker.events)[start:]
        if self.event_broker and new_events:
            await self._stream_new_events(self.event_broker, new_events, sender_id)
        rows = [event_row(sender_id, event) for event in new_events]
        if rows and not await self._write(sender_id, rows):
            return
        # Trimmed when next handed out, not now: the caller may save this same object again
        # (more events of the same turn), and its events must then be counted from here.
        if self._cache.get(sender_id) is not tracker or new_events:
            self._remember(tracker, None if known is None else known + len(rows))

    async def _write(self, sender_id: Text, rows: List[Dict[str, Any]]) -> bool:
        """Queue the rows and wait (bounded) for them; False when the turn is not kept."""
        turn = self.writer.add(sender_id, rows)
        if turn is None:
            logger.error("No room to hold an unsaved turn of %s: it is not kept", sender_id)
            notices.tell(sender_id, NOT_KEPT)
            self._forget(sender_id)  # memory must not show a turn SQL will never have
            return False
        try:
            await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(self.writer.flush_soon())), SAVE_DEADLINE
            )
        except (asyncio.TimeoutError, RuntimeError):
            pass
        if self.writer.pending(turn):
            await asyncio.to_thread(self.writer.keep_on_disk)  # not behind hung reads
            notices.tell(sender_id, HELD)
        return True

    # -- memory ---------------------------------------------------------------------------------
    def _remember(self, tracker: DialogueStateTracker, rows: Optional[int] = None) -> None:
        """Keep `tracker` in memory; `rows`: the sender's rows in SQL (+ held), if known."""
        sender_id = tracker.sender_id
        self._forget(sender_id)
        self._afresh.pop(sender_id, None)
        self._cache[sender_id] = tracker
        self._saved[sender_id] = len(tracker.events)
        if rows is not None:
            self._rows[sender_id] = rows
        self._cached_events += len(tracker.events)
        while len(self._cache) > 1 and (
            len(self._cache) > CACHED_CONVERSATIONS or self._cached_events > CACHED_EVENTS
        ):
            self._forget(next(iter(self._cache)))

    def _starts_afresh(self, sender_id: Text) -> None:
        """The next tracker saved for `sender_id` is a new one: none of its events are in SQL."""
        self._forget(sender_id)
        self._afresh[sender_id] = True
        while len(self._afresh) > CACHED_CONVERSATIONS:
            self._afresh.popitem(last=False)

    def _forget(self, sender_id: Text) -> None:
        self._rows.pop(sender_id, None)
        if self._cache.pop(sender_id, None) is not None:
            self._cached_events -= self._saved.pop(sender_id, 0)

    def close(self) -> None:
        """Stop the writer (a last write; what is left stays in the spool)."""
        self.writer.close()
        self._reads.shutdown(wait=False)
        self.engine.dispose()
