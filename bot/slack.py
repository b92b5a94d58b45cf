"""Slack over the Events API: signed HTTP requests from Slack to /webhooks/slack/webhook.

`SegmentSlackInput` keeps Rasa's `SlackInput` for its settings and its signature check, and
answers each request itself:

1. a missing or wrong signature, or a timestamp more than 5 minutes off: 401;
2. a replayed request (same signature and timestamp seen before): 409;
3. an unreadable body, or an event or click whose fields are not what Slack sends: 400;
4. `url_verification`: answers the challenge;
5. an event whose event_id (or a click whose trigger_id) was seen before: a Slack retry
   (X-Slack-Retry-Num) is acknowledged with 200 and X-Slack-No-Retry, anything else refused
   with 409, so an event is answered once however often it arrives; a retry of an event never
   seen (its first delivery did not get here) is handled like a first delivery;
6. everything else goes to the shared `SlackHandler` (bot/slack_handler.py), as the Socket
   Mode channel's envelopes do: the allow-lists, the bot's own messages and over-long
   messages (answered "too long" in the thread) are screened there, and a person's message
   or click is handed to the assistant. Slack gets its 200 at once; the answer follows
   through the Web API (bot/slack_output.py). A turn the tracker store could not save ends
   with a notice in the thread (bot/notices.py).

Configuration comes from the credentials file written by bot/channels.py (non-secret settings)
and the environment: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET (never written to disk),
SLACK_API_URL (default https://slack.com/api/), SLACK_ALLOWED_CHANNELS, SLACK_ALLOWED_TEAMS
(comma-separated ids), SLACK_CONVERSATION_GRANULARITY (thread, channel or sender).
"""

from __future__ import annotations

import logging
import os
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Dict, Iterable, Optional, Text

from rasa.core.channels.channel import OutputChannel, UserMessage
from rasa.core.channels.slack import SlackInput
from rasa.shared.exceptions import InvalidConfigException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.notices import deliver_notices
from bot.rest import Refused
from bot.slack_checks import MAX_REQUEST_AGE, NEVER_DROP_RETRIES, as_text, parse_body
from bot.slack_handler import SeenCache, SlackHandler, merged_settings
from bot.slack_output import DEFAULT_API_URL

logger = logging.getLogger(__name__)


class SegmentSlackInput(SlackInput):
    """Slack's Events API with replay, retry, allow-list and self-message screening."""

    @classmethod
    def name(cls) -> Text:
        return "slack"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "SegmentSlackInput":
        """Settings from the credentials file; token and signing secret from the environment."""
        credentials = dict(credentials or {})
        token = credentials.get("slack_token") or os.environ.get("SLACK_BOT_TOKEN", "")
        secret = credentials.get("slack_signing_secret") or os.environ.get(
            "SLACK_SIGNING_SECRET", ""
        )
        if not token or not secret:
            raise InvalidConfigException(
                "The Slack channel needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET in the "
                "environment of the Rasa server (see docs/slack.md)."
            )
        settings = merged_settings(credentials, os.environ)
        return cls(
            token,
            credentials.get("slack_channel"),
            credentials.get("proxy"),
            credentials.get("slack_retry_reason_header", "x-slack-retry-reason"),
            credentials.get("slack_retry_number_header", "x-slack-retry-num"),
            credentials.get("errors_ignore_retry") or NEVER_DROP_RETRIES,
            bool(settings["use_threads"]),
            secret,
            settings["conversation_granularity"],
            api_url=settings["api_url"],
            allowed_channels=settings["allowed_channels"],
            allowed_teams=settings["allowed_teams"],
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
        self.handler = SlackHandler(
            self.slack_token,
            api_url=api_url,
            proxy=self.proxy,
            use_threads=bool(self.use_threads),
            granularity=self.conversation_granularity,
            allowed_channels=allowed_channels,
            allowed_teams=allowed_teams,
            slack_channel=self.slack_channel,
        )
        self.seen_requests = SeenCache(ttl=2 * MAX_REQUEST_AGE)

    def get_output_channel(
        self, channel: Optional[Text] = None, thread_id: Optional[Text] = None
    ) -> OutputChannel:
        return self.handler.output_channel(channel, thread_id)

    async def receive(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        """Screen one request from Slack (see the module docstring) and acknowledge it."""
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
        if retry and not event_id:  # a click cannot be told apart from its retry: once only
            logger.info("Acknowledged Slack retry #%s (%s) without processing", retry, reason)
            return response.text("", status=HTTPStatus.OK, headers={"X-Slack-No-Retry": "1"})
        if not self.handler.first_delivery(body):
            if retry:
                logger.info("Acknowledged Slack retry #%s (%s) of %s", retry, reason, event_id)
                return response.text("", status=HTTPStatus.OK, headers={"X-Slack-No-Retry": "1"})
            logger.warning("Refused a replayed Slack event %s", event_id)
            return response.text("replayed event", status=HTTPStatus.CONFLICT)
        if retry:
            logger.warning(
                "Slack retry #%s (%s) of unseen %s: handling it", retry, reason, event_id
            )
        try:
            refusal = await self.handler.screen(body)
        except Refused as refused:
            return response.text(refused.message, status=refused.status)
        if refusal:
            return response.text(refusal)
        self.handler.dispatch(body, on_new_message)
        return response.text("")

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        slack_webhook = Blueprint("slack_webhook", __name__)

        @slack_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @slack_webhook.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            return await self.receive(request, deliver_notices(on_new_message))

        @slack_webhook.listener("after_server_start")
        async def learn_own_user_id(app: Any, loop: Any) -> None:
            self.handler.background(self.handler.identify())

        return slack_webhook
