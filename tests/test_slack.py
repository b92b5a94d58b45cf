"""Slack end to end: signed Slack requests -> the real Rasa + action servers + MariaDB ->
Web API calls recorded by the local fake Slack (tests/fake_slack.py).

Negative cases wait for a later, valid request to be answered and then a few seconds more, so
an answer that should not exist has every chance to show up before we assert it did not.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Optional

import pytest

from tests.fake_slack import BOT_ID, BOT_USER_ID, new_ts, unique
from tests.servers import (
    ARTIFACTS,
    SEGMENTS,
    TEST_TOKEN,
    current_sizes,
    reached_assistant,
    size_text,
    start_rasa,
    wait_posts,
)
from tests.slack_payloads import buttons_message

GRACE_SECONDS = 4.0


def settle(assistant, signer=None, channel: Optional[str] = None) -> None:
    """Send a valid message (a DM, or a mention in `channel`) to the same server and wait for
    its answer, then a little longer: whatever the requests before it were going to cause has
    happened by then."""
    signer = signer or assistant.signer()
    if channel:
        before = len(assistant.slack.posted(channel))
        request = signer.mention("hello", channel, unique("U"))
    else:
        before, channel = 0, unique("D")
        request = signer.direct("hello", channel, unique("U"))
    assert signer.post(request).status_code == 200
    wait_posts(assistant, channel, before + 1)
    time.sleep(GRACE_SECONDS)


def test_app_mention_is_answered_in_its_thread_with_the_exact_numbers(assistant):
    db = current_sizes(assistant)
    signer = assistant.signer()
    channel, ts = unique("C"), new_ts()
    response = signer.post(
        signer.mention("how many users are highly engaged?", channel, "U0PM1", ts)
    )
    assert response.status_code == 200

    (message,) = wait_posts(assistant, channel)
    assert message["text"] == size_text(db, "Highly Engaged")
    assert message["thread_ts"] == ts
    first, context = message["blocks"]  # the structured reply: a section and the run line
    assert first["text"]["text"] == size_text(db, "Highly Engaged").splitlines()[0]
    assert context["elements"][0]["text"] == size_text(db, "Highly Engaged").splitlines()[1][1:-1]
    assert "as_user" not in message
    call = assistant.slack.calls_to("chat.postMessage", channel=channel)[0]
    assert call.token == TEST_TOKEN and call.content_type == "application/json"
    settle(assistant)
    assert len(assistant.slack.posted(channel)) == 1


def test_direct_message_buttons_and_click(assistant):
    db = current_sizes(assistant)
    signer = assistant.signer()
    channel, user, ts = unique("D"), unique("U"), new_ts()
    signer.post(signer.direct("describe the segment", channel, user, ts))

    (question,) = wait_posts(assistant, channel)
    assert question["thread_ts"] == ts
    assert question["text"] == "Which segment?"
    section, actions = question["blocks"]
    assert section["text"] == {"type": "mrkdwn", "text": question["text"]}
    assert [b["text"]["text"] for b in actions["elements"]] == list(SEGMENTS)
    posted = assistant.slack.calls_to("chat.postMessage", channel=channel)[0].response["message"]
    value = next(b["value"] for b in actions["elements"] if b["text"]["text"] == "Highly Engaged")
    assert value.startswith('/inform{"query": ')

    click = signer.click(posted, channel, user, value)
    assert signer.post(click).status_code == 200
    answer = wait_posts(assistant, channel, 2)[1]
    size, share = db["segments"]["Highly Engaged"]
    assert answer["text"].startswith(f"*Highly Engaged*: {size:,} users ({share * 100:.1f}%).")
    assert answer["thread_ts"] == ts

    (update,) = assistant.slack.wait_for(lambda: assistant.slack.calls_to("chat.update"))
    assert update.args["channel"] == channel and update.args["ts"] == posted["ts"]
    blocks = update.args["blocks"]
    assert all(b["type"] != "actions" for b in blocks)
    assert blocks[-1]["elements"][0]["text"] == f"<@{user}> chose *Highly Engaged*"


@pytest.mark.parametrize(
    "question, chart, title",
    [
        ("give me an overview of the segments", "sizes", "Segment sizes"),
        (
            "describe the highly engaged segment",
            "profile-highly-engaged",
            "Highly Engaged against the average user",
        ),
        (
            "compare low engagement with highly engaged",
            "compare-",
            "Low Engagement vs Highly Engaged",
        ),
    ],
)
def test_charts_are_uploaded_into_the_thread(assistant, question, chart, title):
    table = chart != "sizes"
    db = current_sizes(assistant)
    signer = assistant.signer()
    channel, ts = unique("C"), new_ts()
    signer.post(signer.mention(question, channel, unique("U"), ts))

    (text,) = wait_posts(assistant, channel)
    assert text["thread_ts"] == ts
    files = assistant.slack.wait_for(lambda: assistant.slack.files(channel, ts))
    assert len(files) == 1
    upload = files[0]
    assert upload.filename.startswith(f"run{db['run_id']}-{chart}")
    assert upload.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert upload.data == (assistant.charts_dir / upload.filename).read_bytes()
    assert upload.title == title and upload.alt_txt == f"Chart: {title}"

    body = text["text"]
    assert body.endswith(f"_From run #{db['run_id']} of {db['created_at']:%d %b %Y %H:%M} UTC._")
    if table:  # one message, the table intact inside one ``` block
        assert body.count("```") == 2
        block = body.split("```")[1].strip("\n").splitlines()
        assert block[0].startswith("feature") and set(block[1]) <= {"-", " "}
    else:
        lines = body.splitlines()
        assert lines[0] == f"*{db['total']:,} users in 3 segments:*"
        for segment in SEGMENTS:
            size, share = db["segments"][segment]
            assert any(
                line.startswith(f"• *{segment}*: {size:,} users ({share * 100:.1f}%) — ")
                for line in lines
            )
    (ARTIFACTS / "slack").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "slack" / Path(upload.filename).name).write_bytes(upload.data)


def test_url_verification_challenge(assistant):
    signer = assistant.signer()
    body = b'{"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}'
    response = signer.post(signer.sign(body, "application/json"))
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    unsigned = signer.sign(body, "application/json", secret="not-the-secret")
    assert signer.post(unsigned).status_code == 401


def test_forged_stale_and_replayed_requests_are_refused(assistant):
    signer = assistant.signer()
    question = "how many users are highly engaged?"
    refused = {}

    channel = unique("C")
    body = signer.mention(question, channel, "U0X").body
    forged = signer.sign(body, "application/json", secret="not-the-signing-secret")
    refused["wrong secret"] = (signer.post(forged), channel)
    channel = unique("C")
    good = signer.mention(question, channel, "U0X")
    good.headers["X-Slack-Signature"] = "v0=" + "0" * 64
    refused["bad signature"] = (signer.post(good), channel)
    channel = unique("C")
    missing = signer.mention(question, channel, "U0X")
    del missing.headers["X-Slack-Signature"], missing.headers["X-Slack-Request-Timestamp"]
    refused["missing signature"] = (signer.post(missing), channel)
    channel = unique("C")
    tampered = signer.mention(question, channel, "U0X")
    tampered.body = tampered.body.replace(b"highly", b"lowly")
    refused["tampered body"] = (signer.post(tampered), channel)
    channel = unique("C")
    stale = signer.mention(question, channel, "U0X")
    stale = signer.sign(stale.body, "application/json", timestamp=int(time.time()) - 6 * 60)
    refused["stale"] = (signer.post(stale), channel)
    channel = unique("C")
    future = signer.mention(question, channel, "U0X")
    future = signer.sign(future.body, "application/json", timestamp=int(time.time()) + 6 * 60)
    refused["from the future"] = (signer.post(future), channel)

    # A genuine request, then the very same request again, then its event id re-signed.
    replay_channel, event_id = unique("C"), unique("Ev")
    original = signer.mention(question, replay_channel, "U0X", event_id=event_id)
    assert signer.post(original).status_code == 200
    wait_posts(assistant, replay_channel)
    replayed = signer.post(original)
    same_event = signer.post(signer.sign(original.body, "application/json"))
    replay_as_retry = signer.post(original, **{"X-Slack-Retry-Num": "1"})

    for reason, (response, _) in refused.items():
        assert response.status_code == 401, reason
    assert replayed.status_code == 409
    assert same_event.status_code == 409
    assert replay_as_retry.status_code == 409

    settle(assistant)
    for reason, (_, channel) in refused.items():
        assert assistant.slack.posted(channel) == [], reason
        assert reached_assistant(assistant, channel) == 0, reason
    assert reached_assistant(assistant, replay_channel) > 0
    assert len(assistant.slack.posted(replay_channel)) == 1


def test_retries_are_acknowledged_and_never_answered_twice(assistant):
    signer = assistant.signer()
    channel, event_id, ts = unique("C"), unique("Ev"), new_ts()
    question = "how many users are highly engaged?"
    first = signer.post(signer.mention(question, channel, "U0R", ts, event_id=event_id))
    assert first.status_code == 200
    wait_posts(assistant, channel)

    retries = []
    for number, reason in ((1, "http_timeout"), (2, "http_error"), (3, "unknown_error")):
        body = signer.mention(question, channel, "U0R", ts, event_id=event_id).body
        retry = signer.sign(body, "application/json", timestamp=int(time.time()) + number)
        retries.append(
            signer.post(retry, **{"X-Slack-Retry-Num": str(number), "X-Slack-Retry-Reason": reason})
        )
    # A retry whose first delivery never arrived is answered (once: its own retry is not).
    lone_channel, lone_event = unique("C"), unique("Ev")
    lone = [
        signer.post(
            signer.sign(
                signer.mention(question, lone_channel, "U0R", ts, event_id=lone_event).body,
                "application/json",
                timestamp=int(time.time()) + number,
            ),
            **{"X-Slack-Retry-Num": str(number), "X-Slack-Retry-Reason": "http_timeout"},
        )
        for number in (1, 2)
    ]

    for response in retries + lone[1:]:
        assert response.status_code == 200
        assert response.headers.get("X-Slack-No-Retry") == "1"
    assert lone[0].status_code == 200
    wait_posts(assistant, lone_channel)
    settle(assistant)
    assert len(assistant.slack.posted(channel)) == 1
    assert len(assistant.slack.posted(lone_channel)) == 1


def test_the_bots_own_messages_and_edits_are_ignored(assistant):
    signer = assistant.signer()
    text = "how many users are highly engaged?"
    cases = {
        "bot_id": {"bot_id": BOT_ID},
        "bot_message": {"subtype": "bot_message", "bot_id": None},
        "own user id": {"user": BOT_USER_ID},
        "edit": {"subtype": "message_changed"},
        "own upload": {"subtype": "file_share", "user": BOT_USER_ID},
    }
    channels = {}
    for name, event in cases.items():
        channel = unique("D")
        event = {k: v for k, v in event.items() if v is not None}
        response = signer.post(signer.direct(text, channel, event.pop("user", "U0H"), event=event))
        assert response.status_code == 200, name
        channels[name] = channel
    settle(assistant)
    for name, channel in channels.items():
        assert assistant.slack.posted(channel) == [], name
        assert reached_assistant(assistant, channel) == 0, name


@pytest.fixture(scope="module")
def restricted(assistant, tmp_path_factory):
    """A second Rasa server (same action server and database) serving only one channel of one
    team: SLACK_ALLOWED_CHANNELS=<allowed>, SLACK_ALLOWED_TEAMS=<the test team>."""
    allowed, spare = unique("C"), unique("C")
    with start_rasa(
        assistant,
        tmp_path_factory.mktemp("restricted"),
        "restricted",
        SLACK_ALLOWED_CHANNELS=f"{allowed}, {spare}",
        SLACK_ALLOWED_TEAMS=assistant.team_id,
    ) as servers:
        yield servers.rasa_url + "/webhooks/slack/webhook", allowed, spare


def test_allow_lists_limit_what_is_served(assistant, restricted):
    webhook, allowed, spare = restricted
    signer = assistant.signer(webhook)
    question = "how many users are highly engaged?"

    assert signer.post(signer.mention(question, allowed, "U0A")).status_code == 200
    wait_posts(assistant, allowed)

    other_channel, dm = unique("C"), unique("D")
    assert signer.post(signer.mention(question, other_channel, "U0A")).status_code == 200
    assert signer.post(signer.direct(question, dm, "U0A")).status_code == 200
    other_team = type(signer)(webhook, assistant.signing_secret, team_id="T0OTHERTEAM")
    before = len(assistant.slack.posted(allowed))
    assert other_team.post(other_team.mention(question, allowed, "U0A")).status_code == 200

    # A button click in a channel that isn't served.
    value = '/ask_segment_size{"segment": "Highly Engaged"}'
    posted = buttons_message({"Highly Engaged": value})
    click = signer.click(posted, other_channel, "U0A", value)
    assert signer.post(click).status_code == 200

    settle(assistant, signer, spare)
    assert assistant.slack.posted(other_channel) == []
    assert assistant.slack.posted(dm) == []
    assert len(assistant.slack.posted(allowed)) == before
    assert assistant.slack.calls_to("chat.update", channel=other_channel) == []
    for channel in (other_channel, dm):
        assert reached_assistant(assistant, channel) == 0


def test_an_export_is_uploaded_into_the_thread_as_csv(assistant):
    db = current_sizes(assistant)
    signer = assistant.signer()
    channel, ts = unique("C"), new_ts()
    signer.post(signer.mention("export the highly engaged users as csv", channel, unique("U"), ts))

    (text,) = wait_posts(assistant, channel)
    assert text["thread_ts"] == ts
    expected = {
        row[0]
        for row in assistant.sql(
            "SELECT user_id FROM user_segments WHERE run_id = :run AND segment = 'Highly Engaged'",
            run=db["run_id"],
        )
    }
    assert text["text"].startswith(f"Exported all {len(expected):,} *Highly Engaged* users as CSV")
    (upload,) = assistant.slack.wait_for(lambda: assistant.slack.files(channel, ts))
    assert upload.filename == f"highly-engaged-users-run-{db['run_id']}.csv"
    rows = list(csv.DictReader(io.StringIO(upload.data.decode())))
    assert {r["user_id"] for r in rows} == expected and len(rows) == len(expected)
