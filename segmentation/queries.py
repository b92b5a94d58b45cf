"""The query layer: the only way the chatbot (and the CLI) reads segments.

One class, `SegmentQueries`: the run queries of `segmentation.runs.RunQueries` (current and
earlier runs, migrations between them) plus the segment and user questions. Its engine is
created lazily on first use. Every query uses bound parameters; every result carries the run
it came from.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from segmentation.answering import Answers, UnknownUser
from segmentation.model import SegmentModel
from segmentation.results import (
    FeatureComparison,
    Overview,
    RunInfo,
    SegmentSummary,
    UserSegment,
)
from segmentation.runs import RunQueries
from segmentation.schema import (
    segment_profiles,
    segmentation_runs,
    user_segments,
)


def _matrix(model: SegmentModel, feature_dicts: List[dict]) -> np.ndarray:
    """Users' stored features as a matrix in the model's feature order."""
    return np.array(
        [[features.get(name, 0.0) for name in model.features] for features in feature_dicts],
        dtype=float,
    ).reshape(len(feature_dicts), len(model.features))


class SegmentQueries(Answers, RunQueries):
    """Answers about segments and users, read from the database named by `url` (or DATABASE_URL)."""

    # --- segments ---------------------------------------------------------------------------
    def _summaries(self, conn: Connection, run: RunInfo) -> List[SegmentSummary]:
        rows = conn.execute(
            select(segment_profiles)
            .where(segment_profiles.c.run_id == run.id)
            .order_by(segment_profiles.c.rank)
        ).all()
        return [
            SegmentSummary(r.segment, r.rank, r.size, r.share, r.score, r.means, r.medians)
            for r in rows
        ]

    def _overall(self, conn: Connection, run: RunInfo) -> Dict[str, float]:
        overall = conn.execute(
            select(segmentation_runs.c.overall).where(segmentation_runs.c.id == run.id)
        ).scalar_one()
        return (overall or {}).get("means", {})

    def overview(self) -> Overview:
        """Every segment's size, share and averages, with the overall averages."""
        with self.connection() as conn:
            run = self.current_run()
            segments = self._summaries(conn, run)
            overall = self._overall(conn, run)
        return Overview(run, sum(s.size for s in segments), segments, overall)

    def _compare(self, run: RunInfo, values: Dict[str, float], reference: Dict[str, float]):
        comparisons = [
            FeatureComparison(
                feature,
                run.feature_label(feature),
                run.feature_unit(feature),
                float(values.get(feature, 0.0)),
                float(reference.get(feature, 0.0)),
                run.lower_is_better(feature),
            )
            for feature in run.features
            if feature in values and (values.get(feature, 0.0) or reference.get(feature, 0.0))
        ]

        def difference(item: FeatureComparison) -> float:
            scale = max(abs(item.reference), abs(item.value), 1e-9)
            return abs(item.value - item.reference) / scale

        return sorted(comparisons, key=difference, reverse=True)

    # --- users ------------------------------------------------------------------------------
    def _user_row(self, conn: Connection, run_id: int, user_id: str):
        return conn.execute(
            select(user_segments).where(
                user_segments.c.run_id == run_id, user_segments.c.user_id == user_id
            )
        ).first()

    def user_segment(self, user_id: str) -> UserSegment:
        """A user's segment, their features against the segment average, the distance to each
        centre (the "why"), and their segment in the previous run."""
        user_id = str(user_id).strip()
        with self.connection() as conn:
            run = self.current_run()
            previous = self.previous_run(run)
            row = self._user_row(conn, run.id, user_id)
            if row is None:
                raise UnknownUser(f"user {user_id} is not in {run.label} ({run.n_users:,} users)")
            model = self._model(conn, run)
            summaries = {s.name: s for s in self._summaries(conn, run)}
            before = self._user_row(conn, previous.id, user_id) if previous else None
        scaled = model.transform(_matrix(model, [row.features]))
        distances = model.distances(scaled)[0]
        ranked = sorted(zip(model.names, distances.tolist()), key=lambda item: item[1])
        features = self._compare(run, row.features, summaries[row.segment].means)
        changes = []
        if before is not None:
            shift = scaled[0] - model.transform(_matrix(model, [before.features]))[0]
            moves = sorted(zip(model.features, shift), key=lambda item: -abs(item[1]))
            changes = [
                item
                for feature, step in moves
                if abs(step) >= 0.1
                for item in self._compare(run, {feature: row.features.get(feature, 0.0)},
                                          {feature: before.features.get(feature, 0.0)})
            ]  # fmt: skip
        return UserSegment(
            run,
            user_id,
            row.segment,
            row.score,
            features,
            ranked,
            previous if before is not None else None,
            before.segment if before is not None else None,
            changes,
        )

    def _model(self, conn: Connection, run: RunInfo) -> SegmentModel:
        return SegmentModel.from_json(
            conn.execute(
                select(segmentation_runs.c.model).where(segmentation_runs.c.id == run.id)
            ).scalar_one()
        )

    def sample_scaled_users(self, size: int = 5000) -> Tuple[np.ndarray, List[str]]:
        """A random sample of the current run's users in the clustering space, with segments."""
        with self.connection() as conn:
            run = self.current_run()
            model = self._model(conn, run)
            rows = conn.execute(
                select(user_segments.c.features, user_segments.c.segment)
                .where(user_segments.c.run_id == run.id)
                .order_by(func.random())
                .limit(size)
            ).all()
        values = model.transform(_matrix(model, [row.features for row in rows]))
        return values, [row.segment for row in rows]
