"""Slack: Rasa's Slack connector, hardened, answering in threads and uploading charts.

`SegmentSlackInput` extends Rasa's `SlackInput` (its signature check, event parsing, button
payloads and `use_threads` stay in charge) with a request screen that runs before Rasa's
handler:

1. a missing or wrong signature, or a timestamp more than 5 minutes off: 401;
2. a replayed request (same signature and timestamp seen before): 409;
3. an unreadable body, or an event or click whose fields are not what Slack sends (an
   event that is not an object, ids that are not ids...): 400;
4. `url_verification`: answers the challenge;
5. an event whose event_id was seen before: a Slack retry (X-Slack-Retry-Num) is
   acknowledged with 200 and X-Slack-No-Retry, anything else refused with 409 - so an event
   is answered once, however often it arrives. A retry of an event never seen (its first
   delivery did not get here) is handled like a first delivery; a retried click (no
   event_id) is acknowledged, not handled;
6. teams and channels outside SLACK_ALLOWED_TEAMS / SLACK_ALLOWED_CHANNELS: acknowledged,
   not served;
7. the bot's own messages (bot_id, subtype bot_message, the bot's user id) and other message
   subtypes (edits, joins...): acknowledged, ignored;
8. a message longer than the REST channel's limit (bot/rest.py): acknowledged, and answered
   in its thread with a polite "too long" instead of reaching the assistant.

A turn the tracker store could not save ends with a notice in the thread (bot/notices.py).

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
import logging
import time
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Dict, Iterable, Optional, Text

from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.channels.slack import SlackInput
from rasa.shared.exceptions import InvalidConfigException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.notices import deliver_notices
from bot.rest import TOO_LONG, Refused, too_long
from bot.slack_checks import (  # noqa: F401 - SeenCache, settings_from_env: used elsewhere
    GRANULARITIES,
    MAX_REQUEST_AGE,
    NEVER_DROP_RETRIES,
    USER_SUBTYPES,
    SeenCache,
    as_text,
    checked_action,
    checked_event,
    parse_body,
    settings_from_env,
    split_ids,
)
from bot.slack_output import (
    DEFAULT_API_URL,
    SEND_ERRORS,
    SegmentSlackBot,
    api_base_url,
    pacer,
    slack_escape,
    web_client,
)

logger = logging.getLogger(__name__)


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
            credentials.get("errors_ignore_retry") or NEVER_DROP_RETRIES,
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
        self.client = web_client(self.slack_token, self.api_url, self.proxy)
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
        body = parse_body(request)
        if body is None:
            return response.text("unreadable request", status=HTTPStatus.BAD_REQUEST)
        if body.get("type") == "url_verification":
            return response.json({"challenge": as_text(body.get("challenge"))})
        retry = request.headers.get(self.retry_num_header or "x-slack-retry-num")
        reason = request.headers.get(self.retry_reason_header or "x-slack-retry-reason")
        event_id = body.get("event_id")
        if event_id is not None and not isinstance(event_id, str):
            return response.text("unreadable event_id", status=HTTPStatus.BAD_REQUEST)
        if event_id and self.seen_events.seen_before(event_id):
            if retry:
                logger.info("Acknowledged Slack retry #%s (%s) of %s", retry, reason, event_id)
                return response.text("", status=HTTPStatus.OK, headers={"X-Slack-No-Retry": "1"})
            logger.warning("Refused a replayed Slack event %s", event_id)
            return response.text("replayed event", status=HTTPStatus.CONFLICT)
        if retry and not event_id:  # a click cannot be told apart from its retry: once only
            logger.info("Acknowledged Slack retry #%s (%s) without processing", retry, reason)
            return response.text("", status=HTTPStatus.OK, headers={"X-Slack-No-Retry": "1"})
        if retry:
            logger.warning(
                "Slack retry #%s (%s) of unseen %s: handling it", retry, reason, event_id
            )
        try:  # usually cached; never let a slow Web API hold up the 3-second acknowledgement
            await asyncio.wait_for(self.identify(), timeout=2.0)
        except asyncio.TimeoutError:
            logger.warning("auth.test is slow; checking the bot's own messages without it")
        try:
            if body.get("type") == "event_callback":
                return self.screen_event(body)
            if body.get("type") == "block_actions":
                return self.screen_action(body)
        except Refused as refused:
            return response.text(refused.message, status=refused.status)
        return None

    def screen_event(self, body: Dict[str, Any]) -> Optional[HTTPResponse]:
        event = checked_event(body.get("event"))
        teams = [
            as_text(body.get("team_id")),
            as_text(body.get("enterprise_id")),
            event.get("team"),
        ]
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
        if too_long(event.get("text") or ""):
            if event.get("channel"):
                thread = event.get("thread_ts") or event.get("ts")
                self.background(self.say_too_long(event["channel"], thread))
            return response.text("too long")
        return None

    async def say_too_long(self, channel: str, thread: Optional[str]) -> None:
        """Answer an over-long message in its thread instead of passing it on."""
        await pacer.wait(channel)
        try:
            await self.client.chat_postMessage(
                channel=channel,
                thread_ts=thread,
                text=f"Sorry, I can't take that message: {TOO_LONG}. Could you ask more briefly?",
            )
        except SEND_ERRORS as exc:
            logger.error("Could not answer an over-long message in %s: %s", channel, exc)

    def screen_action(self, body: Dict[str, Any]) -> Optional[HTTPResponse]:
        checked_action(body)
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
        action = body["actions"][0]
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
        title = as_text((action.get("text") or {}).get("text")) or "an option"
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
        slack_webhook = super().blueprint(deliver_notices(on_new_message))

        @slack_webhook.listener("after_server_start")
        async def learn_own_user_id(app: Any, loop: Any) -> None:
            self.background(self.identify())

        @slack_webhook.middleware("request")
        async def screen_requests(request: Request) -> Optional[HTTPResponse]:
            if request.method == "POST" and request.path.rstrip("/").endswith("/webhook"):
                return await self.screen(request)
            return None

        return slack_webhook
