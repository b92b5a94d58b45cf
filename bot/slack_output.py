"""Slack output: Rasa's SlackBot answering in threads, with Block Kit buttons and chart uploads.

One message per answer (mrkdwn, ``` tables intact), buttons as Block Kit with a mrkdwn
section, and our chart images uploaded as files into the same thread
(files.getUploadURLExternal -> upload -> completeUploadExternal, via slack_sdk's
files_upload_v2), because Slack cannot fetch a loopback URL.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Text
from urllib.parse import urlparse

from rasa.core.channels.slack import SlackBot
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from segmentation.charts import saved_chart, slug
from segmentation.clustering import STANDARD_NAMES

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"
# Slack recommends messages under 4,000 characters; a section block takes at most 3,000.
MAX_MESSAGE_CHARS = 3500
MAX_SECTION_CHARS = 3000
MAX_BUTTONS = 25
MAX_BUTTON_TITLE = 75
MAX_BUTTON_VALUE = 2000


def api_base_url(value: Optional[str]) -> str:
    """The Web API base URL, ending in a slash as slack_sdk expects."""
    url = (value or "").strip() or DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


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


def chart_file(image: str, folder: Optional[Path] = None) -> Optional[Path]:
    """The chart PNG behind one of our image URLs (or plain paths), if it exists."""
    path = urlparse(image).path if "://" in image else image
    return saved_chart(path.replace("\\", "/").rsplit("/", 1)[-1], folder)


def chart_title(path: Path) -> str:
    """A readable title from the chart's file name (run3-compare-low-engagement-highly-engaged
    -> "Low Engagement vs Highly Engaged")."""
    by_slug = {slug(n): n for n in STANDARD_NAMES[3]}
    stem = re.sub(r"^run\d+-", "", path.stem)

    def name(part: str) -> str:
        return by_slug.get(part) or part.replace("-", " ").capitalize()

    if stem == "sizes":
        return "Segment sizes"
    if stem.startswith("profile-"):
        return f"{name(stem[len('profile-'):])} against the average user"
    if stem.startswith("compare-"):
        rest = stem[len("compare-") :]
        for known in by_slug:
            if rest.startswith(known + "-"):
                return f"{name(known)} vs {name(rest[len(known) + 1:])}"
        return f"Comparison: {rest.replace('-', ' ')}"
    return stem.replace("-", " ").capitalize() or "Chart"


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
        self.client = AsyncWebClient(token=token, base_url=api_base_url(api_url), proxy=proxy)

    async def _post_message(self, channel: Text, **kwargs: Any) -> None:
        # `as_user` is for classic apps only and `type` is not a chat.postMessage argument.
        kwargs.pop("as_user", None)
        kwargs.pop("type", None)
        if self.thread_id:
            kwargs["thread_ts"] = self.thread_id
        kwargs.setdefault("unfurl_links", False)
        kwargs.setdefault("unfurl_media", False)
        await self.client.chat_postMessage(channel=channel, **kwargs)

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
        """Our charts are uploaded into the thread; other https images become image blocks."""
        recipient = self.slack_channel or recipient_id
        path = chart_file(image)
        if path is not None:
            await self.upload_chart(recipient, path)
        elif image.startswith(("https://", "http://")):
            await super().send_image_url(recipient, image, **kwargs)
        else:
            logger.warning("Not sending image %r: not a chart file and not a URL", image)

    async def upload_chart(self, channel: Text, path: Path) -> None:
        title = chart_title(path)
        try:
            await self.client.files_upload_v2(
                channel=channel,
                thread_ts=self.thread_id,
                file=path.read_bytes(),
                filename=path.name,
                title=title,
                alt_txt=f"Chart: {title}",
            )
        except (SlackApiError, SlackClientError) as exc:
            logger.error("Uploading chart %s to Slack failed: %s", path.name, exc)
            await self._post_message(
                channel=channel, text=f"_(The chart could not be uploaded: {path.name}.)_"
            )
