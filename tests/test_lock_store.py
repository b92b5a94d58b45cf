"""The shared Redis lock store (bot/lock_store.py) against the real Redis: two stores, as two
Rasa servers, serve one conversation's messages one at a time, in ticket order, none lost; an
unreachable Redis is a clear error within the time limit."""

import asyncio
import threading
import uuid

import pytest
from rasa.core.lock_store import LockError

from bot.lock_store import RedisUnavailable, SharedRedisLockStore, connect
from tests.tcp_proxy import TcpProxy

MESSAGES_PER_SERVER = 15


def test_two_servers_serve_one_conversation_one_message_at_a_time(redis_url):
    conversation = f"lock-test-{uuid.uuid4().hex}"
    stores = [SharedRedisLockStore(url=redis_url), SharedRedisLockStore(url=redis_url)]
    holding: list = []  # who holds the lock, appended on entry and on exit
    guard = threading.Lock()
    errors: list = []
    start = threading.Barrier(2)

    async def message(store, name):
        async with store.lock(conversation) as _:
            with guard:
                holding.append(("in", name))
            await asyncio.sleep(0.01)  # the turn: another message may try to get in now
            with guard:
                holding.append(("out", name))

    def server(index):
        async def serve():
            start.wait()
            names = [f"s{index}-m{i}" for i in range(MESSAGES_PER_SERVER)]
            await asyncio.gather(*(message(stores[index], name) for name in names))

        try:
            asyncio.run(serve())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=server, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert len(holding) == 4 * MESSAGES_PER_SERVER  # every message served, none lost
    for entered, left in zip(holding[::2], holding[1::2]):  # never two at once
        assert entered[0] == "in" and left == ("out", entered[1])
    assert {name for _, name in holding[::2]} == {
        f"s{i}-m{m}" for i in (0, 1) for m in range(MESSAGES_PER_SERVER)
    }
    assert connect(redis_url).exists(stores[0].key_prefix + conversation) == 0  # cleaned up


def test_tickets_are_issued_in_order_across_servers(redis_url):
    conversation = f"lock-order-{uuid.uuid4().hex}"
    first, second = SharedRedisLockStore(url=redis_url), SharedRedisLockStore(url=redis_url)
    tickets = [first.issue_ticket(conversation), second.issue_ticket(conversation)]
    tickets.append(first.issue_ticket(conversation))
    assert tickets == [0, 1, 2]  # Rasa's numbering starts at 0
    assert second.get_lock(conversation).now_serving == 0
    first.cleanup(conversation, 0)
    assert second.get_lock(conversation).now_serving == 1
    second.cleanup(conversation, 1)
    first.cleanup(conversation, 2)
    assert first.get_lock(conversation) is None


@pytest.mark.parametrize("fault", ["refused", "hung"])
def test_unreachable_redis_is_a_clear_error(redis_url, fault):
    from redis.connection import parse_url

    target = parse_url(redis_url)
    proxy = TcpProxy((target.get("host", "127.0.0.1"), int(target.get("port", 6379))))
    try:
        if fault == "refused":
            proxy.cut()
        else:
            proxy.pause()  # accepts, never answers
        url = f"redis://127.0.0.1:{proxy.port}/0"
        with pytest.raises(RedisUnavailable, match=r"Redis at redis://127\.0\.0\.1:\d+/0"):
            SharedRedisLockStore(url=url)
    finally:
        proxy.restore() if fault == "refused" else proxy.resume()
        proxy.close()


def test_a_redis_that_stops_answering_fails_the_message_not_the_server(redis_url):
    from redis.connection import parse_url

    target = parse_url(redis_url)
    proxy = TcpProxy((target.get("host", "127.0.0.1"), int(target.get("port", 6379))))
    try:
        store = SharedRedisLockStore(url=f"redis://127.0.0.1:{proxy.port}/0")
        proxy.pause()
        with pytest.raises(LockError):
            store.issue_ticket(f"lock-hung-{uuid.uuid4().hex}")

        async def turn():  # as Rasa's agent takes a message: a LockError, not a hang
            async with store.lock(f"lock-hung-{uuid.uuid4().hex}"):
                pass

        with pytest.raises(LockError, match="Error while acquiring lock"):
            asyncio.run(turn())
    finally:
        proxy.resume()
        proxy.close()
