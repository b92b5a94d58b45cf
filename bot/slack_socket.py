"""Slack over Socket Mode: no public URL, the Rasa server connects out to Slack.

`SlackSocketModeInput` is a Rasa input channel whose blueprint starts slack_sdk's aiohttp
Socket Mode client when the server has started and closes it when the server stops. The
client gets a WebSocket URL from `apps.connections.open` (app-level `xapp-` token, at
SLACK_API_URL), connects to it, and receives envelopes:

- `events_api` (mentions, direct messages) and `interactive` (button clicks): each is
  acknowledged at once, before anything else, then screened and handed to the assistant by
  the same `SlackHandler` as the Events API channel (bot/slack_handler.py), so answers are
  identical. An envelope id or an event id seen before (Slack redelivers envelopes whose
  acknowledgement it did not get) is acknowledged and not answered again;
- `disconnect` (Slack refreshes connections regularly) and a dropped socket: the client opens a
  new connection with a freshly issued URL by itself.

`ReconnectingClient` adds two things to slack_sdk's client: a connection attempt that fails
never retries the same (single-use, short-lived) URL, and attempts that do not reach Slack's
`hello` are spaced out exponentially (1 s, 2 s, 4 s... up to a minute, with jitter).

GET /webhooks/slack_socket/ tells whether the connection is up. Settings as for the Events API
channel (bot/channels.py writes them); secrets from the environment: SLACK_BOT_TOKEN and
SLACK_APP_TOKEN.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from typing import Any, Awaitable, Callable, Dict, Optional, Text

import aiohttp
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.exceptions import InvalidConfigException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.notices import deliver_notices
from bot.rest import Refused
from bot.slack_handler import SeenCache, SlackHandler, merged_settings

logger = logging.getLogger(__name__)

ENVELOPE_TYPES = ("events_api", "interactive")


def backoff_delay(failures: int, base: float = 1.0, cap: float = 60.0) -> float:
    """Seconds to wait before the next attempt after `failures` failed ones (with jitter)."""
    if failures <= 0:
        return 0.0
    return min(cap, base * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)


class ReconnectingClient(SocketModeClient):
    """slack_sdk's aiohttp Socket Mode client; fresh URL per attempt, exponential back-off."""

    def __init__(self, *args: Any, max_backoff: float = 60.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_backoff = max_backoff
        self.attempts_without_hello = 0
        # aiohttp's tracing hooks see each WebSocket handshake fail (refused, expired URL...).
        trace = aiohttp.TraceConfig()
        trace.on_request_exception.append(self._forget_failed_url)
        trace.on_request_end.append(self._forget_refused_url)
        unused, self.aiohttp_client_session = self.aiohttp_client_session, aiohttp.ClientSession(
            trace_configs=[trace]
        )
        asyncio.ensure_future(unused.close())

    # This session only opens WebSockets (the Web API client has its own), so a failed
    # request here is a failed handshake: slack_sdk then asks apps.connections.open again.
    async def _forget_failed_url(self, session: Any, context: Any, params: Any) -> None:
        self.wss_uri = None

    async def _forget_refused_url(self, session: Any, context: Any, params: Any) -> None:
        if params.response.status != 101:
            self.wss_uri = None

    async def issue_new_wss_url(self) -> str:
        """A new URL from apps.connections.open, after a back-off if attempts keep failing."""
        delay = backoff_delay(self.attempts_without_hello, cap=self.max_backoff)
        if delay:
            logger.info("Reconnecting to Slack in %.1f s", delay)
            await asyncio.sleep(delay)
        self.attempts_without_hello += 1
        return await super().issue_new_wss_url()

    def hello_received(self) -> None:
        """Slack accepted the connection: the next reconnection starts without delay."""
        self.attempts_without_hello = 0


class SlackSocketModeInput(InputChannel):
    """Slack over Socket Mode, answering like the Events API channel."""

    @classmethod
    def name(cls) -> Text:
        return "slack_socket"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "SlackSocketModeInput":
        """Settings from the credentials file; the two tokens from the environment."""
        credentials = dict(credentials or {})
        token = os.environ.get("SLACK_BOT_TOKEN", "").strip()
        app_token = os.environ.get("SLACK_APP_TOKEN", "").strip()
        if not token or not app_token:
            raise InvalidConfigException(
                "Slack's Socket Mode needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN in the "
                "environment of the Rasa server (see docs/slack.md)."
            )
        if not app_token.startswith("xapp-"):
            raise InvalidConfigException(
                "SLACK_APP_TOKEN must be an app-level token (xapp-...) with the "
                "connections:write scope (Basic Information -> App-Level Tokens)."
            )
        settings = merged_settings(credentials, os.environ)
        proxy = credentials.get("proxy")
        handler = SlackHandler.from_settings(
            token, settings, proxy=proxy, slack_channel=credentials.get("slack_channel")
        )
        return cls(app_token, handler, proxy=proxy)

    def __init__(
        self,
        app_token: str,
        handler: SlackHandler,
        proxy: Optional[str] = None,
        ping_interval: float = 5.0,
    ) -> None:
        self.app_token = app_token
        self.handler = handler
        self.proxy = proxy
        self.ping_interval = ping_interval
        self.client: Optional[ReconnectingClient] = None
        self.connections = 0
        self.seen_envelopes = SeenCache(ttl=3600)
        self.on_new_message: Optional[Callable[[UserMessage], Awaitable[Any]]] = None
        self._connecting: Optional[asyncio.Future] = None

    def get_output_channel(self) -> OutputChannel:
        return self.handler.output_channel(None, None)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        """Create the client and connect in the background (the server starts regardless)."""
        self.on_new_message = on_new_message
        web_client = AsyncWebClient(base_url=self.handler.api_url, proxy=self.proxy)
        self.client = ReconnectingClient(
            app_token=self.app_token,
            web_client=web_client,
            proxy=self.proxy,
            ping_interval=self.ping_interval,
            logger=logging.getLogger("slack_sdk.socket_mode"),
        )
        self.client.message_listeners.append(self.on_message)
        self.client.socket_mode_request_listeners.append(self.on_request)
        self.handler.background(self.handler.identify())
        logger.info("Connecting to Slack in Socket Mode through %s", self.handler.api_url)
        self._connecting = asyncio.ensure_future(self.client.connect())

    async def stop(self) -> None:
        """Close the connection (Slack then sends events to the app's other connections)."""
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self.client is not None:
            await self.client.close()
            logger.info("Socket Mode connection closed")

    async def connected(self) -> bool:
        return self.client is not None and await self.client.is_connected()

    # -- envelopes --------------------------------------------------------------------------
    async def on_message(self, client: Any, message: Dict[str, Any], raw: Optional[str]) -> None:
        """Every message from Slack; `hello` confirms a new connection."""
        if message.get("type") == "hello":
            self.connections += 1
            if isinstance(client, ReconnectingClient):
                client.hello_received()
            logger.info(
                "Connected to Slack in Socket Mode (connection #%d, %s open for this app)",
                self.connections,
                message.get("num_connections", "?"),
            )

    async def on_request(self, client: Any, request: SocketModeRequest) -> None:
        """Acknowledge the envelope first, then screen it and hand it to the assistant."""
        try:
            await client.send_socket_mode_response(SocketModeResponse(request.envelope_id))
        except Exception as exc:  # noqa: BLE001 - Slack redelivers it; the ids catch that
            logger.warning("Could not acknowledge envelope %s: %s", request.envelope_id, exc)
        if self.seen_envelopes.seen_before(request.envelope_id):
            logger.info("Ignored envelope %s: delivered before", request.envelope_id)
            return
        if request.type not in ENVELOPE_TYPES or not isinstance(request.payload, dict):
            logger.info("Ignored a Socket Mode %s envelope", request.type)
            return
        body = request.payload
        if not self.handler.first_delivery(body):
            logger.info(
                "Ignored event %s: delivered before (retry %s, %s)",
                body.get("event_id") or body.get("trigger_id"),
                request.retry_attempt,
                request.retry_reason or "no reason",
            )
            return
        try:
            refusal = await self.handler.screen(body)
        except Refused as refused:  # fields unlike Slack's: nothing to answer
            logger.warning("Envelope %s refused: %s", request.envelope_id, refused.message)
            return
        if refusal:
            logger.debug("Envelope %s not served: %s", request.envelope_id, refusal)
            return
        if self.on_new_message is not None:
            self.handler.dispatch(body, self.on_new_message)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        socket_mode = Blueprint("slack_socket_mode", __name__)

        @socket_mode.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            up = await self.connected()
            return response.json(
                {
                    "status": "ok" if up else "connecting",
                    "connected": up,
                    "connections": self.connections,
                }
            )

        @socket_mode.listener("after_server_start")
        async def connect(app: Any, loop: Any) -> None:
            await self.start(deliver_notices(on_new_message))

        @socket_mode.listener("before_server_stop")
        async def disconnect(app: Any, loop: Any) -> None:
            await self.stop()

        return socket_mode
