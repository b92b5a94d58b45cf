"""End to end over the REST webhook: the real Rasa server, action server and MariaDB.

Answers are checked against numbers computed here with plain SQL on the raw tables.
"""

import re
import uuid

import pytest


def texts(replies):
    return "\n".join(r.get("text", "") for r in replies)


def current_run(assistant):
    return assistant.sql(
        "SELECT id, created_at FROM segmentation_runs WHERE status = 'complete' "
        "ORDER BY id DESC LIMIT 1"
    )[0]


def segment_count(assistant, segment):
    run = current_run(assistant)
    return assistant.sql(
        "SELECT COUNT(*) AS n FROM user_segments WHERE run_id = :r AND segment = :s",
        r=run.id,
        s=segment,
    )[0].n


@pytest.fixture
def conversation(assistant):
    """Send messages as one user; returns the replies of each message."""
    sender = f"e2e-{uuid.uuid4().hex[:10]}"
    return lambda message: assistant.rest(message, sender=sender)


def test_size_then_follow_up_in_context(assistant, conversation):
    run = current_run(assistant)
    high, moderate = segment_count(assistant, "Highly Engaged"), segment_count(
        assistant, "Moderate Engagement"
    )
    reply = texts(conversation("how many users are highly engaged?"))
    assert f"*Highly Engaged* has *{high} users*" in reply
    assert f"run #{run.id} of {run.created_at:%d %b %Y %H:%M} UTC" in reply
    assert f"*Moderate Engagement* has *{moderate} users*" in texts(
        conversation("and the moderate ones?")
    )


def test_user_lookup_and_follow_up(assistant, conversation):
    run = current_run(assistant)
    expected = dict(
        (row.user_id, row.segment)
        for row in assistant.sql(
            "SELECT user_id, segment FROM user_segments WHERE run_id = :r AND user_id IN ('h004', 'l003')",
            r=run.id,
        )
    )
    reply = texts(conversation("which segment is user h004 in?"))
    assert reply.startswith(f"User *h004* is in *{expected['h004']}*.")
    assert "closest to the" in reply and "runner-up" in reply
    assert texts(conversation("what about user l003?")).startswith(
        f"User *l003* is in *{expected['l003']}*."
    )


def test_missing_segment_is_asked_with_buttons_that_work(assistant, conversation):
    replies = conversation("describe the segment")
    asking = next(r for r in replies if r.get("buttons"))
    titles = [b["title"] for b in asking["buttons"]]
    assert titles == ["Low Engagement", "Moderate Engagement", "Highly Engaged"]
    low = segment_count(assistant, "Low Engagement")
    payload = asking["buttons"][0]["payload"]
    assert texts(conversation(payload)).startswith(f"*Low Engagement*: {low} users")


def test_members_are_paged(assistant, conversation):
    run = current_run(assistant)
    ordered = [
        row.user_id
        for row in assistant.sql(
            "SELECT user_id FROM user_segments WHERE run_id = :r AND segment = 'Highly Engaged' "
            "ORDER BY score DESC, user_id DESC",
            r=run.id,
        )
    ]
    first = texts(conversation("top 5 highly engaged users"))
    assert f"*Highly Engaged* users: 1–5 of {len(ordered)}" in first
    assert re.findall(r"\n(h\d{3}) ", first) == ordered[:5]
    second = texts(conversation("show more"))
    assert re.findall(r"\n(h\d{3}) ", second) == ordered[5:10]


def test_breakdown_then_value_in_context(assistant, conversation):
    run = current_run(assistant)
    rows = assistant.sql(
        "SELECT u.device, COUNT(*) AS n FROM user_segments s JOIN users u ON u.user_id = s.user_id "
        "WHERE s.run_id = :r AND s.segment = 'Highly Engaged' GROUP BY u.device",
        r=run.id,
    )
    counts = {row.device: row.n for row in rows}
    reply = texts(conversation("break down highly engaged users by device"))
    for device, n in counts.items():
        assert re.search(rf"\n{device} +{n} ", reply), reply
    reply = texts(conversation("how many of them are on iOS?"))
    assert reply.startswith(f"*Highly Engaged* users on iOS: *{counts['iOS']}* — ")


def test_run_info_quality_and_changes(assistant, conversation):
    run = current_run(assistant)
    metrics = assistant.sql("SELECT metrics FROM segmentation_runs WHERE id = :r", r=run.id)[
        0
    ].metrics
    reply = texts(conversation("when were the segments last updated?"))
    assert f"*{run.created_at:%d %b %Y at %H:%M} UTC* (run #{run.id})" in reply
    import json

    silhouette = json.loads(metrics)["silhouette"]
    assert f"Silhouette *{silhouette:.2f}*" in texts(conversation("how good is the clustering?"))
    assert "nothing to compare it with yet" in texts(
        conversation("what changed since the last run?")
    )


def test_small_talk_and_out_of_scope(assistant, conversation):
    assert texts(conversation("hi there")).startswith("Hi!")
    help_text = texts(conversation("what can you do?"))
    assert "How are our users split?" in help_text
    redirect = texts(conversation("what's the weather like in Lisbon tomorrow?"))
    assert "outside what I can help with" in redirect and "segments" in redirect


def test_unclear_input_gets_a_clarification_not_a_guess(assistant, conversation):
    replies = conversation("blorp zzz quux")
    reply = texts(replies)
    assert ("I'm not sure what you mean" in reply) or ("outside what I can help with" in reply)
    assert not re.search(r"\*[\d,]+\*", reply)  # no number was answered


def test_conversations_are_stored_in_the_database(assistant):
    sender = f"stored-{uuid.uuid4().hex[:8]}"
    assistant.rest("how many users are highly engaged?", sender=sender)
    events = assistant.sql(
        "SELECT type_name, action_name FROM events WHERE sender_id = :s ORDER BY id", s=sender
    )
    assert ("user", None) in [(e.type_name, e.action_name) for e in events]
    assert "action_answer" in [e.action_name for e in events]
