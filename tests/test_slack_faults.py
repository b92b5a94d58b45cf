"""Slack when things go wrong: rate limits (HTTP 429 + Retry-After from the fake Slack), a
reply Slack never takes, duplicate deliveries, and requests shaped unlike Slack's.
The real Rasa + action servers + MariaDB answer; tests/fake_slack.py plays Slack."""

from __future__ import annotations

import json
import time

from tests.fake_slack import new_ts, unique
from tests.servers import ARTIFACTS, current_sizes, size_text
from tests.test_slack import reached_assistant, settle, wait_posts

QUESTION = "how many users are highly engaged?"


def user_texts(assistant, channel):
    rows = assistant.sql(
        "SELECT data FROM events WHERE sender_id LIKE :p AND type_name = 'user' ORDER BY id",
        p=f"%{channel}%",
    )
    return [json.loads(row.data)["text"] for row in rows]


def test_a_rate_limited_reply_arrives_once_after_retry_after(assistant):
    db = current_sizes(assistant)
    signer = assistant.signer()
    channel = unique("C")
    assistant.slack.rate_limit("chat.postMessage", retry_after=1, times=1)
    assert signer.post(signer.mention(QUESTION, channel, "U0RL")).status_code == 200

    (message,) = wait_posts(assistant, channel)
    assert message["text"] == size_text(db, "Highly Engaged")
    calls = assistant.slack.calls_to("chat.postMessage", channel=channel)
    limited = [c for c in calls if c.status == 429]
    delivered = [c for c in calls if c.response.get("ok")]
    assert len(limited) == 1 and len(delivered) == 1
    assert delivered[0].at - limited[0].at >= 1.0  # waited for Retry-After
    settle(assistant)
    assert len(assistant.slack.posted(channel)) == 1
    assert len(user_texts(assistant, channel)) == 1


def test_a_reply_slack_never_takes_is_logged_and_the_turn_is_still_stored(assistant):
    db = current_sizes(assistant)
    signer = assistant.signer()
    channel, ts = unique("C"), new_ts()
    assistant.slack.rate_limit("chat.postMessage", retry_after=1, times=4)  # > its 3 retries
    assert signer.post(signer.mention(QUESTION, channel, "U0RF", ts)).status_code == 200
    assistant.slack.wait_for(
        lambda: len(assistant.slack.calls_to("chat.postMessage", channel=channel)) >= 4
    )
    settle(assistant)
    assert assistant.slack.posted(channel) == []
    log = (ARTIFACTS / "logs" / "assistant" / "rasa-server.log").read_text(errors="replace")
    assert f"Slack did not take a reply in {channel}" in log
    assert len(user_texts(assistant, channel)) == 1  # the turn is stored

    # The stored turn keeps the context: the follow-up in the thread is understood.
    mention = signer.mention("and the moderate ones?", channel, "U0RF", event={"thread_ts": ts})
    assert signer.post(mention).status_code == 200
    (answer,) = wait_posts(assistant, channel)
    assert answer["text"] == size_text(db, "Moderate Engagement")


def test_the_same_event_delivered_many_times_is_answered_once(assistant):
    signer = assistant.signer()
    channel, event_id, ts = unique("C"), unique("Ev"), new_ts()
    body = signer.mention(QUESTION, channel, "U0DUP", ts, event_id=event_id).body
    statuses = []
    for number in range(4):  # Slack's first delivery, then the same event re-sent
        request = signer.sign(body, "application/json", timestamp=int(time.time()) + number)
        headers = {"X-Slack-Retry-Num": str(number), "X-Slack-Retry-Reason": "http_error"}
        statuses.append(signer.post(request, **(headers if number % 2 else {})).status_code)
    assert statuses == [200, 200, 409, 200]
    wait_posts(assistant, channel)
    settle(assistant)
    assert len(assistant.slack.posted(channel)) == 1
    assert len(user_texts(assistant, channel)) == 1


def test_requests_unlike_slacks_get_a_4xx_and_never_reach_the_assistant(assistant):
    signer = assistant.signer()
    channel = unique("C")
    good = json.loads(signer.mention(QUESTION, channel, "U0BAD").body)
    shapes = {
        "event is a list": {**good, "event": [good["event"]]},
        "event is null": {**good, "event": None},
        "text is a number": {**good, "event": {**good["event"], "text": 10**30}},
        "user is an object": {**good, "event": {**good["event"], "user": {"id": "U1"}}},
        "channel with spaces": {**good, "event": {**good["event"], "channel": "C 1; DROP"}},
        "ts not a ts": {**good, "event": {**good["event"], "ts": "yesterday"}},
        "event_id a number": {**good, "event_id": 12},  # the others get fresh event ids
    }
    for name, body in shapes.items():
        body = {**body, "event_id": unique("Ev")} if name != "event_id a number" else body
        request = signer.sign(json.dumps(body).encode(), "application/json")
        assert signer.post(request).status_code == 400, name
    for raw in (b"[]", b"null", b'"text"', b"[" * 100_000, b'{"a": ' + b"9" * 5000 + b"}"):
        assert signer.post(signer.sign(raw, "application/json")).status_code == 400, raw[:20]
    clicks = [
        {"type": "block_actions", "actions": [{"type": "button", "value": "/greet"}]},
        {"type": "block_actions", "user": {"id": "U1"}, "actions": "all of them"},
        {"type": "block_actions", "user": {"id": "U1"}, "actions": [{"value": "x" * 9000}]},
    ]
    for click in clicks:
        body = ("payload=" + json.dumps(click)).encode()
        request = signer.sign(body, "application/x-www-form-urlencoded")
        assert signer.post(request).status_code == 400, click
    settle(assistant)
    assert reached_assistant(assistant, channel) == 0
    assert assistant.slack.posted(channel) == []


def test_an_overlong_message_is_answered_politely_in_its_thread(assistant):
    signer = assistant.signer()
    channel, ts = unique("C"), new_ts()
    flood = "\U0001F600" * 1000  # 1,000 characters, 12,000 bytes once JSON-escaped
    assert signer.post(signer.mention(flood, channel, "U0LONG", ts)).status_code == 200
    (reply,) = wait_posts(assistant, channel)
    assert reply["text"].startswith("Sorry, I can't take that message: message too long")
    assert reply["thread_ts"] == ts
    settle(assistant)
    assert reached_assistant(assistant, channel) == 0
