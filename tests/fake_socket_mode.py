"""A local stand-in for Slack's Socket Mode WebSocket endpoint (tests only).

`FakeSlack.api_apps_connections_open` (tests/fake_slack.py) hands out URLs from `issue_url()`
shaped like Slack's, `ws://127.0.0.1:PORT/link/?ticket=...&app_id=...`. A ticket opens one
connection, within `url_ttl` seconds of being issued; any other handshake is refused with 401.

Each connection is greeted with `hello`, as Slack does. Tests then push envelopes to the newest
open connection: `events_api` and `interactive` (payloads from tests/slack_payloads.py),
`disconnect` (Slack's "please reconnect", after which the old socket is closed if the client
has not closed it within `grace` seconds), or close the socket from the server side, or stop
listening for a while (`outage()`).

Every acknowledgement (`{"envelope_id": ...}`) is recorded: which envelope, on which
connection, how long after it was sent. `ack_failures()` lists the envelopes Slack would count
as failed: not acknowledged within `ack_timeout` (3 s, Slack's limit), and acks for envelopes
that were never sent.

The server runs in its own thread with its own event loop (websockets 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import parse_qs, urlparse

import websockets

from tests.slack_payloads import APP_ID

ACK_TIMEOUT = 3.0  # Slack's limit for acknowledging an envelope


def wait_on(lock: threading.Condition, condition: Callable[[], Any], timeout: float, what: str):
    """Wait until `condition()`, called with `lock` held, is truthy (re-checked whenever the
    lock is notified, at least every 0.25 s); returns its value."""
    deadline = time.monotonic() + timeout
    with lock:
        while True:
            result = condition()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
            lock.wait(min(remaining, 0.25))


@dataclass
class Connection:
    """One WebSocket connection from the app."""

    number: int
    ticket: str
    opened_at: float
    socket: Any = field(default=None, repr=False)
    closed_at: Optional[float] = None
    close_code: Optional[int] = None
    closed_by: Optional[str] = None  # "server" when the fake closed it, else "client"


@dataclass
class Envelope:
    """An envelope sent to the app, and its acknowledgement."""

    envelope_id: str
    type: str
    body: Dict[str, Any]
    connection: int
    sent_at: float
    retry_attempt: int = 0
    acked_at: Optional[float] = None
    acks: int = 0

    @property
    def ack_delay(self) -> Optional[float]:
        return None if self.acked_at is None else self.acked_at - self.sent_at


class FakeSocketMode:
    """Slack's Socket Mode endpoint on 127.0.0.1; start()/stop() or use as a context manager."""

    def __init__(
        self, ack_timeout: float = ACK_TIMEOUT, url_ttl: float = 30.0, grace: float = 5.0
    ) -> None:
        self.ack_timeout = ack_timeout
        self.url_ttl = url_ttl
        self.grace = grace
        self.port = 0
        self.tickets: Dict[str, float] = {}  # unused ticket -> when it was issued
        self.refused: List[str] = []  # why handshakes were refused
        self.connections: List[Connection] = []
        self.envelopes: Dict[str, Envelope] = {}
        self.stray_acks: List[Dict[str, Any]] = []
        self._lock = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Any = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "FakeSocketMode":
        self._thread.start()
        self._run(self._listen())
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._run(self._close_server())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> "FakeSocketMode":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _run(self, coroutine: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _listen(self) -> None:
        self._server = await websockets.serve(
            self._serve, "127.0.0.1", self.port, process_request=self._check_ticket
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_server(self) -> None:
        if self._server is not None:
            with self._lock:
                for connection in self.connections:
                    if connection.closed_at is None:
                        connection.closed_by = "server"
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # -- handshake and connection ------------------------------------------------------------
    def issue_url(self) -> str:
        """A new single-use connection URL (what apps.connections.open returns)."""
        ticket = uuid.uuid4().hex
        with self._lock:
            self.tickets[ticket] = time.monotonic()
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={APP_ID}"

    async def _check_ticket(self, path: str, headers: Any) -> Any:
        url = urlparse(path)
        ticket = (parse_qs(url.query).get("ticket") or [""])[0]
        with self._lock:
            issued = self.tickets.pop(ticket, None)
            if url.path != "/link/" or issued is None:
                reason = "unknown or used ticket"
            elif time.monotonic() - issued > self.url_ttl:
                reason = "expired ticket"
            else:
                return None
            self.refused.append(reason)
            self._lock.notify_all()
        return HTTPStatus.UNAUTHORIZED, [], reason.encode()

    async def _serve(self, socket: Any) -> None:
        ticket = (parse_qs(urlparse(socket.path).query).get("ticket") or [""])[0]
        with self._lock:
            connection = Connection(len(self.connections) + 1, ticket, time.monotonic(), socket)
            self.connections.append(connection)
            live = sum(1 for c in self.connections if c.closed_at is None)
        hello = {
            "type": "hello",
            "num_connections": live,
            "debug_info": {
                "host": "applink-fake-1",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": APP_ID},
        }
        try:
            await socket.send(json.dumps(hello))
            async for raw in socket:
                self._receive(connection, raw)
        except websockets.ConnectionClosed:
            pass
        finally:
            with self._lock:
                connection.closed_at = time.monotonic()
                connection.close_code = socket.close_code
                connection.closed_by = connection.closed_by or "client"
                self._lock.notify_all()

    def _receive(self, connection: Connection, raw: Any) -> None:
        try:
            message = json.loads(raw)
        except (TypeError, ValueError):
            message = {"unreadable": repr(raw)[:200]}
        now = time.monotonic()
        with self._lock:
            envelope = self.envelopes.get(message.get("envelope_id") or "")
            if envelope is None:
                self.stray_acks.append(message)
            else:
                envelope.acks += 1
                envelope.acked_at = envelope.acked_at or now
            self._lock.notify_all()

    # -- what tests do -----------------------------------------------------------------------
    def current(self) -> Connection:
        """The newest open connection."""
        with self._lock:
            open_ = [c for c in self.connections if c.closed_at is None]
        if not open_:
            raise AssertionError("the app has no open Socket Mode connection")
        return open_[-1]

    def send(self, message: Dict[str, Any], connection: Optional[Connection] = None) -> None:
        """Send one JSON message on `connection` (default: the newest open one)."""
        connection = connection or self.current()
        self._run(connection.socket.send(json.dumps(message)))

    def send_envelope(
        self,
        kind: str,
        body: Dict[str, Any],
        envelope_id: Optional[str] = None,
        **fields: Any,
    ) -> str:
        """Send `body` in an envelope of type `kind` (events_api, interactive); its id."""
        envelope_id = envelope_id or str(uuid.uuid4())
        connection = self.current()
        message = {
            "envelope_id": envelope_id,
            "payload": body,
            "type": kind,
            "accepts_response_payload": False,
            **fields,
        }
        with self._lock:
            if envelope_id not in self.envelopes:
                self.envelopes[envelope_id] = Envelope(
                    envelope_id,
                    kind,
                    body,
                    connection.number,
                    time.monotonic(),
                    fields.get("retry_attempt") or 0,
                )
        self.send(message, connection)
        return envelope_id

    def send_event(self, body: Dict[str, Any], **fields: Any) -> str:
        """An events_api envelope (first delivery unless retry_attempt/retry_reason say so)."""
        fields = {"retry_attempt": 0, "retry_reason": "", **fields}
        return self.send_envelope("events_api", body, **fields)

    def redeliver(self, envelope_id: str, same_id: bool = False) -> str:
        """Deliver an event again, as Slack does when it missed the ack: a new envelope id
        (or the same one) with retry_attempt + 1 and retry_reason "timeout"."""
        first = self.envelopes[envelope_id]
        return self.send_event(
            first.body,
            envelope_id=envelope_id if same_id else None,
            retry_attempt=first.retry_attempt + 1,
            retry_reason="timeout",
        )

    def send_interactive(self, payload: Dict[str, Any]) -> str:
        return self.send_envelope("interactive", payload)

    def send_disconnect(self, reason: str = "refresh_requested") -> Connection:
        """Ask the app to reconnect; the socket is closed after `grace` s if still open."""
        connection = self.current()
        self.send(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake-1"}}
        )
        self._loop.call_later(self.grace, self._close_soon, connection)
        return connection

    def _close_soon(self, connection: Connection) -> None:
        if connection.closed_at is None:
            asyncio.ensure_future(self._close(connection, 1001, "refresh"))

    async def _close(self, connection: Connection, code: int, reason: str) -> None:
        with self._lock:
            connection.closed_by = connection.closed_by or "server"
        await connection.socket.close(code, reason)

    def close_current(self, code: int = 1001, reason: str = "going away") -> Connection:
        """Start closing the newest open connection from the server side (a close frame)."""
        connection = self.current()
        asyncio.run_coroutine_threadsafe(self._close(connection, code, reason), self._loop)
        return connection

    def start_outage(self) -> None:
        """Slack's WebSocket endpoint unreachable: open sockets closed, new ones refused."""
        self._run(self._close_server(), timeout=30)

    def end_outage(self) -> None:
        self._run(self._listen())

    @contextlib.contextmanager
    def outage(self):
        """start_outage() ... end_outage()."""
        self.start_outage()
        try:
            yield
        finally:
            self.end_outage()

    # -- checks ------------------------------------------------------------------------------
    def wait_for(self, condition: Callable[[], Any], timeout: float = 60.0) -> Any:
        """Wait until `condition()` (called with the lock held) is truthy."""
        return wait_on(self._lock, condition, timeout, "Socket Mode")

    def wait_connection(self, after: int = 0, timeout: float = 60.0) -> Connection:
        """Wait for an open connection numbered above `after`; returns it."""
        return self.wait_for(
            lambda: next(
                (c for c in self.connections if c.number > after and c.closed_at is None), None
            ),
            timeout,
        )

    def wait_acked(self, envelope_id: str, timeout: float = 30.0) -> Envelope:
        return self.wait_for(
            lambda: self.envelopes[envelope_id].acks and self.envelopes[envelope_id], timeout
        )

    def ack_failures(self) -> List[str]:
        """Envelopes not acknowledged within ack_timeout (so far), and acks of unknown ones."""
        now = time.monotonic()
        with self._lock:
            late = [
                e.envelope_id
                for e in self.envelopes.values()
                if (e.acked_at if e.acked_at is not None else now) - e.sent_at > self.ack_timeout
            ]
            return late + [f"stray ack: {json.dumps(a)[:120]}" for a in self.stray_acks]
