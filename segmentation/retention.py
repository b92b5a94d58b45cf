"""Retention: old runs lose their per-user rows, keep what trends need.

`prune_runs(engine, keep)` deletes the `user_segments` rows of every complete run but the
newest `keep` (never fewer than two: the current and the previous run are always kept whole),
in one transaction. Their `segmentation_runs` row, `segment_profiles` (sizes, shares, means)
and `segment_cells` (filtered counts and sums) stay, so trends and sizes over time still
answer; the run's params get `"pruned": true`. Failed runs' leftover rows go too.
"""

from __future__ import annotations

from typing import List

from sqlalchemy import desc, select, update

from segmentation.db import begin
from segmentation.errors import ConfigError
from segmentation.schema import segmentation_runs, user_segments

DEFAULT_KEEP_RUNS = 30
MIN_KEEP_RUNS = 2  # the current run and the previous one ("what changed")


def prune_runs(engine, keep: int = DEFAULT_KEEP_RUNS) -> List[int]:
    """Delete the user rows of complete runs older than the newest `keep` (at least 2) and of
    failed runs; returns the ids of the complete runs pruned now."""
    if keep < MIN_KEEP_RUNS:
        raise ConfigError(
            f"--keep-runs must be at least {MIN_KEEP_RUNS}: the current and the previous run "
            "are always kept"
        )
    runs = segmentation_runs.c
    with begin(engine) as conn:
        complete = conn.execute(
            select(runs.id, runs.params).where(runs.status == "complete").order_by(desc(runs.id))
        ).all()
        old = [row for row in complete[keep:] if not (row.params or {}).get("pruned")]
        failed = conn.execute(select(runs.id).where(runs.status == "failed")).scalars().all()
        doomed = [row.id for row in old] + list(failed)
        if doomed:
            conn.execute(user_segments.delete().where(user_segments.c.run_id.in_(doomed)))
        for row in old:
            params = dict(row.params or {})
            params["pruned"] = True
            conn.execute(update(segmentation_runs).where(runs.id == row.id).values(params=params))
    return [row.id for row in old]
