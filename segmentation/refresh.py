"""`refresh`: a new run only when the data changed since the current run, with its settings.

The current run's params hold the watermark of the data it was built from
(segmentation.watermark); refresh reads the data's watermark now and builds only when they
differ (or when forced, or when the window asked for differs from the run's). It runs under the
database's refresh lock (segmentation.locking), so two refreshes never overlap, and then applies
retention (segmentation.retention) and delivers alerts (segmentation.alerts) for the current run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, List, Optional

from sqlalchemy.engine import Engine

from segmentation.build import BuildResult, build_segments
from segmentation.clustering import ClusterSettings
from segmentation.errors import ConfigError, NoDataError
from segmentation.locking import refresh_lock
from segmentation.results import RunInfo
from segmentation.retention import DEFAULT_KEEP_RUNS, prune_runs
from segmentation.runs import RunQueries
from segmentation.watermark import data_watermark, run_watermark

WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
UNCHANGED = object()  # refresh's window: keep the current run's


def parse_duration(text: str) -> timedelta:
    """ "30d", "12h", "90m", "45s", "2w" -> a timedelta (ConfigError otherwise)."""
    match = WINDOW.match(text or "")
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"cannot read the duration {text!r}: write e.g. 30d, 12h, 90m or 2w")
    return timedelta(**{UNITS[match.group(2).lower()]: float(match.group(1))})


def describe_window(window: Optional[timedelta]) -> str:
    """ "the last 30 days of events" / "all events"."""
    if window is None:
        return "all events"
    days = window.total_seconds() / 86400
    return f"the last {days:g} days of events"


@dataclass
class RefreshResult:
    """What a refresh did: the run built (None when nothing was new), why, and what it pruned."""

    current: RunInfo
    built: Optional[BuildResult]
    reason: str
    pruned: List[int] = field(default_factory=list)
    after: object = None  # what the `after` hook returned (alerts delivered)


def settings_of(run: RunInfo) -> ClusterSettings:
    """The cluster settings a run was built with (all of them when the run recorded them)."""
    stored = run.params.get("settings")
    if isinstance(stored, dict):
        return ClusterSettings(**stored)
    keys = ("k", "algorithm", "n_init", "random_state", "outliers", "names")
    return ClusterSettings(**{k: run.params[k] for k in keys if k in run.params})


def run_window(run: RunInfo) -> Optional[timedelta]:
    """The window a run counted events in (None: all events)."""
    days = run.params.get("window_days")
    return None if days is None else timedelta(days=float(days))


def engine_of(run: RunInfo):
    """The engine that built `run`, with its Spark master and event files (None: the default
    scikit-learn engine)."""
    if run.params.get("engine") != "spark":
        return None
    from segmentation.engine import make_engine

    detail = run.params.get("source_detail") or {}
    files = [f"{table}={path}" for table, path in (detail.get("files") or {}).items()]
    return make_engine("spark", master=detail.get("master"), event_files=files)


def why_build(run: RunInfo, engine: Engine, window, force: bool) -> Optional[str]:
    """Why `run` is out of date ("" / None when it is not)."""
    if force:
        return "forced"
    if window is not UNCHANGED and window != run_window(run):
        return f"the window changed to {describe_window(window)}"
    recorded = run_watermark(run.params)
    if recorded is None:
        return f"run #{run.id} recorded no watermark of its data"
    if recorded != data_watermark(engine, run.source):
        return f"the data changed since run #{run.id}"
    return None


def refresh(
    engine: Engine,
    force: bool = False,
    wait: float = 0.0,
    keep_runs: int = DEFAULT_KEEP_RUNS,
    window=UNCHANGED,
    after: Optional[Callable[[Engine], object]] = None,
    compute=None,
) -> RefreshResult:
    """Build a new run when the data changed since the current run (or `force`), with its
    settings and on the engine that built it (unless `compute` is given), under the refresh
    lock; then prune old runs' user rows and call `after` (alerts) with the lock still held.
    Without any run yet, builds one with the defaults."""
    with refresh_lock(engine, wait):
        queries = RunQueries(engine=engine)
        try:
            current: Optional[RunInfo] = queries.current_run()
        except NoDataError:
            current = None
        if current is None:
            reason = "there is no run yet"
            built = build_segments(
                engine, window=None if window is UNCHANGED else window, compute=compute
            )
        else:
            reason = why_build(current, engine, window, force)
            built = None
            if reason:
                source = current.source
                made = None if compute else engine_of(current)
                try:
                    built = build_segments(
                        engine,
                        settings_of(current),
                        source=source,
                        features=current.features or None,
                        lower_is_better=(
                            current.params.get("lower_is_better", [])
                            if source.startswith("features:")
                            else None
                        ),
                        window=run_window(current) if window is UNCHANGED else window,
                        compute=compute or made,
                    )
                finally:
                    if made is not None:
                        made.stop()
        result = RefreshResult(queries.current_run(), built, reason or "nothing new")
        result.pruned = prune_runs(engine, keep_runs)
        if after is not None:
            result.after = after(engine)
    return result
