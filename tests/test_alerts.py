"""Movement alerts after a refresh, against the local Slack-compatible server: they fire exactly
when a threshold is crossed, and a failed post is retried without posting twice."""

from __future__ import annotations

from collections import defaultdict

import pytest
from sqlalchemy import select, text

from bot.slack_output import RATE_LIMIT_RETRIES
from segmentation.cli import main
from segmentation.schema import alert_deliveries
from tests.factories import load_population, tiered_population
from tests.fake_slack import FakeSlack

TOKEN = "xoxb-0000000000-test-alerts"
CHANNEL = "C0ALERTS1"
FAST = ["--n-init", "3", "--stability-runs", "1"]


def cli(db_url, *argv):
    return main(["-q", "--database-url", db_url, *argv])


def newcomers(population, prefix="h", rename="x", count=12):
    """More users like the `prefix` tier, under new ids (the segment grows)."""
    wanted = {f"{prefix}{i:03d}" for i in range(count)}
    return {
        table: [
            {**row, "user_id": rename + row["user_id"][1:]}
            for row in rows
            if row["user_id"] in wanted
        ]  # fmt: skip
        for table, rows in population.items()
    }


@pytest.fixture
def two_runs(engine, db_url, tmp_path, monkeypatch):
    """Run #1 on three tiers of 20, run #2 after 12 more highly engaged users arrived; returns
    each segment's movement from SQL written here: {segment: (points, percent)}."""
    monkeypatch.setenv("SI_CHARTS_DIR", str(tmp_path / "charts"))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SI_ALERT_CHANNEL", raising=False)
    population = tiered_population(20)
    load_population(engine, population)
    assert cli(db_url, "build", *FAST) == 0
    load_population(engine, newcomers(population))
    assert cli(db_url, "refresh", "--no-alerts") == 0
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT run_id, segment, COUNT(*) FROM user_segments "
                "GROUP BY run_id, segment ORDER BY run_id"
            )
        ).all()
    sizes = defaultdict(dict)
    for run_id, segment, n in rows:
        sizes[run_id][segment] = n
    assert sorted(sizes) == [1, 2]
    total1, total2 = sum(sizes[1].values()), sum(sizes[2].values())
    assert (total1, total2) == (60, 72)
    return {
        segment: (
            (sizes[2].get(segment, 0) / total2 - sizes[1][segment] / total1) * 100,
            (sizes[2].get(segment, 0) - sizes[1][segment]) / sizes[1][segment] * 100,
        )
        for segment in sizes[1]
    }


def deliveries(engine):
    with engine.connect() as conn:
        return conn.execute(select(alert_deliveries).order_by(alert_deliveries.c.id)).all()


def test_alert_fires_exactly_at_the_share_threshold(two_runs, engine, db_url, monkeypatch):
    points = max(abs(p) for p, _ in two_runs.values())
    moved = {s for s, (p, _) in two_runs.items() if abs(p) >= points - 1e-9}
    assert points > 1
    with FakeSlack(TOKEN) as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("SLACK_API_URL", slack.api_url)
        options = ["--alert-channel", CHANNEL, "--alert-size-percent", "1000"]
        assert cli(db_url, "refresh", *options, "--alert-share-points", f"{points + 0.01}") == 0
        assert slack.posted() == [] and deliveries(engine) == []

        assert cli(db_url, "refresh", *options, "--alert-share-points", repr(points)) == 0
        posts = slack.posted(CHANNEL)
        assert len(posts) == 1
        message = posts[0]["text"]
        assert "run #1" in message and "run #2" in message
        for segment, (p, percent) in two_runs.items():
            assert (f"*{segment}*" in message) == (segment in moved), segment
            if segment in moved:
                sign = "+" if p >= 0 else "−"
                assert f"({sign}{abs(p):.1f} points)" in message
                assert f"{'+' if percent >= 0 else '−'}{abs(percent):.1f}%" in message
        charts = slack.files(CHANNEL)
        assert len(charts) == 1 and charts[0].title == "Segment sizes over runs"

        assert cli(db_url, "refresh", *options, "--alert-share-points", "0.1") == 0
        assert len(slack.posted()) == 1  # run #2 was alerted already
        assert [(d.run_id, d.channel, d.status) for d in deliveries(engine)] == [
            (2, CHANNEL, "sent")
        ]


def test_alert_fires_exactly_at_the_size_threshold(two_runs, engine, db_url, monkeypatch):
    percent = max(abs(p) for _, p in two_runs.values())
    with FakeSlack(TOKEN) as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("SLACK_API_URL", slack.api_url)
        monkeypatch.setenv("SI_ALERT_CHANNEL", CHANNEL)
        monkeypatch.setenv("SI_ALERT_SHARE_POINTS", "100")
        monkeypatch.setenv("SI_ALERT_SIZE_PERCENT", f"{percent + 0.01}")
        assert cli(db_url, "refresh") == 0
        assert slack.posted() == []
        monkeypatch.setenv("SI_ALERT_SIZE_PERCENT", repr(percent))
        assert cli(db_url, "refresh") == 0
        assert len(slack.posted(CHANNEL)) == 1


def test_a_failed_post_is_retried_without_posting_twice(two_runs, engine, db_url, monkeypatch):
    with FakeSlack(TOKEN) as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("SLACK_API_URL", slack.api_url)
        options = ["--alert-channel", CHANNEL, "--alert-share-points", "0.5"]
        slack.rate_limit("chat.postMessage", retry_after=0, times=RATE_LIMIT_RETRIES + 1)
        assert cli(db_url, "refresh", *options) == 1  # Slack never took it
        assert slack.posted() == []
        assert [d.status for d in deliveries(engine)] == ["failed"]

        assert cli(db_url, "refresh", *options) == 0  # the next refresh posts it
        assert len(slack.posted(CHANNEL)) == 1
        assert [(d.status, d.attempts) for d in deliveries(engine)] == [("sent", 2)]
        assert cli(db_url, "refresh", *options) == 0
        assert len(slack.posted()) == 1


def test_without_slack_the_alert_is_printed_once(two_runs, db_url, capsys):
    capsys.readouterr()
    assert cli(db_url, "refresh", "--alert-share-points", "0.5") == 0
    out = capsys.readouterr().out
    assert "Segments moved between run #1" in out and "Chart (Segment sizes over runs)" in out
    assert cli(db_url, "refresh", "--alert-share-points", "0.5") == 0
    assert "Segments moved" not in capsys.readouterr().out


def test_no_alert_for_runs_with_other_segments(engine, db_url, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SI_CHARTS_DIR", str(tmp_path))
    load_population(engine, tiered_population(10))
    assert cli(db_url, "build", *FAST) == 0
    assert cli(db_url, "build", *FAST, "--k", "2") == 0
    capsys.readouterr()
    assert cli(db_url, "refresh", "--alert-share-points", "0.01") == 0
    assert "Segments moved" not in capsys.readouterr().out
