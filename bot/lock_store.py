"""The lock store that lets several Rasa servers share conversations: Redis, atomic, bounded.

endpoints.yml selects it when `python -m bot serve --rasa-servers N` runs more than one Rasa
server (SI_LOCK_STORE=bot.lock_store.SharedRedisLockStore; one server keeps Rasa's in-memory
lock store). Compared with Rasa's own `RedisLockStore` it:

- reads REDIS_URL (redis://[user:password@]host:port/db, rediss:// for TLS) instead of
  separate host/port settings;
- is **bounded**: every Redis call gives up after `REDIS_TIMEOUT` seconds (connect included),
  and an unreachable Redis at start-up is a clear error (`RedisUnavailable`), not a hang;
- is **atomic**: Rasa reads a conversation's ticket lock, changes it in Python and writes it
  back, so two servers issuing tickets for one conversation at once can lose one (and a lost
  ticket ends in a `LockError`, i.e. a lost message). Here every change of a lock is a Redis
  transaction (WATCH/MULTI), retried when another server changed the lock in between;
- turns Redis failures into `LockError`, which the REST and web chat channels answer with
  a note saying the message was not taken (bot/notices.py NOT_TAKEN);
- never blocks the event loop: Redis is called on threads of its own (Rasa calls it on the
  loop, so a slow Redis would stall every conversation of the server);
- polls a waiting message's turn every `POLL_SECONDS` (Rasa: 1 s), and lets a lock key expire
  in Redis when nobody has used it for a while, so a killed server leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, AsyncGenerator, Callable, Optional, Text, TypeVar

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore
from rasa.shared.exceptions import ConnectionException

logger = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_TIMEOUT = float(os.environ.get("SI_REDIS_TIMEOUT", "3"))
POLL_SECONDS = 0.05
KEY_PREFIX = "si:lock:"
ATTEMPTS = 100  # optimistic transactions before giving up (each retry means progress elsewhere)

T = TypeVar("T")


class RedisUnavailable(ConnectionException):
    """Redis does not answer at REDIS_URL."""


def redis_url(env: Optional[dict] = None) -> str:
    """REDIS_URL from the environment, or Redis on loopback."""
    env = os.environ if env is None else env
    return (env.get("REDIS_URL") or "").strip() or DEFAULT_REDIS_URL


def shown(url: str) -> str:
    """`url` without its password, for messages."""
    parsed = redis.connection.parse_url(url)
    if parsed.get("password"):
        return url.replace(parsed["password"], "***", 1)
    return url


def connect(url: str, timeout: float = REDIS_TIMEOUT) -> redis.Redis:
    """A client on `url` whose every call (connect included) gives up after `timeout` s, checked
    with a PING; raises `RedisUnavailable` with the reason."""
    try:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        client.ping()
        return client
    except (redis.RedisError, OSError, ValueError) as exc:
        raise RedisUnavailable(
            f"Redis at {shown(url)} (REDIS_URL) is not reachable: {str(exc).rstrip('.')}. Several Rasa servers "
            "need it for their shared lock store; start Redis or point REDIS_URL at one."
        ) from exc


class SharedRedisLockStore(LockStore):
    """Rasa's ticket locks in Redis, every change one transaction (see the module docstring)."""

    def __init__(self, endpoint_config: Any = None, url: Optional[Text] = None) -> None:
        configured = getattr(endpoint_config, "url", None)
        self.url = url or configured or redis_url()
        self.red = connect(self.url)
        self.key_prefix = KEY_PREFIX
        self._threads = ThreadPoolExecutor(8, thread_name_prefix="si-lock")
        super().__init__()

    def _key(self, conversation_id: Text) -> str:
        return self.key_prefix + conversation_id

    # -- plain reads and writes (as Rasa's RedisLockStore) ----------------------------------------
    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        """The conversation's lock, or None."""
        raw = self.red.get(self._key(conversation_id))
        return TicketLock.from_dict(json.loads(raw)) if raw else None

    def delete_lock(self, conversation_id: Text) -> None:
        """Remove the conversation's lock."""
        self._log_deletion(conversation_id, bool(self.red.delete(self._key(conversation_id))))

    def save_lock(self, lock: TicketLock) -> None:
        """Store `lock` (it expires when unused for a few lifetimes)."""
        self.red.set(self._key(lock.conversation_id), lock.dumps(), ex=self._expiry())

    @staticmethod
    def _expiry() -> int:
        return int(LOCK_LIFETIME * 3) + 1

    # -- atomic changes ---------------------------------------------------------------------------
    def _change(self, conversation_id: Text, change: Callable[[TicketLock], T]) -> T:
        """Apply `change` to the conversation's lock in one transaction: the lock is saved, or
        deleted once nobody holds or waits for a ticket."""
        key = self._key(conversation_id)
        with self.red.pipeline() as pipe:
            for _ in range(ATTEMPTS):
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    lock = (
                        TicketLock.from_dict(json.loads(raw))
                        if raw
                        else self.create_lock(conversation_id)
                    )
                    result = change(lock)
                    pipe.multi()
                    if lock.tickets:
                        pipe.set(key, lock.dumps(), ex=self._expiry())
                    else:
                        pipe.delete(key)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue
        raise LockError(f"The lock of conversation '{conversation_id}' changes too often.")

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """A new ticket for the conversation (atomic)."""
        try:
            return self._change(conversation_id, lambda lock: lock.issue_ticket(lock_lifetime))
        except (redis.RedisError, OSError) as exc:
            raise LockError(f"Error while acquiring lock. Error:\n{exc}") from exc

    def update_lock(self, conversation_id: Text) -> None:
        """Drop expired tickets (atomic)."""
        if self.red.exists(self._key(conversation_id)):
            self._change(conversation_id, lambda lock: lock.remove_expired_tickets())

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        """Remove `ticket_number` (atomic)."""
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number))

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Remove `ticket_number`; the lock goes when no ticket is left (one transaction, so
        a ticket issued meanwhile by another server is never deleted with it)."""
        self.finish_serving(conversation_id, ticket_number)

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, function, *args)

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: Text,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = POLL_SECONDS,
    ) -> AsyncGenerator[TicketLock, None]:
        """Rasa's ticket lock (as `LockStore.lock`), Redis off the event loop, polled every
        `POLL_SECONDS`; a Redis failure is a `LockError`."""
        wait = min(wait_time_in_seconds, POLL_SECONDS)
        try:
            ticket = await self._call(self.issue_ticket, conversation_id, lock_lifetime)
            try:
                yield await self._acquire(conversation_id, ticket, wait)
            finally:
                await self._call(self.cleanup, conversation_id, ticket)
        except (redis.RedisError, OSError) as exc:  # Redis gone mid-turn: a clear LockError
            raise LockError(f"The lock store at {shown(self.url)} failed: {exc}") from exc

    async def _acquire(self, conversation_id: Text, ticket: int, wait: float) -> TicketLock:
        """Wait for `ticket`'s turn (as Rasa's `_acquire_lock`, off the event loop)."""
        while True:
            lock = await self._call(self.get_lock, conversation_id)
            if not lock:  # expired: the ticket waited longer than its lifetime
                break
            if not lock.is_locked(ticket):
                return lock
            await asyncio.sleep(wait)
            await self._call(self.update_lock, conversation_id)
        raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
