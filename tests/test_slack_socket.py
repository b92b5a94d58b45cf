"""Slack over Socket Mode, end to end: envelopes from the local Slack's WebSocket endpoint
(tests/fake_socket_mode.py) -> a Rasa server whose only Slack channel is Socket Mode (on the
`assistant`'s action server and database) -> Web API calls recorded by the fake Slack.

Expected answers are the same server's REST answers to the same question, and the numbers
come from SQL, so these tests hold whatever the wording. The server serves a fixed list of
channels (SLACK_ALLOWED_CHANNELS) and the test team; tests take their channels from it.
Negative cases wait for a later, valid message to be answered and a few seconds more before
asserting that nothing else was answered.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from typing import Any, Dict, List

import pytest
import requests

from bot.processes import Servers
from bot.slack_output import slack_escape
from tests.fake_socket_mode import ACK_TIMEOUT, FakeSocketMode
from tests.servers import (
    ARTIFACTS,
    SEGMENTS,
    TEST_APP_TOKEN,
    current_sizes,
    reached_assistant,
    start_rasa,
    wait_posts,
)
from tests.slack_payloads import (
    BOT_ID,
    BOT_USER_ID,
    block_actions,
    buttons_message,
    direct_event,
    event_callback,
    mention_event,
    new_ts,
    unique,
)

GRACE_SECONDS = 4.0
QUESTION = "how many users are highly engaged?"


@dataclass
class SocketBot:
    """The Socket Mode Rasa server, the fake endpoint it is connected to, and the channels it
    serves (taken one by one by the tests)."""

    servers: Servers
    fake: FakeSocketMode
    free_channels: List[str]

    def channel(self, kind: str) -> str:
        """An allowed channel id never used before: kind "C" (channel) or "D" (DM)."""
        found = next(c for c in self.free_channels if c.startswith(kind))
        self.free_channels.remove(found)
        return found

    def rest_text(self, message: str) -> str:
        """This server's REST answer to `message` (a fresh conversation), as Slack shows it."""
        response = requests.post(
            f"{self.servers.rasa_url}/webhooks/rest/webhook",
            json={"sender": unique("rest"), "message": message},
            timeout=120,
        )
        response.raise_for_status()
        return slack_escape(response.json()[0]["text"].strip())

    def event(self, event: Dict[str, Any], **envelope: Any) -> str:
        """Deliver an event (an events_api envelope); returns the envelope id."""
        return self.fake.send_event(event_callback(event), **envelope)

    def acked_in_time(self, *envelope_ids: str) -> None:
        """Each envelope acknowledged within Slack's 3 seconds (and only acks we expect)."""
        for envelope_id in envelope_ids:
            envelope = self.fake.wait_acked(envelope_id)
            assert envelope.ack_delay <= ACK_TIMEOUT, (envelope_id, envelope.ack_delay)
        assert self.fake.stray_acks == []


@pytest.fixture(scope="module")
def socket_bot(assistant, tmp_path_factory):
    """A Rasa server with Socket Mode on (no Events API), connected to the fake Slack."""
    fake = assistant.slack.enable_socket_mode(TEST_APP_TOKEN)
    allowed = [unique("C") for _ in range(20)] + [unique("D") for _ in range(20)]
    with start_rasa(
        assistant,
        tmp_path_factory.mktemp("socket-mode"),
        "socket-mode",
        SLACK_APP_TOKEN=TEST_APP_TOKEN,
        SLACK_SIGNING_SECRET="",
        SLACK_ALLOWED_CHANNELS=",".join(allowed),
        SLACK_ALLOWED_TEAMS=assistant.team_id,
    ) as servers:
        fake.wait_connection()
        yield SocketBot(servers, fake, allowed)
    delays = [e.ack_delay for e in fake.envelopes.values() if e.ack_delay is not None]
    if delays:
        (ARTIFACTS / "slack").mkdir(parents=True, exist_ok=True)
        summary = {
            "envelopes": len(fake.envelopes),
            "acked": len(delays),
            "ack_ms_median": round(statistics.median(delays) * 1000, 1),
            "ack_ms_max": round(max(delays) * 1000, 1),
            "connections": len(fake.connections),
        }
        (ARTIFACTS / "slack" / "socket-mode-acks.json").write_text(json.dumps(summary))


def settle(assistant, bot: SocketBot) -> None:
    """A valid DM through the same connection, answered; then a little longer."""
    dm = bot.channel("D")
    bot.event(direct_event("hello", dm, unique("U")))
    wait_posts(assistant, dm)
    time.sleep(GRACE_SECONDS)


def test_mention_and_direct_message_are_answered_once_in_their_threads(assistant, socket_bot):
    bot = socket_bot
    size, share = current_sizes(assistant)["segments"]["Highly Engaged"]
    expected = bot.rest_text(QUESTION)
    assert f"{size:,} users" in expected and f"{share * 100:.1f}%" in expected

    channel, dm, mention_ts, dm_ts = bot.channel("C"), bot.channel("D"), new_ts(), new_ts()
    sent = [
        bot.event(mention_event(QUESTION, channel, "U0PM1", mention_ts)),
        bot.event(direct_event(QUESTION, dm, "U0PM2", dm_ts)),
    ]
    (in_channel,) = wait_posts(assistant, channel)
    (in_dm,) = wait_posts(assistant, dm)
    assert in_channel["text"] == expected and in_channel["thread_ts"] == mention_ts
    assert in_dm["text"] == expected and in_dm["thread_ts"] == dm_ts
    call = assistant.slack.calls_to("chat.postMessage", channel=channel)[0]
    assert call.token == assistant.token  # answers go out with the bot token
    bot.acked_in_time(*sent)
    health = requests.get(f"{bot.servers.rasa_url}/webhooks/slack_socket/", timeout=10).json()
    assert health["connected"] is True and health["connections"] >= 1

    settle(assistant, bot)
    assert len(assistant.slack.posted(channel)) == 1
    assert len(assistant.slack.posted(dm)) == 1


def test_charts_are_uploaded_into_the_thread(assistant, socket_bot):
    bot = socket_bot
    db = current_sizes(assistant)
    question = "give me an overview of the segments"
    channel, ts = bot.channel("C"), new_ts()
    bot.event(mention_event(question, channel, unique("U"), ts))

    (text,) = wait_posts(assistant, channel)
    assert text["text"] == bot.rest_text(question) and text["thread_ts"] == ts
    for segment in SEGMENTS:
        assert f"{db['segments'][segment][0]:,} users" in text["text"]
    (upload,) = assistant.slack.wait_for(lambda: assistant.slack.files(channel, ts))
    assert upload.filename.startswith(f"run{db['run_id']}-sizes")
    assert upload.data[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_csv_export_is_uploaded_into_the_thread(assistant, socket_bot):
    bot = socket_bot
    db = current_sizes(assistant)
    channel, ts = bot.channel("C"), new_ts()
    bot.event(mention_event("export the low engagement users as csv", channel, unique("U"), ts))

    (text,) = wait_posts(assistant, channel)
    assert text["thread_ts"] == ts
    expected = {
        row[0]
        for row in assistant.sql(
            "SELECT user_id FROM user_segments WHERE run_id = :run AND segment = 'Low Engagement'",
            run=db["run_id"],
        )
    }
    assert text["text"].startswith(f"Exported all {len(expected):,} *Low Engagement* users")
    (upload,) = assistant.slack.wait_for(lambda: assistant.slack.files(channel, ts))
    assert upload.filename == f"low-engagement-users-run-{db['run_id']}.csv"
    lines = upload.data.decode().splitlines()
    assert lines[0].startswith("user_id,segment,score")
    ids = [line.split(",")[0] for line in lines[1:]]
    assert set(ids) == expected and len(ids) == len(expected)


def test_button_click_is_answered_in_the_thread(assistant, socket_bot):
    bot = socket_bot
    dm, user, ts = bot.channel("D"), unique("U"), new_ts()
    asked = bot.event(direct_event("describe the segment", dm, user, ts))

    (question,) = wait_posts(assistant, dm)
    assert question["thread_ts"] == ts
    _, actions = question["blocks"]
    assert [b["text"]["text"] for b in actions["elements"]] == list(SEGMENTS)
    posted = assistant.slack.calls_to("chat.postMessage", channel=dm)[0].response["message"]
    value = next(b["value"] for b in actions["elements"] if b["text"]["text"] == "Highly Engaged")

    clicked = bot.fake.send_interactive(block_actions(posted, dm, user, value))
    answer = wait_posts(assistant, dm, 2)[1]
    assert answer["text"] == bot.rest_text(value)
    assert answer["thread_ts"] == ts
    (update,) = assistant.slack.wait_for(
        lambda: assistant.slack.calls_to("chat.update", channel=dm)
    )
    assert update.args["ts"] == posted["ts"]
    assert all(b["type"] != "actions" for b in update.args["blocks"])
    assert update.args["blocks"][-1]["elements"][0]["text"] == f"<@{user}> chose *Highly Engaged*"
    bot.acked_in_time(asked, clicked)


def test_redelivered_envelopes_are_acknowledged_and_not_answered_twice(assistant, socket_bot):
    bot = socket_bot
    channel = bot.channel("C")
    first = bot.event(mention_event(QUESTION, channel, "U0R"))
    wait_posts(assistant, channel)
    same_envelope = bot.fake.redeliver(first, same_id=True)
    same_event = bot.fake.redeliver(first)
    # An event whose first delivery never arrived: its redelivery is answered, once.
    lost_channel = bot.channel("C")
    lost = bot.event(
        mention_event(QUESTION, lost_channel, "U0R"), retry_attempt=1, retry_reason="timeout"
    )
    lost_again = bot.fake.redeliver(lost)
    wait_posts(assistant, lost_channel)

    settle(assistant, bot)
    assert same_envelope == first and same_event != first
    assert len(assistant.slack.posted(channel)) == 1
    assert len(assistant.slack.posted(lost_channel)) == 1
    bot.acked_in_time(first, same_event, lost, lost_again)
    assert bot.fake.envelopes[first].acks == 2  # the repeated envelope was acknowledged too


def test_reconnects_after_the_socket_closes_and_after_a_disconnect_envelope(assistant, socket_bot):
    bot = socket_bot
    fake = bot.fake

    def answered_once() -> None:
        channel = bot.channel("C")
        envelope = bot.event(mention_event(QUESTION, channel, unique("U")))
        (message,) = wait_posts(assistant, channel)
        assert message["text"] == bot.rest_text(QUESTION)
        bot.acked_in_time(envelope)

    closed = fake.close_current()
    reopened = fake.wait_connection(after=closed.number)
    answered_once()

    fake.send_disconnect("refresh_requested")
    refreshed = fake.wait_connection(after=reopened.number)
    fake.wait_for(lambda: reopened.closed_at is not None)
    assert reopened.closed_by == "client"  # the client left the old socket by itself
    answered_once()
    assert fake.current() is refreshed
    assert "expired ticket" not in fake.refused and "unknown or used ticket" not in fake.refused


def test_unlisted_channels_other_teams_and_the_bots_own_messages_are_ignored(assistant, socket_bot):
    bot = socket_bot
    ignored: Dict[str, str] = {}
    sent = []

    def deliver(name: str, event: Dict[str, Any], channel: str, **payload: Any) -> None:
        ignored[name] = channel
        sent.append(bot.fake.send_event(event_callback(event, **payload)))

    channel = unique("C")
    deliver("unlisted channel", mention_event(QUESTION, channel, "U0A"), channel)
    dm = unique("D")
    deliver("unlisted DM", direct_event(QUESTION, dm, "U0A"), dm)
    allowed = bot.channel("C")
    deliver("other team", mention_event(QUESTION, allowed, "U0A"), allowed, team_id="T0OTHERTEAM")
    for name, fields in {
        "bot_id": {"bot_id": BOT_ID},
        "bot_message": {"subtype": "bot_message", "bot_id": BOT_ID},
        "edit": {"subtype": "message_changed"},
    }.items():
        dm = bot.channel("D")
        deliver(name, direct_event(QUESTION, dm, "U0H", **fields), dm)
    dm = bot.channel("D")
    deliver("own user id", direct_event(QUESTION, dm, BOT_USER_ID), dm)
    unlisted = unique("C")
    value = '/ask_segment_size{"segment": "Highly Engaged"}'
    posted = buttons_message({"Highly Engaged": value})
    sent.append(bot.fake.send_interactive(block_actions(posted, unlisted, "U0A", value)))
    ignored["click in an unlisted channel"] = unlisted

    settle(assistant, bot)
    bot.acked_in_time(*sent)
    for name, channel in ignored.items():
        assert assistant.slack.posted(channel) == [], name
        assert reached_assistant(assistant, channel) == 0, name
    assert assistant.slack.calls_to("chat.update", channel=unlisted) == []
