"""digest: sizes, changes and quality of the current run, to Slack or the terminal."""

from __future__ import annotations

from sqlalchemy import text

from segmentation.cli import main
from tests.factories import load_population, tiered_population
from tests.fake_slack import FakeSlack
from tests.test_alerts import FAST, newcomers

TOKEN = "xoxb-0000000000-test-digest"


def sizes_sql(engine, run_id):
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT segment, COUNT(*) FROM user_segments WHERE run_id = :r GROUP BY segment"),
            {"r": run_id},
        ).all()
    return dict(rows)


def moved_sql(engine):
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT COUNT(*) FROM user_segments a JOIN user_segments b "
                "ON a.user_id = b.user_id AND b.run_id = 2 WHERE a.run_id = 1 "
                "AND a.segment <> b.segment"
            )
        ).scalar()


def new_sql(engine):
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT COUNT(*) FROM user_segments b WHERE b.run_id = 2 AND b.user_id NOT IN "
                "(SELECT user_id FROM user_segments WHERE run_id = 1)"
            )
        ).scalar()


def test_digest_posts_sizes_changes_and_quality(engine, db_url, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SI_CHARTS_DIR", str(tmp_path))
    population = tiered_population(20)
    load_population(engine, population)
    assert main(["-q", "--database-url", db_url, "build", *FAST]) == 0
    assert main(["-q", "--database-url", db_url, "digest"]) == 0  # one run: no changes yet
    out = capsys.readouterr().out
    assert "Segment digest: run #1" in out and "Silhouette" in out and "Chart" not in out
    load_population(engine, newcomers(population))
    assert main(["-q", "--database-url", db_url, "refresh", "--no-alerts"]) == 0
    with FakeSlack(TOKEN) as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("SLACK_API_URL", slack.api_url)
        assert main(["-q", "--database-url", db_url, "digest", "--channel", "C0DIGEST"]) == 0
        posts = slack.posted("C0DIGEST")
        assert len(posts) == 1
        message = posts[0]["text"]
        assert "Segment digest: run #2" in message
        for segment, n in sizes_sql(engine, 2).items():
            assert f"*{segment}*: {n} users" in message, segment
        assert f"*{moved_sql(engine)}* users changed segment" in message
        assert f"New users: {new_sql(engine)};" in message
        assert "Silhouette" in message
        assert [f.title for f in slack.files("C0DIGEST")] == ["Segment sizes over runs"]
