"""Slack: Rasa's Slack connector, hardened, answering in threads and uploading charts.

`SegmentSlackInput` extends Rasa's `SlackInput` (its signature check, event parsing, button
payloads and `use_threads` stay in charge) with a request screen that runs before Rasa's
handler:

1. a missing or wrong signature, or a timestamp more than 5 minutes off: 401;
2. a replayed request (same signature and timestamp, or same event_id, seen before): 409;
3. `url_verification`: answers the challenge;
4. a Slack retry (X-Slack-Retry-Num): acknowledged with 200 and X-Slack-No-Retry, never
   processed, so a slow first answer is not repeated;
5. teams and channels outside SLACK_ALLOWED_TEAMS / SLACK_ALLOWED_CHANNELS: acknowledged,
   not served;
6. the bot's own messages (bot_id, subtype bot_message, the bot's user id) and other message
   subtypes (edits, joins...): acknowledged, ignored.

`SegmentSlackBot` (bot/slack_output.py) extends Rasa's `SlackBot`: one message per answer (mrkdwn,
``` tables intact), buttons as Block Kit with a mrkdwn section, and our chart images uploaded
as files into the same thread (files.getUploadURLExternal -> upload -> completeUploadExternal,
via slack_sdk's files_upload_v2), because Slack cannot fetch a loopback URL.

Configuration comes from the credentials file written by bot/channels.py (non-secret settings)
and the environment: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET (never written to disk),
SLACK_API_URL (default https://slack.com/api/), SLACK_ALLOWED_CHANNELS, SLACK_ALLOWED_TEAMS
(comma-separated ids), SLACK_CONVERSATION_GRANULARITY (thread, channel or sender).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import OrderedDict
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional, Text
from urllib.parse import parse_qs

from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.channels.slack import SlackInput
from rasa.shared.exceptions import InvalidConfigException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_output import (
    DEFAULT_API_URL,
    SegmentSlackBot,
    api_base_url,
    slack_escape,
)

logger = logging.getLogger(__name__)

GRANULARITIES = ("thread", "channel", "sender")
# Slack answers time out after 3 s and are retried; a request older than this is refused.
MAX_REQUEST_AGE = 5 * 60
# Message subtypes that carry a person's words; every other subtype is ignored.
USER_SUBTYPES = {None, "", "file_share", "thread_broadcast", "me_message"}
CHART_ROUTE = "/webhooks/webchat/charts/"


# --- settings --------------------------------------------------------------------------------
def split_ids(value: Any) -> List[str]:
    """ "C1, C2" or ["C1", "C2"] -> ["C1", "C2"]."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [item.strip() for item in items if item and item.strip()]


def settings_from_env(env: Mapping[str, str]) -> Dict[str, Any]:
    """Non-secret channel settings from the environment (for the credentials file)."""
    granularity = env.get("SLACK_CONVERSATION_GRANULARITY", "").strip() or "thread"
    return {
        "use_threads": True,
        "conversation_granularity": granularity,
        "api_url": api_base_url(env.get("SLACK_API_URL")),
        "allowed_channels": split_ids(env.get("SLACK_ALLOWED_CHANNELS")),
        "allowed_teams": split_ids(env.get("SLACK_ALLOWED_TEAMS")),
    }


# --- replay protection -----------------------------------------------------------------------
class SeenCache:
    """Keys seen in the last `ttl` seconds (at most `max_items`): a replay detector."""

    def __init__(self, ttl: float, max_items: int = 100_000) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self._items: "OrderedDict[str, float]" = OrderedDict()
        self._lock = threading.Lock()

    def seen_before(self, key: str, now: Optional[float] = None) -> bool:
        """True if `key` was seen within `ttl`; records it otherwise."""
        now = time.time() if now is None else now
        with self._lock:
            while self._items:
                oldest, stamp = next(iter(self._items.items()))
                if now - stamp <= self.ttl and len(self._items) < self.max_items:
                    break
                self._items.popitem(last=False)
            if key in self._items:
                return True
            self._items[key] = now
            return False


# --- input -----------------------------------------------------------------------------------
def _media_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower()


def _parse(request: Request) -> Optional[Dict[str, Any]]:
    """The event (JSON body) or the interactive payload (form field `payload`)."""
    try:
        kind = _media_type(request)
        if kind == "application/json":
            body = json.loads(request.body or b"{}")
        elif kind == "application/x-www-form-urlencoded":
            body = json.loads(parse_qs(request.body.decode("utf-8"))["payload"][0])
        else:
            return None
    except (ValueError, KeyError, IndexError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class SegmentSlackInput(SlackInput):
    """Rasa's Slack input channel with replay, retry, allow-list and self-message screening."""

    @classmethod
    def name(cls) -> Text:
        return "slack"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "SegmentSlackInput":
        """Settings from the credentials file; token and signing secret from the environment."""
        import os

        credentials = dict(credentials or {})
        defaults = settings_from_env(os.environ)
        token = credentials.get("slack_token") or os.environ.get("SLACK_BOT_TOKEN", "")
        secret = credentials.get("slack_signing_secret") or os.environ.get(
            "SLACK_SIGNING_SECRET", ""
        )
        if not token or not secret:
            raise InvalidConfigException(
                "The Slack channel needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET in the "
                "environment of the Rasa server (see docs/slack.md)."
            )

        def setting(key: str) -> Any:
            return credentials[key] if credentials.get(key) is not None else defaults[key]

        return cls(
            token,
            credentials.get("slack_channel"),
            credentials.get("proxy"),
            credentials.get("slack_retry_reason_header", "x-slack-retry-reason"),
            credentials.get("slack_retry_number_header", "x-slack-retry-num"),
            credentials.get("errors_ignore_retry"),
            bool(setting("use_threads")),
            secret,
            setting("conversation_granularity"),
            api_url=setting("api_url"),
            allowed_channels=split_ids(setting("allowed_channels")),
            allowed_teams=split_ids(setting("allowed_teams")),
        )

    def __init__(
        self,
        *args: Any,
        api_url: Text = DEFAULT_API_URL,
        allowed_channels: Iterable[str] = (),
        allowed_teams: Iterable[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if self.conversation_granularity not in GRANULARITIES:
            raise InvalidConfigException(
                f"conversation_granularity must be one of {', '.join(GRANULARITIES)}, "
                f"not {self.conversation_granularity!r}"
            )
        self.api_url = api_base_url(api_url)
        self.allowed_channels = set(allowed_channels)
        self.allowed_teams = set(allowed_teams)
        self.client = AsyncWebClient(
            token=self.slack_token, base_url=self.api_url, proxy=self.proxy
        )
        self.seen_requests = SeenCache(ttl=2 * MAX_REQUEST_AGE)
        self.seen_events = SeenCache(ttl=3600)
        self.bot_user_id: Optional[str] = None
        self._identity_checked: Optional[float] = None

    # -- who am I ---------------------------------------------------------------------------
    async def identify(self) -> Optional[str]:
        """The bot's own user id (auth.test), looked up once; retried at most once a minute."""
        checked = self._identity_checked
        if self.bot_user_id or (checked is not None and time.monotonic() - checked < 60):
            return self.bot_user_id
        self._identity_checked = time.monotonic()
        try:
            answer = await self.client.auth_test()
            self.bot_user_id = answer.get("user_id") or None
        except (SlackApiError, SlackClientError, OSError, asyncio.TimeoutError) as exc:
            logger.warning("auth.test failed, the bot's user id is unknown for now: %s", exc)
        return self.bot_user_id

    def own_ids(self, body: Dict[str, Any]) -> set:
        ids = {self.bot_user_id} if self.bot_user_id else set()
        for item in body.get("authorizations") or []:
            if isinstance(item, dict) and item.get("is_bot") and item.get("user_id"):
                ids.add(item["user_id"])
        return ids

    def get_metadata(self, request: Request) -> Dict[Text, Any]:
        metadata = super().get_metadata(request)
        if metadata and self.bot_user_id and self.bot_user_id not in metadata["users"]:
            metadata["users"] = list(metadata["users"]) + [self.bot_user_id]
        return metadata

    def get_output_channel(
        self, channel: Optional[Text] = None, thread_id: Optional[Text] = None
    ) -> OutputChannel:
        channel = channel or self.slack_channel
        return SegmentSlackBot(self.slack_token, channel, thread_id, self.proxy, self.api_url)

    # -- screening --------------------------------------------------------------------------
    def allowed(self, team_ids: Iterable[Optional[str]], channel: Optional[str]) -> bool:
        if self.allowed_teams and not self.allowed_teams.intersection(t for t in team_ids if t):
            return False
        if self.allowed_channels and channel not in self.allowed_channels:
            return False
        return True

    async def screen(self, request: Request) -> Optional[HTTPResponse]:
        """A response that ends the request here, or None to let Rasa's handler process it."""
        if not self.is_request_from_slack_authentic(request):
            logger.warning("Refused a Slack request: missing/invalid signature or stale")
            return response.text("invalid or stale signature", status=HTTPStatus.UNAUTHORIZED)
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if self.seen_requests.seen_before(f"{stamp}:{signature}"):
            logger.warning("Refused a replayed Slack request (timestamp %s)", stamp)
            return response.text("replayed request", status=HTTPStatus.CONFLICT)
        body = _parse(request)
        if body is None:
            return response.text("unreadable request", status=HTTPStatus.BAD_REQUEST)
        if body.get("type") == "url_verification":
            return response.json({"challenge": body.get("challenge", "")})
        retry = request.headers.get(self.retry_num_header or "x-slack-retry-num")
        if retry:
            reason = request.headers.get(self.retry_reason_header or "x-slack-retry-reason")
            logger.info("Acknowledged Slack retry #%s (%s) without processing", retry, reason)
            return response.text("", status=HTTPStatus.OK, headers={"X-Slack-No-Retry": "1"})
        event_id = body.get("event_id")
        if event_id and self.seen_events.seen_before(str(event_id)):
            logger.warning("Refused a replayed Slack event %s", event_id)
            return response.text("replayed event", status=HTTPStatus.CONFLICT)
        try:  # usually cached; never let a slow Web API hold up the 3-second acknowledgement
            await asyncio.wait_for(self.identify(), timeout=2.0)
        except asyncio.TimeoutError:
            logger.warning("auth.test is slow; checking the bot's own messages without it")
        if body.get("type") == "event_callback":
            return self.screen_event(body)
        if body.get("type") == "block_actions":
            return self.screen_action(body)
        return None

    def screen_event(self, body: Dict[str, Any]) -> Optional[HTTPResponse]:
        event = body.get("event") or {}
        teams = [body.get("team_id"), body.get("enterprise_id"), event.get("team")]
        if not self.allowed(teams, event.get("channel")):
            logger.warning(
                "Ignored a Slack event from team %s channel %s (not in the allow-list)",
                body.get("team_id"),
                event.get("channel"),
            )
            return response.text("not served here")
        if (
            event.get("bot_id")
            or event.get("subtype") not in USER_SUBTYPES
            or event.get("user") in self.own_ids(body)
        ):
            return response.text("ignored")
        return None

    def screen_action(self, body: Dict[str, Any]) -> Optional[HTTPResponse]:
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        teams = [
            (body.get("team") or {}).get("id"),
            (body.get("user") or {}).get("team_id"),
            (body.get("enterprise") or {}).get("id"),
        ]
        if not self.allowed(teams, channel):
            logger.warning("Ignored a Slack click in channel %s (not in the allow-list)", channel)
            return response.text("not served here")
        action = (body.get("actions") or [{}])[0]
        if action.get("type") == "button" and action.get("value") and channel:
            self.background(self.mark_choice(body, channel, action))
        return None

    def background(self, job: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(job)
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)

    async def mark_choice(self, body: Dict[str, Any], channel: str, action: Dict) -> None:
        """Replace the clicked message's buttons by "<user> chose <title>" (no double clicks)."""
        message = body.get("message") or {}
        if not message.get("ts"):
            return
        title = _text((action.get("text") or {}).get("text")) or "an option"
        user = (body.get("user") or {}).get("id")
        who = f"<@{user}>" if user else "Someone"
        blocks = [b for b in message.get("blocks") or [] if b.get("type") != "actions"]
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"{who} chose *{slack_escape(title)}*"}],
            }
        )
        try:
            await self.client.chat_update(
                channel=channel, ts=message["ts"], text=message.get("text") or title, blocks=blocks
            )
        except (SlackApiError, SlackClientError) as exc:
            logger.warning("Could not update the clicked message: %s", exc)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        slack_webhook = super().blueprint(on_new_message)

        @slack_webhook.listener("after_server_start")
        async def learn_own_user_id(app: Any, loop: Any) -> None:
            self.background(self.identify())

        @slack_webhook.middleware("request")
        async def screen_requests(request: Request) -> Optional[HTTPResponse]:
            if request.method == "POST" and request.path.rstrip("/").endswith("/webhook"):
                return await self.screen(request)
            return None

        return slack_webhook
