"""CachedSQLTrackerStore writes the same rows as Rasa's SQLTrackerStore and reads them back."""

import asyncio
import json

import pytest
from rasa.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from sqlalchemy import create_engine, text

from bot.tracker_store import CachedSQLTrackerStore
from segmentation.config import PROJECT_DIR

DOMAIN = Domain.load(str(PROJECT_DIR / "domain.yml"))

QUERY = '{"measure":"count","segments":["Highly Engaged"]}'


def first_turn():
    return [
        UserUttered("how many users are highly engaged?", {"name": "ask_segment_size"}),
        ActionExecuted("action_answer"),
        SlotSet("query", QUERY),
        BotUttered("*Highly Engaged* has *30 users*"),
        ActionExecuted("action_listen"),
    ]


def follow_up():
    return [
        UserUttered("and the moderate ones?", {"name": "inform"}),
        ActionExecuted("action_answer"),
        BotUttered("*Moderate Engagement* has *30 users*"),
        ActionExecuted("action_listen"),
    ]


def new_session():
    return [
        ActionExecuted("action_session_start"),
        SessionStarted(),
        ActionExecuted("action_listen"),
    ]


async def converse(store, sender, turns=(first_turn, follow_up)):
    """What Rasa's processor does each turn: retrieve (or create), add events, save."""
    for make_events in turns:
        events = make_events()
        tracker = await store.get_or_create_tracker(sender)
        for event in events:
            tracker.update(event)
        await store.save(tracker)
    return await store.retrieve(sender)


def rows(url, sender):
    """The stored events of `sender`; timestamps left out (each store makes its own first
    action_listen)."""
    engine = create_engine(url, future=True)
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT type_name, intent_name, action_name, data FROM events "
                "WHERE sender_id = :s ORDER BY id"
            ),
            {"s": sender},
        ).all()
    engine.dispose()
    return [
        (r.type_name, r.intent_name, r.action_name, {**json.loads(r.data), "timestamp": None})
        for r in found
    ]


@pytest.fixture
def stores(db_url):
    ours = CachedSQLTrackerStore(domain=DOMAIN, host=db_url)
    theirs = SQLTrackerStore(domain=DOMAIN, host=db_url)
    yield ours, theirs
    ours.engine.dispose()
    theirs.engine.dispose()


def test_same_rows_as_rasas_store(stores, db_url):
    ours, theirs = stores
    asyncio.run(converse(ours, "ours"))
    asyncio.run(converse(theirs, "theirs"))
    stored = rows(db_url, "ours")
    assert stored == rows(db_url, "theirs")
    assert [r[0] for r in stored].count("user") == 2


def test_reads_back_from_sql_after_a_restart(stores, db_url):
    ours, _ = stores
    in_memory = asyncio.run(converse(ours, "restart"))
    fresh = CachedSQLTrackerStore(domain=DOMAIN, host=db_url)  # nothing in memory
    from_sql = asyncio.run(fresh.retrieve("restart"))
    assert [e.as_dict() for e in from_sql.events] == [e.as_dict() for e in in_memory.events]
    assert from_sql.get_slot("query") == QUERY
    asyncio.run(converse(fresh, "restart", [follow_up]))  # continues, no duplicated rows
    assert [r[0] for r in rows(db_url, "restart")].count("user") == 3
    fresh.engine.dispose()


def test_only_the_latest_session_is_returned(stores, db_url):
    """As Rasa's InMemoryTrackerStore: from the action_session_start of the latest session,
    from memory and, after a restart, from SQL."""
    ours, _ = stores
    turns = (first_turn, follow_up, new_session, follow_up)
    memory = asyncio.run(converse(InMemoryTrackerStore(DOMAIN), "s", turns))
    expected = [e.type_name for e in memory.events]
    assert expected[:2] == ["action", "session_started"] and expected.count("user") == 1
    assert [e.type_name for e in asyncio.run(converse(ours, "s", turns)).events] == expected
    fresh = CachedSQLTrackerStore(domain=DOMAIN, host=db_url)
    assert [e.type_name for e in asyncio.run(fresh.retrieve("s")).events] == expected
    fresh.engine.dispose()
