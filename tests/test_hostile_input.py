"""Hostile input over REST and the web chat (Slack's are in test_slack_faults.py): the real
Rasa and action servers answer every request with a 4xx or a reply, never a 500; what they
take is stored whole; the server stays alive. Property-based where it fits (hypothesis)."""

from __future__ import annotations

import http.client
import json
import uuid
from urllib.parse import urlparse

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.rest import (
    MAX_MESSAGE_CHARS,
    REST_SENDER,
    TOO_LONG,
    Refused,
    message_text,
    parse_message,
)
from tests.servers import current_sizes

CHANNELS = ("rest", "webchat")
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def post(assistant, channel, body=None, raw=None, timeout=60):
    url = f"{assistant.rasa_url}/webhooks/{channel}/webhook"
    if raw is not None:
        headers = {"Content-Type": "application/json"}
        return requests.post(url, data=raw, headers=headers, timeout=timeout)
    return requests.post(url, json=body, timeout=timeout)


def announced_body_status(assistant, channel, length):
    """The status the server answers to a request announcing a `length`-byte body, before
    any of it is sent (the server must refuse it from the headers alone)."""
    connection = http.client.HTTPConnection(urlparse(assistant.rasa_url).netloc, timeout=30)
    try:
        connection.putrequest("POST", f"/webhooks/{channel}/webhook")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(length))
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def sender(prefix="hostile"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def stored_user_texts(assistant, sender_id):
    rows = assistant.sql(
        "SELECT data FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id",
        s=sender_id,
    )
    return [json.loads(row.data)["text"] for row in rows]


@pytest.mark.parametrize("channel", CHANNELS)
def test_bodies_that_are_not_a_message_get_a_4xx(assistant, channel):
    who = sender()
    refused = {
        "array": [{"sender": who, "message": "hi"}],
        "null": None,
        "string": "hi",
        "number": 12,
        "no sender": {"message": "hi"},
        "sender null": {"sender": None, "message": "hi"},
        "sender a list": {"sender": [who], "message": "hi"},
        "message null": {"sender": who, "message": None},
        "message a number": {"sender": who, "message": 10**300},
        "message an object": {"sender": who, "message": {"text": "hi"}},
        "message only spaces and NULs": {"sender": who, "message": " \x00\x00 "},
        "metadata a list": {"sender": who, "message": "hi", "metadata": [1, 2]},
    }
    for name, body in refused.items():
        answer = post(assistant, channel, body)
        assert 400 <= answer.status_code < 500, name
        assert "error" in answer.json(), name
    for name, raw in {
        "bad JSON": b"{nope",
        "deep nesting": b"[" * 60_000,
        "a 5,000-digit number": b'{"sender": "'
        + who.encode()
        + b'", "message": '
        + b"9" * 5000
        + b"}",
        "not UTF-8": b'{"sender": "x", "message": "\xff\xfe"}',
    }.items():
        assert post(assistant, channel, raw=raw).status_code == 400, name
    assert stored_user_texts(assistant, who) == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_oversized_messages_and_bodies_are_refused_before_the_nlu(assistant, channel):
    who = sender()
    too_long = {
        "100 KB message": "how many users " * 7000,
        "2,001 characters": "a" * (MAX_MESSAGE_CHARS + 1),
        "emoji flood": "\U0001F600" * 700,  # 700 characters, 8,400 bytes JSON-escaped
    }
    for name, text in too_long.items():
        answer = post(assistant, channel, {"sender": who, "message": text})
        assert answer.status_code == 413, name
        assert answer.json()["error"] in (TOO_LONG, "request body too large"), name
    if channel == "rest":
        metadata = {"sender": who, "message": "hi", "metadata": {"x": "y" * 5000}}
        assert post(assistant, channel, metadata).status_code == 413
    assert announced_body_status(assistant, channel, 2 * 2**20) == 413  # over the 1 MB cap
    assert stored_user_texts(assistant, who) == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_what_is_taken_is_answered_and_stored_whole(assistant, channel):
    who = sender("w" if channel == "webchat" else "rest:pm@example.com")
    accepted = [
        "hello\x00 there",  # NUL becomes a space
        "\U0001F600" * 600 + " how many users are highly engaged?",  # 7,200+ bytes escaped
        "top 1" + "0" * 400 + " highly engaged users",  # a huge number
        "'; DROP TABLE events; --",
    ]
    for text in accepted:
        answer = post(assistant, channel, {"sender": who, "message": text})
        assert answer.status_code == 200, text[:40]
        replies = answer.json()
        assert replies and all(r.get("text") or r.get("image") for r in replies), text[:40]
    stored = stored_user_texts(assistant, who)
    assert stored == [message_text(text) for text in accepted]
    assert stored[0] == "hello  there"


def test_sender_ids_are_checked_on_rest_and_long_ones_still_fit(assistant):
    for odd in ("", "a" * 129, "a b", "../../etc/passwd", "é", "x\x00y", "<script>"):
        answer = post(assistant, "rest", {"sender": odd, "message": "hello"})
        assert answer.status_code == 400, repr(odd)
    longest = "L" + uuid.uuid4().hex + "x" * 95  # 128 characters
    assert post(assistant, "rest", {"sender": longest, "message": "hello"}).status_code == 200
    assert stored_user_texts(assistant, longest) == ["hello"]
    for odd in ("short", "a" * 65, "bad sender!"):  # the web chat's own rule: 8-64 [A-Za-z0-9_-]
        assert post(assistant, "webchat", {"sender": odd, "message": "hi"}).status_code == 400


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=json_values)
def test_any_json_body_gets_a_reply_or_a_4xx_never_a_5xx(assistant, body):
    for channel in CHANNELS:
        answer = post(assistant, channel, body)
        assert answer.status_code == 200 or 400 <= answer.status_code < 500, body
        assert isinstance(answer.json(), list if answer.status_code == 200 else dict)


def test_the_server_is_alive_and_right_after_the_hostile_suite(assistant):
    assert requests.get(f"{assistant.rasa_url}/webhooks/rest/", timeout=30).json()["status"] == "ok"
    size = current_sizes(assistant)["segments"]["Highly Engaged"][0]
    (reply,) = assistant.rest("how many users are highly engaged?")
    assert reply["text"].startswith(f"*Highly Engaged* has *{size:,} users*")


class FakeRequest:
    def __init__(self, body: bytes) -> None:
        self.body = body


@settings(max_examples=500, deadline=None)
@given(body=json_values, who=st.text(max_size=140), text=st.text(max_size=2100))
def test_parse_message_takes_only_what_fits(body, who, text):
    """Whatever the body: a clean (sender, text) within every limit, or a 4xx refusal."""
    for candidate in (body, {"sender": who, "message": text}):
        try:
            found_sender, found_text, _ = parse_message(
                FakeRequest(json.dumps(candidate).encode()), REST_SENDER, "help"
            )
        except Refused as refused:
            assert 400 <= refused.status < 500
            continue
        assert REST_SENDER.match(found_sender)
        assert found_text.strip() == found_text and found_text
        assert len(found_text) <= MAX_MESSAGE_CHARS and len(json.dumps(found_text)) <= 8000
        assert not any(ord(c) < 32 and c not in "\t\n" for c in found_text)
