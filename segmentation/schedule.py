"""`schedule`: run refresh every interval or on a cron expression, in the foreground.

APScheduler's BlockingScheduler runs the tick in the foreground (for systemd, supervisord or a
container to keep alive). One tick at a time (`max_instances=1`, missed ticks coalesced). A tick
that fails is logged and the next tick tries again; the build is all or nothing, so the previous
run stays current meanwhile.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional, Sequence, Tuple

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from segmentation.errors import ConfigError, SegmentationError

log = logging.getLogger(__name__)


def make_trigger(every: Optional[timedelta], cron: Optional[str]):
    """An interval trigger (`every`) or a cron trigger ("0 * * * *", UTC)."""
    if (every is None) == (cron is None):
        raise ConfigError("give exactly one of --every and --cron")
    if every is not None:
        return IntervalTrigger(seconds=every.total_seconds(), timezone=timezone.utc)
    try:
        return CronTrigger.from_crontab(cron, timezone=timezone.utc)
    except ValueError as exc:
        raise ConfigError(f"cannot read the cron expression {cron!r}: {exc}") from exc


def _logged(name: str, job: Callable[[], object]) -> Callable[[], None]:
    """`job`, with any failure logged instead of raised (the next run tries again)."""

    def run() -> None:
        try:
            job()
        except Exception:  # noqa: BLE001 - a scheduler must outlive any one failure
            log.exception("%s failed; trying again at its next time", name)

    return run


def run_schedule(
    tick: Callable[[], object],
    every: Optional[timedelta] = None,
    cron: Optional[str] = None,
    max_runs: Optional[int] = None,
    run_now: bool = True,
    extra: Sequence[Tuple[str, Callable[[], object], object]] = (),
) -> int:
    """Call `tick` on the schedule until interrupted (or `max_runs` ticks have run); with an
    interval, the first tick runs at once when `run_now`. `extra`: more (name, job, trigger)
    on the same scheduler (the digest). Returns how many ticks failed."""
    trigger = make_trigger(every, cron)
    scheduler = BlockingScheduler(timezone=timezone.utc)
    state = {"runs": 0, "failed": 0}
    for name, job, when in extra:
        scheduler.add_job(_logged(name, job), when, id=name, max_instances=1, coalesce=True)
        log.info("scheduled %s: %s", name, when)

    def job() -> None:
        try:
            tick()
        except SegmentationError as exc:
            state["failed"] += 1
            log.error("refresh failed: %s; the current run stays; retrying at the next tick", exc)
        except Exception:  # noqa: BLE001 - a scheduler must outlive any one failure
            state["failed"] += 1
            log.exception("refresh failed; the current run stays; retrying at the next tick")
        finally:
            state["runs"] += 1
            if max_runs is not None and state["runs"] >= max_runs:
                scheduler.shutdown(wait=False)

    first = datetime.now(timezone.utc) if run_now and every is not None else None
    options = {"next_run_time": first} if first is not None else {}
    scheduler.add_job(
        job,
        trigger,
        id="refresh",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        **options,
    )
    log.info("scheduled refresh: %s", trigger)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("schedule stopped")
    return state["failed"]
