"""Posting a Reply to a Slack channel from the command line (alerts, digests).

Uses the bot's own Slack plumbing (bot.slack_output): the Web API client with its 429
Retry-After handling, the per-channel pacing, the Block Kit rendering of a Reply, and the
chart upload (files_upload_v2). Unlike a chat answer, a failed post raises `SlackPostError`,
so the caller can record it and try again later.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from segmentation.errors import SegmentationError
from segmentation.render.document import Chart, Reply
from segmentation.render.markup import mrkdwn, slack_blocks


class SlackPostError(SegmentationError):
    """Slack did not take the message (after its retries)."""


@dataclass(frozen=True)
class SlackTarget:
    """Where to post: a bot token, a channel and the Web API base URL."""

    token: str
    channel: str
    api_url: Optional[str] = None

    @classmethod
    def from_env(cls, channel: Optional[str]) -> Optional["SlackTarget"]:
        """SLACK_BOT_TOKEN and SLACK_API_URL with `channel`; None when either is missing."""
        token = os.environ.get("SLACK_BOT_TOKEN", "").strip()
        if not token or not channel:
            return None
        return cls(token, channel, os.environ.get("SLACK_API_URL") or None)


async def _post(target: SlackTarget, reply: Reply, chart: Optional[Chart]) -> str:
    from bot.slack_output import (
        MAX_MESSAGE_CHARS,
        SEND_ERRORS,
        SegmentSlackBot,
        pacer,
        slack_escape,
        web_client,
    )

    client = web_client(target.token, target.api_url)
    text = slack_escape(mrkdwn(reply))[:MAX_MESSAGE_CHARS]
    await pacer.wait(target.channel)
    try:
        response = await client.chat_postMessage(
            channel=target.channel,
            text=text,
            blocks=slack_blocks(reply)[:50],
            unfurl_links=False,
            unfurl_media=False,
        )
    except SEND_ERRORS as exc:
        raise SlackPostError(f"Slack did not take the message in {target.channel}: {exc}") from exc
    if chart is not None and Path(chart.path).is_file():
        bot = SegmentSlackBot(target.token, target.channel, api_url=target.api_url or None)
        await bot.upload_chart(target.channel, Path(chart.path), chart.title)
    return str(response.get("ts") or "")


def post_reply(target: SlackTarget, reply: Reply, chart: Optional[Chart] = None) -> str:
    """Post `reply` (Block Kit, with its mrkdwn as the fallback text) to the channel, then
    upload `chart` there; returns the message's ts. Raises SlackPostError."""
    return asyncio.run(_post(target, reply, chart))
