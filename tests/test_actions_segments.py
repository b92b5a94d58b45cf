"""Segment actions against a seeded database (SQLite and MariaDB): numbers equal the rows."""

import re

import pandas as pd
import pytest
from sqlalchemy import select

from actions.segment_actions import (
    ActionCompareSegments,
    ActionMetric,
    ActionOverview,
    ActionSegmentProfile,
    ActionSegmentSize,
    ActionShowChart,
    ActionTargetingAdvice,
)
from segmentation import formatting as fmt
from segmentation.schema import user_segments
from tests.action_helpers import entity, make_tracker, only_text, run_action, slots_set


def frame(engine, run_id):
    with engine.connect() as conn:
        rows = conn.execute(select(user_segments).where(user_segments.c.run_id == run_id)).all()
    return pd.DataFrame([{**r.features, "segment": r.segment} for r in rows])


def test_overview_sizes_equal_the_database(seeded, engine):
    messages, events = run_action(ActionOverview(), make_tracker("ask_overview"))
    text = only_text(messages)
    data = frame(engine, seeded.run_id)
    assert f"*{len(data)} users in 3 segments:*" in text
    for name, size in data.segment.value_counts().items():
        assert f"*{name}*: {size} users ({fmt.percent(size / len(data))})" in text
    assert f"run #{seeded.run_id} of" in text
    assert slots_set(events)["topic"] == "overview"
    assert not any(m.get("image") for m in messages)  # REST/terminal: no automatic chart


def test_overview_on_slack_attaches_the_sizes_chart(seeded, monkeypatch):
    monkeypatch.setenv("SI_PUBLIC_URL", "http://127.0.0.1:5005")
    messages, _ = run_action(ActionOverview(), make_tracker("ask_overview", channel="slack"))
    images = [m["image"] for m in messages if m.get("image")]
    assert images == [f"http://127.0.0.1:5005/webhooks/webchat/charts/run{seeded.run_id}-sizes.png"]


def test_size_with_synonym_and_typo(seeded):
    tracker = make_tracker("ask_segment_size", entities=[entity("segment", "higly engaged")])
    messages, events = run_action(ActionSegmentSize(), tracker)
    assert only_text(messages).startswith("*Highly Engaged* has *30 users*, 33.3% of all 90 users.")
    assert slots_set(events)["segment"] == "Highly Engaged"


def test_missing_segment_is_asked_with_buttons(seeded):
    messages, _ = run_action(ActionSegmentSize(), make_tracker("ask_segment_size"))
    assert messages[0]["text"] == "Which segment do you want the size of?"
    assert [b["payload"] for b in messages[0]["buttons"]] == [
        '/ask_segment_size{"segment": "Low Engagement"}',
        '/ask_segment_size{"segment": "Moderate Engagement"}',
        '/ask_segment_size{"segment": "Highly Engaged"}',
    ]


def test_segment_from_context_slot(seeded):
    tracker = make_tracker("ask_segment_size", slots={"segment": "Low Engagement"})
    messages, _ = run_action(ActionSegmentSize(), tracker)
    assert "*Low Engagement* has *30 users*" in only_text(messages)


def test_profile_table_matches_means(seeded, engine):
    tracker = make_tracker(
        "ask_segment_profile", entities=[entity("segment", "Moderate Engagement")]
    )
    text = only_text(run_action(ActionSegmentProfile(), tracker)[0])
    data = frame(engine, seeded.run_id)
    moderate = data[data.segment == "Moderate Engagement"]
    row = next(line for line in text.splitlines() if line.startswith("clicks "))
    assert row.split()[1:3] == [fmt.number(moderate.clicks.mean()), fmt.number(data.clicks.mean())]


def test_metric_for_a_segment_and_the_leader(seeded, engine):
    data = frame(engine, seeded.run_id)
    high = data[data.segment == "Highly Engaged"]
    tracker = make_tracker(
        "ask_metric",
        entities=[entity("metric", "avg_article_time"), entity("segment", "Highly Engaged", 30)],
    )
    text = only_text(run_action(ActionMetric(), tracker)[0])
    assert text.startswith(
        f"*Highly Engaged* users average *{fmt.quantity(high.avg_article_time.mean(), 's')}*"
    )
    leader = run_action(
        ActionMetric(), make_tracker("ask_metric", entities=[entity("metric", "searches")])
    )
    assert only_text(leader[0]).startswith(
        f"*Highly Engaged* has the highest average searches: *{fmt.number(high.searches.mean())}*"
    )


def test_metric_missing_asks_with_buttons(seeded):
    messages, _ = run_action(ActionMetric(), make_tracker("ask_metric"))
    assert "Which measure?" in messages[0]["text"] and len(messages[0]["buttons"]) == 3


def test_compare_two_and_ask_for_the_second(seeded):
    both = make_tracker(
        "compare_segments",
        entities=[entity("segment", "Low Engagement"), entity("segment", "Highly Engaged", 20)],
    )
    text = only_text(run_action(ActionCompareSegments(), both)[0])
    assert text.startswith("*Low Engagement* (30 users) vs *Highly Engaged* (30 users)")
    one = make_tracker("compare_segments", entities=[entity("segment", "Low Engagement")])
    messages, events = run_action(ActionCompareSegments(), one)
    assert messages[0]["text"] == "Compare Low Engagement with which segment?"
    assert (
        len(messages[0]["buttons"]) == 2 and slots_set(events)["compare_first"] == "Low Engagement"
    )
    second = make_tracker(
        "compare_segments",
        entities=[entity("segment", "Moderate Engagement")],
        slots={"compare_first": "Low Engagement"},
    )
    text = only_text(run_action(ActionCompareSegments(), second)[0])
    assert text.startswith("*Low Engagement* (30 users) vs *Moderate Engagement* (30 users)")


@pytest.mark.parametrize(
    "segment, expected",
    [
        ("Low Engagement", "weakest behaviours against the average user"),
        ("Moderate Engagement", "close the gaps to *Highly Engaged*"),
        ("Highly Engaged", "are your best users"),
    ],
)
def test_targeting_advice_uses_the_segment_numbers(seeded, engine, segment, expected):
    tracker = make_tracker("targeting_advice", entities=[entity("segment", segment)])
    text = only_text(run_action(ActionTargetingAdvice(), tracker)[0])
    assert expected in text
    data = frame(engine, seeded.run_id)
    assert f"{fmt.count((data.segment == segment).sum())} users" in text
    numbers = re.findall(r"vs [\d.,]+", text)
    assert numbers, text  # every tactic cites its figures


def test_chart_on_terminal_is_a_file(seeded, tmp_path):
    tracker = make_tracker(
        "ask_chart", entities=[entity("segment", "Low Engagement")], channel="cmdline"
    )
    messages, _ = run_action(ActionShowChart(), tracker)
    path = messages[-1]["text"].removeprefix("Chart saved to ")
    assert path.endswith("-profile-low-engagement.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_no_run_says_how_to_build_one(use_database, engine):
    text = only_text(run_action(ActionOverview(), make_tracker("ask_overview"))[0])
    assert "There is no segmentation run yet" in text and "python -m segmentation demo" in text
