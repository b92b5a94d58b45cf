"""A segmentation run: features -> clusters -> user_segments + segment_profiles, all or nothing.

The run row is inserted first with status 'running'. Every user row, the profiles and the
switch to status 'complete' are then written in ONE transaction, so a crash or a kill part-way
leaves nothing of the new run visible and the previous complete run stays current. The next
build marks such an interrupted run 'failed'.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from segmentation.bulk import bulk_insert
from segmentation.clustering import ClusterSettings
from segmentation.cube import attribute_frame, cell_frame
from segmentation.db import begin, connect
from segmentation.engine import Clustering, cluster, make_engine
from segmentation.engine import Engine as ComputeEngine
from segmentation.errors import SegmentationError
from segmentation.features import FeatureFrame
from segmentation.progress import progress
from segmentation.schema import (
    SNAPSHOT_COLUMNS,
    segment_cells,
    segment_profiles,
    segmentation_runs,
    user_segments,
    users,
)
from segmentation.watermark import data_watermark

log = logging.getLogger(__name__)
WRITE_CHUNK_ROWS = 50_000


@dataclass
class BuildResult:
    run_id: int
    n_users: int
    sizes: Dict[str, int]
    metrics: Dict[str, float]
    seconds: Dict[str, float]


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def _start_run(engine: Engine, source: str, settings: ClusterSettings, extra: dict) -> int:
    with begin(engine) as conn:
        conn.execute(
            update(segmentation_runs)
            .where(segmentation_runs.c.status == "running")
            .values(status="failed", error="interrupted before it finished")
        )
        result = conn.execute(
            segmentation_runs.insert().values(
                created_at=utcnow(),
                source=source,
                algorithm=settings.algorithm,
                k=settings.k,
                params={**settings.as_dict(), **extra},
                status="running",
            )
        )
        return int(result.inserted_primary_key[0])


def _fail_run(engine: Engine, run_id: int, error: BaseException) -> None:
    try:
        with begin(engine) as conn:
            conn.execute(
                update(segmentation_runs)
                .where(segmentation_runs.c.id == run_id)
                .values(status="failed", error=str(error)[:2000], finished_at=utcnow())
            )
    except Exception:  # noqa: BLE001 - the original error matters more
        log.exception("could not mark run %s as failed", run_id)


def _stats(frame: pd.DataFrame) -> Dict[str, Dict[str, float]]:
    return {
        "means": {name: float(value) for name, value in frame.mean().items()},
        "medians": {name: float(value) for name, value in frame.median().items()},
    }


def profile_rows(run_id: int, features: FeatureFrame, clustering: Clustering) -> List[dict]:
    """One segment_profiles row per segment: size, share, score, means and medians."""
    total = len(features.frame)
    rows = []
    for rank, name in enumerate(clustering.model.names):
        members = features.frame[clustering.ranks == rank]
        stats = _stats(members) if len(members) else {"means": {}, "medians": {}}
        centre_score = float(np.array(clustering.model.centres[rank]) @ clustering.model.weights)
        rows.append(
            {
                "run_id": run_id,
                "segment": name,
                "rank": rank,
                "cluster": rank,
                "size": int(len(members)),
                "share": len(members) / total,
                "score": centre_score,
                "means": stats["means"],
                "medians": stats["medians"],
                "centre": dict(zip(clustering.model.features, clustering.model.centres[rank])),
            }
        )
    return rows


def read_attributes(engine: Engine) -> pd.DataFrame:
    """The users table's attributes, indexed by user_id (empty when none is loaded)."""
    with connect(engine) as conn:
        result = conn.execute(select(users.c.user_id, *(users.c[c] for c in SNAPSHOT_COLUMNS)))
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    return frame.set_index("user_id")


MAX_LISTED_VALUES = 1000


def present_attributes(attributes: pd.DataFrame) -> List[str]:
    """The attributes that at least one of the run's users has."""
    return [column for column in SNAPSHOT_COLUMNS if attributes[column].notna().any()]


def attribute_values(attributes: pd.DataFrame) -> Dict[str, List[str]]:
    """Each category attribute's distinct values (the run's vocabulary), when not too many."""
    values = {}
    for column in SNAPSHOT_COLUMNS:
        if column == "signup_date":
            continue
        distinct = attributes[column].dropna().astype(str).unique()
        if 0 < len(distinct) <= MAX_LISTED_VALUES:
            values[column] = sorted(distinct.tolist())
    return values


def _user_rows(
    run_id: int,
    features: FeatureFrame,
    clustering: Clustering,
    attributes: pd.DataFrame,
    start: int,
    stop: int,
) -> pd.DataFrame:
    """user_segments rows for users [start, stop): built per chunk to bound memory."""
    frame = features.frame.iloc[start:stop]
    snapshot = attributes.iloc[start:stop]
    rows = pd.DataFrame(
        {
            "run_id": run_id,
            "user_id": frame.index.astype(str),
            "cluster": clustering.ranks[start:stop].astype(int),
            "segment": clustering.segments[start:stop],
            "score": clustering.scores[start:stop].astype(float),
            "distance": clustering.distances[start:stop].astype(float),
            "features": frame.to_dict(orient="records"),
        }
    )
    for column in SNAPSHOT_COLUMNS:
        values = snapshot[column].to_numpy()
        rows[column] = values if column == "signup_date" else pd.Series(values, dtype=object)
    return rows


def _write_run(
    engine: Engine,
    run_id: int,
    features: FeatureFrame,
    clustering: Clustering,
    attributes: pd.DataFrame,
) -> None:
    total = len(features.frame)
    print(f"Writing run #{run_id}: {total:,} users", file=sys.stderr, flush=True)
    cells = cell_frame(run_id, features.frame, clustering.segments, attributes)
    with begin(engine) as conn:
        with progress(total=total, desc="write user_segments", unit="users") as bar:
            for start in range(0, total, WRITE_CHUNK_ROWS):
                stop = start + WRITE_CHUNK_ROWS
                chunk = _user_rows(run_id, features, clustering, attributes, start, stop)
                bulk_insert(conn, user_segments, chunk)
                bar.update(len(chunk))
        conn.execute(segment_profiles.insert(), profile_rows(run_id, features, clustering))
        if cells is not None:
            bulk_insert(conn, segment_cells, cells)
        done = conn.execute(
            update(segmentation_runs)
            .where(segmentation_runs.c.id == run_id, segmentation_runs.c.status == "running")
            .values(
                status="complete",
                finished_at=utcnow(),
                n_users=total,
                model=clustering.model.to_json(),
                metrics=clustering.metrics,
                overall=_stats(features.frame),
                data_as_of=features.data_as_of,
                params=_final_params(conn, run_id, attributes, cells is not None),
            )
        )
        if done.rowcount != 1:
            raise SegmentationError(f"run #{run_id} was marked failed by another build meanwhile")


def _final_params(conn, run_id: int, attributes: pd.DataFrame, has_cells: bool) -> dict:
    """The run's params with what was snapshotted: attributes present, cells written."""
    params = dict(
        conn.execute(
            select(segmentation_runs.c.params).where(segmentation_runs.c.id == run_id)
        ).scalar_one()
    )
    params["attributes"] = present_attributes(attributes)
    params["values"] = attribute_values(attributes)
    dates = attributes["signup_date"].dropna()
    if len(dates):
        params["signup_range"] = [str(dates.min().date()), str(dates.max().date())]
    params["cells"] = has_cells
    return params


def build_segments(
    engine: Engine,
    settings: Optional[ClusterSettings] = None,
    source: str = "events",
    features: Optional[Sequence[str]] = None,
    lower_is_better: Optional[Sequence[str]] = None,
    window: Optional[timedelta] = None,
    compute: Optional[ComputeEngine] = None,
) -> BuildResult:
    """Run a full segmentation with the `compute` engine (scikit-learn unless given) and make
    it current once every row is written. The run's params record the engine, the settings,
    the data's watermark and the `window`, for `refresh`."""
    settings = settings or ClusterSettings()
    compute = compute or make_engine()
    timings: Dict[str, float] = {}
    started = time.perf_counter()
    mark = data_watermark(engine, source)  # before reading: a load meanwhile means "new" later
    feature_frame = compute.aggregate(engine, source, features, lower_is_better, window)
    extra = {
        "features": [spec.name for spec in feature_frame.specs],
        "lower_is_better": [spec.name for spec in feature_frame.specs if spec.lower_is_better],
        "labels": {spec.name: spec.label for spec in feature_frame.specs},
        "units": {spec.name: spec.unit for spec in feature_frame.specs},
        "aliases": {spec.name: list(spec.aliases) for spec in feature_frame.specs if spec.aliases},
        "source_detail": feature_frame.detail or {},
        "watermark": mark,
        "settings": asdict(settings),
        "engine": compute.name,
    }
    if window is not None:
        extra["window_days"] = window.total_seconds() / 86400
    attributes = attribute_frame(read_attributes(engine), feature_frame.frame.index)
    timings["aggregate"] = time.perf_counter() - started
    run_id = _start_run(engine, feature_frame.source, settings, extra)
    try:
        step = time.perf_counter()
        clustering = cluster(compute, feature_frame, settings)
        timings["cluster"] = time.perf_counter() - step
        step = time.perf_counter()
        _write_run(engine, run_id, feature_frame, clustering, attributes)
        timings["write"] = time.perf_counter() - step
    except BaseException as exc:
        _fail_run(engine, run_id, exc)
        raise
    timings["total"] = time.perf_counter() - started
    timings.update({f"{compute.name} {k}": v for k, v in getattr(compute, "timings", {}).items()})
    sizes = {
        name: int((clustering.ranks == rank).sum())
        for rank, name in enumerate(clustering.model.names)
    }
    return BuildResult(run_id, len(feature_frame.frame), sizes, clustering.metrics, timings)
