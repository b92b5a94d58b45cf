"""Two CachedSQLTrackerStores on one database, as two Rasa servers (SI_RASA_SERVERS > 1): a
conversation whose turns alternate between them is read as SQL has it, never from a stale
memory copy; with one server (not shared) the memory copy is used as it is."""

import asyncio

import pytest
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered

from bot.tracker_store import CachedSQLTrackerStore
from tests.servers import run_sql
from tests.test_tracker_store import DOMAIN


def turn(number):
    return [
        UserUttered(f"question {number}", {"name": "ask_segment_size"}),
        ActionExecuted("action_answer"),
        BotUttered(f"answer {number}"),
        ActionExecuted("action_listen"),
    ]


async def take_turn(store, sender, number):
    """What Rasa's processor does in a turn: retrieve (or create), add events, save."""
    tracker = await store.get_or_create_tracker(sender)
    for event in turn(number):
        tracker.update(event)
    await store.save(tracker)
    return tracker


def stored(url, sender):
    """(type, text) of the stored user and bot events of `sender`, in order (plain SQL)."""
    text_of = "json_extract" if url.startswith("sqlite") else "JSON_VALUE"
    found = run_sql(
        url,
        f"SELECT type_name, {text_of}(data, '$.text') AS said FROM events "
        "WHERE sender_id = :s AND type_name IN ('user', 'bot') ORDER BY id",
        s=sender,
    )
    return [(r.type_name, r.said) for r in found]


def said(tracker):
    return [(e.type_name, e.text) for e in tracker.events if e.type_name in ("user", "bot")]


@pytest.fixture
def servers(db_url):
    """Two stores on `db_url`, each as one of two Rasa servers sharing it."""
    made = [CachedSQLTrackerStore(domain=DOMAIN, host=db_url, spool=False, shared=True)]
    made.append(CachedSQLTrackerStore(domain=DOMAIN, host=db_url, spool=False, shared=True))
    yield made
    for store in made:
        store.close()


def test_alternating_turns_see_each_others_events(servers, db_url):
    first, second = servers

    async def conversation():
        for number in range(1, 7):  # 1, 3, 5 on the first server; 2, 4, 6 on the second
            await take_turn(first if number % 2 else second, "alternating", number)
        return await first.retrieve("alternating"), await second.retrieve("alternating")

    seen_by_first, seen_by_second = asyncio.run(conversation())
    expected = [
        (kind, f"{word} {n}")
        for n in range(1, 7)
        for kind, word in (("user", "question"), ("bot", "answer"))
    ]
    assert stored(db_url, "alternating") == expected  # every turn once, in order
    assert said(seen_by_first) == expected
    assert said(seen_by_second) == expected


def test_a_conversation_new_on_one_server_and_continued_on_the_other(servers, db_url):
    first, second = servers

    async def conversation():
        await take_turn(first, "moved", 1)
        await take_turn(first, "moved", 2)
        await take_turn(second, "moved", 3)  # the second server reads it from SQL
        return await first.retrieve("moved")

    expected = [
        (kind, f"{word} {n}")
        for n in (1, 2, 3)
        for kind, word in (("user", "question"), ("bot", "answer"))
    ]
    assert said(asyncio.run(conversation())) == expected
    assert stored(db_url, "moved") == expected


def test_one_server_uses_its_memory_copy(db_url):
    """Not shared (one Rasa server): the memory copy is trusted, which is why several servers
    need the check (this is what the check prevents)."""
    first = CachedSQLTrackerStore(domain=DOMAIN, host=db_url, spool=False, shared=False)
    second = CachedSQLTrackerStore(domain=DOMAIN, host=db_url, spool=False, shared=False)

    async def conversation():
        await take_turn(first, "alone", 1)
        await take_turn(second, "alone", 2)
        return await first.retrieve("alone")

    try:
        assert [text for _, text in said(asyncio.run(conversation()))] == [
            "question 1",
            "answer 1",
        ]
    finally:
        first.close()
        second.close()
