"""Unit tests for the channel configuration and the helpers of the Slack and web chat channels
(the end-to-end behaviour is in test_slack.py, test_slack_socket.py and test_webchat.py)."""

from __future__ import annotations

import os

import pytest
import yaml

from bot.channels import (
    REST_CHANNEL,
    SLACK_CHANNEL,
    SLACK_SOCKET_CHANNEL,
    WEBCHAT_CHANNEL,
    channel_settings,
    slack_banner,
    write_credentials,
)
from bot.slack import SegmentSlackInput
from bot.slack_handler import SeenCache, SlackHandler, conversation_id
from bot.slack_output import slack_escape, split_message
from bot.slack_socket import SlackSocketModeInput
from bot.webchat import run_summary
from segmentation.charts import saved_chart
from segmentation.errors import DatabaseUnavailable, NoDataError

SLACK_ENV = {"SLACK_BOT_TOKEN": "xoxb-unit-test", "SLACK_SIGNING_SECRET": "unit-test-secret"}
SOCKET_ENV = {"SLACK_BOT_TOKEN": "xoxb-unit-test", "SLACK_APP_TOKEN": "xapp-1-unit-test"}


def test_rest_and_webchat_always_slack_only_with_token_and_secret():
    assert channel_settings({}) == {REST_CHANNEL: None, WEBCHAT_CHANNEL: None}
    assert SLACK_CHANNEL not in channel_settings({"SLACK_BOT_TOKEN": "xoxb-1"})
    assert SLACK_CHANNEL not in channel_settings({"SLACK_SIGNING_SECRET": "s"})
    assert SLACK_CHANNEL not in channel_settings({**SLACK_ENV, "SLACK_BOT_TOKEN": " "})
    slack = channel_settings(
        {
            **SLACK_ENV,
            "SLACK_API_URL": "http://127.0.0.1:9/api",
            "SLACK_ALLOWED_CHANNELS": "C1, C2,,",
            "SLACK_ALLOWED_TEAMS": "T1",
        }
    )[SLACK_CHANNEL]
    assert slack == {
        "use_threads": True,
        "conversation_granularity": "thread",
        "api_url": "http://127.0.0.1:9/api/",
        "allowed_channels": ["C1", "C2"],
        "allowed_teams": ["T1"],
    }
    assert channel_settings(SLACK_ENV)[SLACK_CHANNEL]["api_url"] == "https://slack.com/api/"


def test_credentials_file_has_no_secrets_and_rasa_builds_the_channels(tmp_path, monkeypatch):
    from rasa.core.run import create_http_input_channels

    from bot.webchat import WebChatInput

    env = {**SLACK_ENV, **SOCKET_ENV, "SLACK_ALLOWED_CHANNELS": "C9"}
    path = write_credentials(tmp_path, env=env)
    text = path.read_text()
    assert "xoxb" not in text and "unit-test-secret" not in text and "xapp" not in text
    assert list(yaml.safe_load(text)) == [
        REST_CHANNEL,
        WEBCHAT_CHANNEL,
        SLACK_CHANNEL,
        SLACK_SOCKET_CHANNEL,
    ]

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    channels = {type(c).__name__: c for c in create_http_input_channels(None, str(path))}
    assert set(channels) == {
        "RestChannel",
        "WebChatInput",
        "SegmentSlackInput",
        "SlackSocketModeInput",
    }
    socket = channels["SlackSocketModeInput"]
    assert socket.app_token == "xapp-1-unit-test" and socket.handler.token == "xoxb-unit-test"
    assert socket.handler.allowed_channels == {"C9"} and socket.handler.use_threads is True
    assert socket.name() == "slack_socket"
    slack = channels["SegmentSlackInput"]
    assert slack.slack_token == "xoxb-unit-test"
    assert slack.slack_signing_secret == "unit-test-secret"
    assert slack.use_threads is True and slack.conversation_granularity == "thread"
    assert slack.handler.allowed_channels == {"C9"} and slack.handler.allowed_teams == set()
    assert isinstance(channels["WebChatInput"], WebChatInput)
    assert channels["WebChatInput"].name() == "webchat" and slack.name() == "slack"


def test_slack_channel_refuses_to_start_without_its_secrets(monkeypatch):
    from rasa.shared.exceptions import InvalidConfigException

    for name in SLACK_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InvalidConfigException, match="SLACK_SIGNING_SECRET"):
        SegmentSlackInput.from_credentials({"use_threads": True})
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    with pytest.raises(InvalidConfigException, match="conversation_granularity"):
        SegmentSlackInput.from_credentials({"conversation_granularity": "galaxy"})


def test_socket_mode_needs_both_tokens_and_an_app_level_token(monkeypatch):
    from rasa.shared.exceptions import InvalidConfigException

    assert SLACK_SOCKET_CHANNEL in channel_settings(SOCKET_ENV)
    assert SLACK_CHANNEL not in channel_settings(SOCKET_ENV)  # no signing secret: no webhook
    assert SLACK_SOCKET_CHANNEL not in channel_settings({"SLACK_APP_TOKEN": "xapp-1"})
    assert SLACK_SOCKET_CHANNEL not in channel_settings(SLACK_ENV)
    for name in SOCKET_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InvalidConfigException, match="SLACK_APP_TOKEN"):
        SlackSocketModeInput.from_credentials({})
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xoxb-1")  # the bot token pasted by mistake
    with pytest.raises(InvalidConfigException, match="app-level token"):
        SlackSocketModeInput.from_credentials({})
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    with pytest.raises(InvalidConfigException, match="conversation_granularity"):
        SlackSocketModeInput.from_credentials({"conversation_granularity": "galaxy"})


def test_serve_banner_says_how_slack_is_connected():
    url = "http://127.0.0.1:5005"
    (off,) = slack_banner({}, url)
    assert off.startswith("Slack:         off") and "SLACK_APP_TOKEN" in off
    (socket,) = slack_banner(SOCKET_ENV, url)
    assert "Socket Mode" in socket and f"{url}/webhooks/slack_socket/" in socket
    (webhook,) = slack_banner(SLACK_ENV, url)
    assert f"{url}/webhooks/slack/webhook" in webhook
    assert len(slack_banner({**SLACK_ENV, **SOCKET_ENV}, url)) == 2


def test_handler_reads_mentions_dms_and_clicks_into_conversations():
    handler = SlackHandler("xoxb-1", granularity="thread")
    handler.bot_user_id = "UBOT"
    mention = {
        "type": "event_callback",
        "event": {"type": "app_mention", "user": "U1", "text": "<@UBOT> hi", "channel": "C1"},
    }
    mention["event"]["ts"] = "1.5"
    assert handler.message(mention) == (
        "hi",
        "U1_C1_1.5",
        {"out_channel": "C1", "thread_id": "1.5", "users": ["UBOT"]},
    )
    reply = dict(mention, event={**mention["event"], "type": "message", "thread_ts": "1.0"})
    assert handler.message(reply) is None  # a channel message that doesn't mention the bot
    reply["event"]["channel_type"] = "im"
    assert handler.message(reply)[1] == "U1_C1_1.0"  # a DM thread reply: the same thread
    click = {
        "type": "block_actions",
        "user": {"id": "U2"},
        "container": {"channel_id": "D2"},
        "message": {"ts": "2.0", "thread_ts": "1.0"},
        "actions": [{"type": "button", "value": "/ask{}"}],
    }
    assert handler.message(click)[:2] == ("/ask{}", "U2_D2_1.0")
    link = dict(click, actions=[{"type": "button", "url": "https://x"}])
    assert handler.message(link) is None
    assert conversation_id("sender", "U1", "C1", "1.0") == "U1"
    assert conversation_id("channel", "U1", "C1", "1.0") == "U1_C1"


def test_split_message_keeps_code_blocks_balanced():
    rows = "\n".join(f"row {i:03d} {'.' * 40}" for i in range(200))
    text = f"*Intro*\n```\n{rows}\n```\n_From run #1._"
    parts = split_message(text, limit=1000)
    assert len(parts) > 5
    assert all(len(part) <= 1000 for part in parts)
    assert all(part.count("```") % 2 == 0 for part in parts)
    joined = "\n".join(parts).replace("```\n```\n", "")
    assert [line for line in joined.splitlines() if line != "```"] == [
        line for line in text.splitlines() if line != "```"
    ]
    assert split_message("short") == ["short"]


def test_slack_escape():
    assert slack_escape("a < b & c > d") == "a &lt; b &amp; c &gt; d"


def test_seen_cache_detects_replays_and_forgets_old_keys():
    cache = SeenCache(ttl=300, max_items=3)
    assert cache.seen_before("a", now=0) is False
    assert cache.seen_before("a", now=10) is True
    assert cache.seen_before("a", now=400) is False  # expired, seen afresh
    for key in "bcd":
        cache.seen_before(key, now=401)
    assert len(cache._items) <= 3


def test_chart_files_never_come_from_outside_the_charts_folder(tmp_path):
    lookup = saved_chart
    charts = tmp_path / "charts"
    charts.mkdir()
    (charts / "run1-sizes.png").write_bytes(b"\x89PNG")
    (tmp_path / "secret.png").write_bytes(b"\x89PNG")
    os.symlink(tmp_path / "secret.png", charts / "link.png")
    (charts / "notes.txt").write_text("x")

    assert lookup("run1-sizes.png", charts) == (charts / "run1-sizes.png").resolve()
    for name in ("../secret.png", "link.png", "notes.txt", ".hidden.png", "missing.png", ""):
        assert lookup(name, charts) is None, name


class _Failing:
    def __init__(self, error):
        self.error = error

    def overview(self):
        raise self.error


def test_summary_explains_missing_runs_and_database_outages():
    status, body = run_summary(_Failing(NoDataError("There is no segmentation run yet.")))
    assert status == 200
    assert body == {
        "ok": False,
        "error": "no_run",
        "message": "There is no segmentation run yet.",
    }
    status, body = run_summary(_Failing(DatabaseUnavailable("db down")))
    assert status == 503 and body["ok"] is False and body["error"] == "database_unavailable"
    assert "can't be reached" in body["message"]


def test_summary_reports_the_current_run(seeded, db_url):
    from segmentation.queries import SegmentQueries

    status, body = run_summary(SegmentQueries(db_url))
    assert status == 200 and body["ok"] is True
    assert body["run"]["id"] == seeded.run_id
    assert {s["name"]: s["size"] for s in body["segments"]} == seeded.sizes
    assert [s["name"] for s in body["segments"]] == [
        "Low Engagement",
        "Moderate Engagement",
        "Highly Engaged",
    ]
    assert sum(s["size"] for s in body["segments"]) == body["total_users"] == 90
    assert body["run"]["date"] in body["run"]["label"]


def test_posts_into_one_channel_are_paced_to_one_per_second_after_a_burst():
    """ChannelPacer on a fake clock: 3 posts at once, then one per second; channels apart."""
    import asyncio

    from bot.slack_output import ChannelPacer

    now = [0.0]
    slept = []

    async def fake_sleep(seconds):
        slept.append(round(seconds, 6))
        now[0] += seconds

    pacer = ChannelPacer(rate=1.0, burst=3, clock=lambda: now[0], sleep=fake_sleep)

    async def posts():
        for _ in range(5):
            await pacer.wait("C1")
        await pacer.wait("C2")  # another channel has its own burst
        now[0] += 10.0  # a quiet while refills the bucket, up to the burst
        for _ in range(4):
            await pacer.wait("C1")

    asyncio.run(posts())
    assert slept == [1.0, 1.0, 1.0]
