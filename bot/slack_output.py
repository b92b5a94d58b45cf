"""Slack output: Rasa's SlackBot answering in threads, with Block Kit buttons and chart uploads.

One message per answer: the action's structured reply (the `custom` payload) as Block Kit
sections (tables in code blocks, the run as a context line) with its mrkdwn text as the
notification fallback; buttons as Block Kit with a mrkdwn section; charts uploaded as files
into the same thread with the title the action gave them (files.getUploadURLExternal ->
upload -> completeUploadExternal, via slack_sdk's files_upload_v2), because Slack cannot
fetch a loopback URL.

Rate limits: every Web API client retries an HTTP 429 after its Retry-After (slack_sdk's
AsyncRateLimitErrorRetryHandler, `RATE_LIMIT_RETRIES` times), and posts into one channel are
paced to Slack's one message per second (short bursts of `BURST` allowed; `ChannelPacer`).
A post that still fails is logged and skipped: the rest of the answer goes on, and the turn
is still stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

from rasa.core.channels.slack import SlackBot
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    async_default_handlers,
)
from slack_sdk.web.async_client import AsyncWebClient

from segmentation.charts import saved_chart
from segmentation.export_files import saved_export
from segmentation.render.document import Reply
from segmentation.render.markup import slack_blocks

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"
# Slack recommends messages under 4,000 characters; a section block takes at most 3,000.
MAX_MESSAGE_CHARS = 3500
MAX_SECTION_CHARS = 3000
MAX_BUTTONS = 25
MAX_BUTTON_TITLE = 75
MAX_BUTTON_VALUE = 2000
RATE_LIMIT_RETRIES = 3
API_TIMEOUT = 15  # seconds per Web API call
POSTS_PER_SECOND = 1.0  # Slack's chat.postMessage limit per channel
BURST = 3
SEND_ERRORS = (SlackApiError, SlackClientError, OSError, asyncio.TimeoutError)


def api_base_url(value: Optional[str]) -> str:
    """The Web API base URL, ending in a slash as slack_sdk expects."""
    url = (value or "").strip() or DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


def web_client(token: str, api_url: Optional[str] = None, proxy: Optional[str] = None):
    """An AsyncWebClient that waits out HTTP 429 (Retry-After) and connection errors."""
    return AsyncWebClient(
        token=token,
        base_url=api_base_url(api_url),
        proxy=proxy,
        timeout=API_TIMEOUT,
        retry_handlers=async_default_handlers()
        + [AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
    )


class ChannelPacer:
    """A token bucket per channel: `rate` posts per second, bursts of `burst`."""

    def __init__(
        self,
        rate: float = POSTS_PER_SECOND,
        burst: int = BURST,
        clock=time.monotonic,
        sleep=asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock, self._sleep = clock, sleep
        self._buckets: "OrderedDict[str, List[float]]" = OrderedDict()  # [tokens, stamp]
        self._locks: Dict[str, asyncio.Lock] = {}

    async def wait(self, channel: str) -> None:
        """Return when `channel` may take one more post."""
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            tokens, stamp = self._buckets.pop(channel, [float(self.burst), self._clock()])
            now = self._clock()
            tokens = min(float(self.burst), tokens + (now - stamp) * self.rate)
            if tokens < 1.0:
                await self._sleep((1.0 - tokens) / self.rate)
                now, tokens = self._clock(), 1.0
            self._buckets[channel] = [tokens - 1.0, now]
            while len(self._buckets) > 10_000:
                old, _ = self._buckets.popitem(last=False)
                self._locks.pop(old, None)


pacer = ChannelPacer()


# --- text ------------------------------------------------------------------------------------
def slack_escape(text: str) -> str:
    """Escape the three characters Slack treats as markup (&, <, >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def split_message(text: str, limit: int = MAX_MESSAGE_CHARS) -> List[str]:
    """Split a long message at line ends, closing and reopening ``` blocks across parts."""
    if len(text) <= limit:
        return [text]
    parts: List[str] = []
    current: List[str] = []
    size = 0
    in_code = False
    for line in text.split("\n"):
        extra = len(line) + 1
        if current and size + extra + 4 > limit:
            parts.append("\n".join(current + (["```"] if in_code else [])))
            current, size = (["```"], 4) if in_code else ([], 0)
        while len(line) > limit:  # a single huge line: hard cut
            parts.append(line[:limit])
            line = line[limit:]
        current.append(line)
        size += len(line) + 1
        if line.count("```") % 2:
            in_code = not in_code
    if current:
        parts.append("\n".join(current))
    return [part for part in parts if part.strip() and part.strip() != "```"]


# --- output ----------------------------------------------------------------------------------
class SegmentSlackBot(SlackBot):
    """Rasa's Slack output channel with threads, Block Kit buttons and chart uploads."""

    @classmethod
    def name(cls) -> Text:
        return "slack"

    def __init__(
        self,
        token: Text,
        slack_channel: Optional[Text] = None,
        thread_id: Optional[Text] = None,
        proxy: Optional[Text] = None,
        api_url: Text = DEFAULT_API_URL,
    ) -> None:
        super().__init__(token, slack_channel, thread_id, proxy)
        self.client = web_client(token, api_url, proxy)

    async def _post_message(self, channel: Text, **kwargs: Any) -> None:
        # `as_user` is for classic apps only and `type` is not a chat.postMessage argument.
        kwargs.pop("as_user", None)
        kwargs.pop("type", None)
        if self.thread_id:
            kwargs["thread_ts"] = self.thread_id
        kwargs.setdefault("unfurl_links", False)
        kwargs.setdefault("unfurl_media", False)
        await pacer.wait(channel)
        try:
            await self.client.chat_postMessage(channel=channel, **kwargs)
        except SEND_ERRORS as exc:
            logger.error(
                "Slack did not take a reply in %s (thread %s), after retries: %s",
                channel,
                self.thread_id,
                exc,
            )

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        """Our answers (a structured reply or a chart in `custom`) as one Slack message or
        one upload; anything else as Rasa sends it."""
        custom = message.get("custom") or {}
        recipient = self.slack_channel or recipient_id
        if isinstance(custom, dict) and "reply" in custom and not message.get("buttons"):
            reply = Reply.from_json(custom["reply"])
            text = slack_escape(str(message.get("text") or "").strip())
            blocks = slack_blocks(reply)
            if len(text) > MAX_MESSAGE_CHARS or len(blocks) > 50:
                return await self.send_text_message(recipient, message.get("text") or "")
            return await self._post_message(channel=recipient, text=text, blocks=blocks)
        if isinstance(custom, dict) and "chart" in custom:
            chart = custom["chart"]
            path = saved_chart(str(chart.get("file", "")))
            if path is not None:
                return await self.upload_chart(recipient, path, str(chart.get("title") or "Chart"))
            logger.warning("Not sending chart %r: no such chart file", chart.get("file"))
            return None
        if isinstance(custom, dict) and "export" in custom:
            export = custom["export"]
            path = saved_export(str(export.get("file", "")))
            if path is not None:
                title = str(export.get("title") or "export.csv")
                return await self.upload_file(recipient, path, title, title)
            logger.warning("Not sending export %r: no such file (expired?)", export.get("file"))
            return await self._post_message(
                channel=recipient, text="_(The CSV file has expired; ask for it again.)_"
            )
        message = {key: value for key, value in message.items() if key != "custom"}
        await super().send_response(recipient_id, message)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        """One message per answer (Rasa splits at blank lines, which can cut a table)."""
        recipient = self.slack_channel or recipient_id
        for part in split_message(slack_escape(text.strip())):
            await self._post_message(channel=recipient, text=part)

    async def send_text_with_buttons(
        self,
        recipient_id: Text,
        text: Text,
        buttons: List[Dict[Text, Any]],
        **kwargs: Any,
    ) -> None:
        """The text as a mrkdwn section and one button per choice (its value is the payload)."""
        recipient = self.slack_channel or recipient_id
        usable = [b for b in buttons if len(str(b.get("payload", ""))) <= MAX_BUTTON_VALUE]
        if not usable or len(usable) > MAX_BUTTONS:
            logger.warning("Slack can't show %d buttons; sending the text only", len(buttons))
            return await self.send_text_message(recipient, text)
        escaped = slack_escape(text.strip())
        if len(escaped) > MAX_SECTION_CHARS:
            await self.send_text_message(recipient, text)
            escaped = "Choose one:"
        elements = [
            {
                "type": "button",
                "action_id": f"choice_{index}",
                "text": {
                    "type": "plain_text",
                    "text": str(button["title"])[:MAX_BUTTON_TITLE],
                    "emoji": True,
                },
                "value": str(button["payload"]),
            }
            for index, button in enumerate(usable)
        ]
        blocks = [
            {"type": "section", "text": {"type": "mrkdwn", "text": escaped}},
            {"type": "actions", "block_id": "choices", "elements": elements},
        ]
        await self._post_message(channel=recipient, text=escaped, blocks=blocks)

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        """Images from elsewhere: https URLs become image blocks (our charts are uploads)."""
        if image.startswith(("https://", "http://")):
            await super().send_image_url(self.slack_channel or recipient_id, image, **kwargs)
        else:
            logger.warning("Not sending image %r: not a URL", image)

    async def upload_chart(self, channel: Text, path: Path, title: str) -> None:
        """Upload a chart file into the thread, with the title the action gave it."""
        await self.upload_file(channel, path, path.name, title, alt_txt=f"Chart: {title}")

    async def upload_file(
        self, channel: Text, path: Path, filename: str, title: str, **extra: Any
    ) -> None:
        """Upload a file (a chart, a CSV export) into the thread; say so when Slack refuses."""
        await pacer.wait(channel)
        try:
            await self.client.files_upload_v2(
                channel=channel,
                thread_ts=self.thread_id,
                file=path.read_bytes(),
                filename=filename,
                title=title,
                **extra,
            )
        except SEND_ERRORS as exc:
            logger.error("Uploading %s to Slack failed: %s", filename, exc)
            await self._post_message(
                channel=channel, text=f"_(The file could not be uploaded: {filename}.)_"
            )
