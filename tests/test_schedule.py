"""schedule: refresh on a timer; a failing tick is logged and the next one retries."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from segmentation import refresh_commands
from segmentation.cli import main
from segmentation.errors import ConfigError, DatabaseUnavailable
from segmentation.schedule import make_trigger, run_schedule
from segmentation.schema import clickstream, segmentation_runs
from tests.factories import click, insert_frame, load_population, tiered_population


def complete_run_ids(engine):
    with engine.connect() as conn:
        return (
            conn.execute(
                select(segmentation_runs.c.id).where(segmentation_runs.c.status == "complete")
            )
            .scalars()
            .all()
        )


def test_schedule_refreshes_every_tick_and_builds_only_on_new_data(engine, db_url, monkeypatch):
    load_population(engine, tiered_population(10))
    ticks = []
    real = refresh_commands.refresh_once

    def counted(args):
        ticks.append(len(ticks))
        if len(ticks) == 2:  # new events land between the first and the second tick
            insert_frame(engine, clickstream, [click("late", 0.1, "/n")])
        return real(args)

    monkeypatch.setattr(refresh_commands, "refresh_once", counted)
    argv = ["-q", "--database-url", db_url, "schedule", "--every", "1s", "--max-runs", "3"]
    assert main(argv + ["--keep-runs", "5"]) == 0
    assert len(ticks) == 3
    assert complete_run_ids(engine) == [1, 2]  # tick 1: no run yet; tick 2: the new click


def test_a_failed_tick_is_logged_and_the_next_one_retries(caplog):
    outcomes = iter([DatabaseUnavailable("cannot reach the database"), RuntimeError("boom"), None])
    calls = []

    def tick():
        calls.append(1)
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    with caplog.at_level(logging.INFO, logger="segmentation"):
        failed = run_schedule(tick, every=timedelta(seconds=0.2), max_runs=3)
    assert failed == 2 and len(calls) == 3
    messages = [r.getMessage() for r in caplog.records if r.name == "segmentation.schedule"]
    assert any("cannot reach the database" in m and "next tick" in m for m in messages)
    assert any("refresh failed" in m for m in messages)


def test_cron_and_interval_triggers():
    assert "cron" in str(make_trigger(None, "0 * * * *"))
    assert "interval" in str(make_trigger(timedelta(hours=1), None))
    with pytest.raises(ConfigError):
        make_trigger(None, "every hour")
    with pytest.raises(ConfigError):
        make_trigger(None, None)


def test_the_digest_runs_on_its_own_trigger_and_survives_failures(caplog):
    from apscheduler.triggers.interval import IntervalTrigger

    digests = []

    def digest():
        digests.append(1)
        if len(digests) == 1:
            raise RuntimeError("slack is down")

    with caplog.at_level(logging.INFO, logger="segmentation"):
        failed = run_schedule(
            lambda: None,
            every=timedelta(seconds=0.6),
            max_runs=3,
            extra=[("digest", digest, IntervalTrigger(seconds=0.2))],
        )
    assert failed == 0 and len(digests) >= 3
    assert any("digest failed" in r.getMessage() for r in caplog.records)


def test_schedule_takes_a_digest_cron(engine, db_url, capsys):
    load_population(engine, tiered_population(10))
    argv = ["-q", "--database-url", db_url, "schedule", "--every", "1h", "--max-runs", "1"]
    assert main(argv + ["--digest-cron", "0 9 * * 1", "--no-alerts"]) == 0
    assert complete_run_ids(engine) == [1]
    assert main(argv + ["--digest-cron", "every monday"]) == 2
