"""CachedSQLTrackerStore when the database fails: through a TCP proxy of the test's own to
MariaDB that is cut (connections dropped, port refusing), paused (nothing forwarded: a hung
database) and restored. Every turn ends up in the `events` table, or the user is told it was
not saved; nothing waits on the database past the store's deadlines."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rasa.shared.core.events import SlotSet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot import notices
from bot.tracker_store import HELD, NO_HISTORY, CachedSQLTrackerStore, event_data
from segmentation.config import PROJECT_DIR
from tests.tcp_proxy import TcpProxy
from tests.test_tracker_store import DOMAIN, first_turn, follow_up

# A hung database must cost seconds, not the default hour of the command line.
FAST_DB = {"SI_DB_CONNECT_TIMEOUT": "2", "SI_DB_READ_TIMEOUT": "3", "SI_DB_WRITE_TIMEOUT": "3"}
DID_NOT_HANG = 10.0  # generous bound for a loaded 2-core machine


@pytest.fixture
def proxied(mariadb_database, monkeypatch, tmp_path):
    """(proxy, URL through it, direct URL) on an empty events table; spool in tmp_path."""
    for name, value in FAST_DB.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SI_RUNTIME_DIR", str(tmp_path))
    url = make_url(mariadb_database)
    direct = create_engine(mariadb_database, future=True)
    with direct.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS events"))
    proxy = TcpProxy((url.host, url.port or 3306))
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    yield proxy, through, mariadb_database
    proxy.close()
    direct.dispose()


def stored(url: str, sender: str):
    """(type_name, text or action name) of `sender`'s rows, in id order (plain SQL)."""
    engine = create_engine(url, future=True)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT type_name, action_name, data FROM events WHERE sender_id = :s ORDER BY id"
            ),
            {"s": sender},
        ).all()
    engine.dispose()
    return [(r.type_name, r.action_name or json.loads(r.data).get("text")) for r in rows]


async def turn(store, sender, make_events):
    """One turn as Rasa's processor does it: retrieve (or create), add events, save."""
    tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
    for event in make_events():
        tracker.update(event)
    await store.save(tracker)
    return tracker


def expected_rows(*turns):
    return [
        (e.type_name, e.as_dict().get("name") or e.as_dict().get("text"))
        for t in turns
        for e in t()
    ]


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_turns_during_a_cut_are_held_told_and_written_when_the_database_is_back(proxied):
    proxy, url, direct = proxied
    store = CachedSQLTrackerStore(domain=DOMAIN, host=url)
    store.writer.retry_seconds = 0.5
    asyncio.run(turn(store, "cut", first_turn))
    assert notices.take("cut") is None
    proxy.cut()
    asyncio.run(turn(store, "cut", follow_up))
    assert notices.take("cut") == HELD
    asyncio.run(turn(store, "cut", follow_up))  # the conversation goes on from memory
    assert notices.take("cut") == HELD
    assert len(store.writer) == 2 and len(stored(direct, "cut")) == len(first_turn())
    proxy.restore()
    wait_until(lambda: len(store.writer) == 0)
    assert stored(direct, "cut") == expected_rows(first_turn, follow_up, follow_up)
    asyncio.run(turn(store, "cut", follow_up))
    assert notices.take("cut") is None
    assert [r[0] for r in stored(direct, "cut")].count("user") == 4
    store.close()


def test_a_hung_database_costs_the_deadline_not_the_event_loop(proxied):
    proxy, url, direct = proxied
    store = CachedSQLTrackerStore(domain=DOMAIN, host=url)
    store.writer.retry_seconds = 0.5
    asyncio.run(turn(store, "busy", first_turn))
    proxy.pause()

    async def during_the_pause():
        gaps, last = [], time.monotonic()

        async def ticker():
            nonlocal last
            while True:
                await asyncio.sleep(0.05)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        ticking = asyncio.ensure_future(ticker())
        started = time.monotonic()
        await turn(store, "busy", follow_up)  # cached conversation: the save waits, bounded
        saved_in = time.monotonic() - started
        started = time.monotonic()
        await turn(store, "newcomer", first_turn)  # unknown: the read waits too, bounded
        new_in = time.monotonic() - started
        ticking.cancel()
        return saved_in, new_in, max(gaps)

    saved_in, new_in, longest_gap = asyncio.run(during_the_pause())
    assert saved_in < DID_NOT_HANG and new_in < DID_NOT_HANG
    assert longest_gap < 1.0  # the loop kept running while SQL waited on its threads
    assert notices.take("busy") == HELD
    assert notices.take("newcomer") == f"{NO_HISTORY}\n{HELD}"
    proxy.resume()
    wait_until(lambda: len(store.writer) == 0)
    assert stored(direct, "busy") == expected_rows(first_turn, follow_up)
    assert stored(direct, "newcomer") == expected_rows(first_turn)
    store.close()


CRASHING_SERVER = """
import asyncio, os, sys
from bot.tracker_store import CachedSQLTrackerStore
from tests.test_tracker_faults import turn
from tests.test_tracker_store import DOMAIN, follow_up
store = CachedSQLTrackerStore(domain=DOMAIN, host=sys.argv[1])
asyncio.run(turn(store, "crash", follow_up))
print(len(store.writer), flush=True)
os._exit(9)  # no clean-up: the spool file is all that is left
"""


def test_held_turns_survive_a_crash_and_are_adopted_by_the_next_server(proxied, tmp_path):
    proxy, url, direct = proxied
    CachedSQLTrackerStore(domain=DOMAIN, host=url).close()  # creates the table
    proxy.cut()
    env = {**__import__("os").environ, "PYTHONPATH": str(PROJECT_DIR)}
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_SERVER, url],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.stdout.strip() == "1", crashed.stderr[-2000:]
    spooled = list(Path(tmp_path / "unsaved-turns").glob("*.jsonl"))
    assert len(spooled) == 1 and "and the moderate ones?" in spooled[0].read_text()
    assert stored(direct, "crash") == []
    proxy.restore()
    successor = CachedSQLTrackerStore(domain=DOMAIN, host=url)
    wait_until(lambda: len(successor.writer) == 0)
    assert stored(direct, "crash") == expected_rows(follow_up)
    assert list(Path(tmp_path / "unsaved-turns").glob("*.jsonl")) == []
    successor.close()
    again = CachedSQLTrackerStore(domain=DOMAIN, host=url)  # nothing adopted twice
    assert len(again.writer) == 0 and stored(direct, "crash") == expected_rows(follow_up)
    again.close()


def test_long_conversations_are_compacted_in_memory_and_complete_in_sql(db_url, tmp_path):
    store = CachedSQLTrackerStore(domain=DOMAIN, host=db_url, spool=False)

    async def talk(turns):
        for index in range(turns):
            tracker = await turn(store, "long", first_turn if index % 2 else follow_up)
            tracker.update(SlotSet("query", f"turn {index}"))
            await store.save(tracker)
        return await store.retrieve("long")

    tracker = asyncio.run(talk(150))
    assert len(tracker.events) <= 400
    assert tracker.get_slot("query") == "turn 149"
    engine = create_engine(db_url, future=True)
    with engine.connect() as conn:
        users, slots = conn.execute(
            text(
                "SELECT SUM(type_name = 'user'), SUM(type_name = 'slot') FROM events "
                "WHERE sender_id = 'long'"
            )
        ).one()
    engine.dispose()
    assert (users, slots) == (150, 150 + 75)  # every turn stored; the compacted prefix never
    fresh = CachedSQLTrackerStore(domain=DOMAIN, host=db_url, spool=False)
    reloaded = asyncio.run(fresh.retrieve("long"))
    assert len(reloaded.events) <= 400 and reloaded.get_slot("query") == "turn 149"
    store.close()
    fresh.close()


def test_an_event_too_large_for_its_column_is_shortened_not_lost():
    data = {"event": "user", "text": "\U0001F600" * 20_000, "parse_data": {"text": "x" * 70_000}}
    stored_text = event_data(data)
    assert len(stored_text) <= 65_000
    loaded = json.loads(stored_text)
    assert loaded["event"] == "user" and loaded["text"].endswith("…[truncated]")
