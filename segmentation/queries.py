"""The query layer: the only way the chatbot (and the CLI) reads segments.

One class, `SegmentQueries`: the run queries of `segmentation.runs.RunQueries` (current and
earlier runs, migrations between them) plus the segment and user questions. Its engine is
created lazily on first use. Every query uses bound parameters; every result carries the run
it came from.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
from sqlalchemy import desc, func, select
from sqlalchemy.engine import Connection

from segmentation.clustering import STANDARD_NAMES, SegmentModel
from segmentation.errors import NoDataError
from segmentation.results import (
    Breakdown,
    FeatureComparison,
    Member,
    Members,
    MetricBySegment,
    Overview,
    RunInfo,
    SegmentComparison,
    SegmentProfile,
    SegmentSize,
    SegmentSummary,
    UserSegment,
)
from segmentation.runs import RunQueries
from segmentation.schema import (
    segment_profiles,
    segmentation_runs,
    user_segments,
    users,
)

DIMENSIONS = ("country", "device", "plan")
# Standard names and short words, mapped to a tier (least, middle, most engaged).
TIER_WORDS = {
    **dict(zip((n.lower() for n in STANDARD_NAMES[3]), ("low", "moderate", "high"))),
    "low": "low",
    "moderate": "moderate",
    "medium": "moderate",
    "high": "high",
}
MAX_PAGE = 100


class UnknownSegment(NoDataError):
    """A segment name that the run does not have."""


class UnknownUser(NoDataError):
    """A user id that the run does not have."""


def _matrix(model: SegmentModel, feature_dicts: List[dict]) -> np.ndarray:
    """Users' stored features as a matrix in the model's feature order."""
    return np.array(
        [[features.get(name, 0.0) for name in model.features] for features in feature_dicts],
        dtype=float,
    ).reshape(len(feature_dicts), len(model.features))


class SegmentQueries(RunQueries):
    """Answers about segments and users, read from the database named by `url` (or DATABASE_URL)."""

    # --- segments ---------------------------------------------------------------------------
    def resolve_segment(self, run: RunInfo, name: str) -> str:
        """The run's segment called `name` (case-insensitive), or the one at the same tier as a
        standard name ("Low Engagement" = least engaged, "Highly Engaged" = most)."""
        wanted = name.strip().lower()
        for segment in run.segment_names:
            if segment.lower() == wanted:
                return segment
        names, k = run.segment_names, len(run.segment_names)
        tier = TIER_WORDS.get(wanted)
        if tier == "low":
            return names[0]
        if tier == "high":
            return names[-1]
        if tier == "moderate" and k % 2 == 1:
            return names[k // 2]
        raise UnknownSegment(
            f"{run.label} has no segment '{name}'; its segments are " + ", ".join(run.segment_names)
        )

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

    def _summary(self, overview: Overview, name: str) -> SegmentSummary:
        segment = self.resolve_segment(overview.run, name)
        return next(s for s in overview.segments if s.name == segment)

    def segment_size(self, name: str) -> SegmentSize:
        overview = self.overview()
        summary = self._summary(overview, name)
        return SegmentSize(
            overview.run, summary.name, summary.size, summary.share, overview.total_users
        )

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
            if values.get(feature, 0.0) or reference.get(feature, 0.0)
        ]

        def difference(item: FeatureComparison) -> float:
            scale = max(abs(item.reference), abs(item.value), 1e-9)
            return abs(item.value - item.reference) / scale

        return sorted(comparisons, key=difference, reverse=True)

    def segment_profile(self, name: str) -> SegmentProfile:
        """A segment's averages against the overall averages, biggest differences first."""
        overview = self.overview()
        summary = self._summary(overview, name)
        features = self._compare(overview.run, summary.means, overview.overall_means)
        return SegmentProfile(overview.run, summary, features)

    def compare_segments(self, first: str, second: str) -> SegmentComparison:
        """Two segments' averages side by side."""
        overview = self.overview()
        a, b = self._summary(overview, first), self._summary(overview, second)
        return SegmentComparison(overview.run, a, b, self._compare(overview.run, a.means, b.means))

    def metric_by_segment(self, feature: str) -> MetricBySegment:
        """One feature's mean and median in every segment."""
        overview = self.overview()
        run = overview.run
        if feature not in run.features:
            raise NoDataError(
                f"{run.label} has no feature '{feature}'; it has {', '.join(run.features)}"
            )
        return MetricBySegment(
            run,
            feature,
            run.feature_label(feature),
            run.feature_unit(feature),
            run.lower_is_better(feature),
            {s.name: s.means.get(feature, 0.0) for s in overview.segments},
            {s.name: s.medians.get(feature, 0.0) for s in overview.segments},
            overview.overall_means.get(feature, 0.0),
        )

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
        distances = model.distances(model.transform(_matrix(model, [row.features])))[0]
        ranked = sorted(zip(model.names, distances.tolist()), key=lambda item: item[1])
        features = self._compare(run, row.features, summaries[row.segment].means)
        return UserSegment(
            run,
            user_id,
            row.segment,
            row.score,
            features,
            ranked,
            previous if before is not None else None,
            before.segment if before is not None else None,
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

    def top_members(
        self, name: str, limit: int = 10, offset: int = 0, order: str = "most"
    ) -> Members:
        """A page of a segment's users, most (or least) engaged first, with the total count."""
        limit = max(1, min(int(limit), MAX_PAGE))
        offset = max(0, int(offset))
        score = user_segments.c.score
        ordering = (desc(score), desc(user_segments.c.user_id))
        if order == "least":
            ordering = (score, user_segments.c.user_id)
        with self.connection() as conn:
            run = self.current_run()
            segment = self.resolve_segment(run, name)
            where = (user_segments.c.run_id == run.id, user_segments.c.segment == segment)
            total = conn.execute(
                select(segment_profiles.c.size).where(
                    segment_profiles.c.run_id == run.id, segment_profiles.c.segment == segment
                )
            ).scalar_one()
            rows = conn.execute(
                select(user_segments.c.user_id, score, user_segments.c.features)
                .where(*where)
                .order_by(*ordering)
                .limit(limit)
                .offset(offset)
            ).all()
        members = [Member(r.user_id, r.score, r.features) for r in rows]
        return Members(run, segment, total, offset, order, members)

    def breakdown(self, name: str, dimension: str, value: Optional[str] = None) -> Breakdown:
        """A segment's users counted by country, device or plan (from the users table)."""
        if dimension not in DIMENSIONS:
            raise NoDataError(f"cannot break down by '{dimension}': use {', '.join(DIMENSIONS)}")
        column = users.c[dimension]
        label = func.coalesce(column, "unknown")
        with self.connection() as conn:
            run = self.current_run()
            segment = self.resolve_segment(run, name)
            if conn.execute(select(func.count()).select_from(users)).scalar_one() == 0:
                raise NoDataError(
                    "no users table is loaded, so there is no country, device or plan to break "
                    "down by; load one with `python -m segmentation ingest users FILE`"
                )
            rows = conn.execute(
                select(label.label("value"), func.count().label("n"))
                .select_from(
                    user_segments.outerjoin(users, users.c.user_id == user_segments.c.user_id)
                )
                .where(user_segments.c.run_id == run.id, user_segments.c.segment == segment)
                .group_by(label)
                .order_by(desc("n"), label)
            ).all()
        counts = [(str(r.value), int(r.n)) for r in rows]
        size = sum(n for _, n in counts)
        matched: Tuple[Optional[str], Optional[int]] = (None, None)
        if value is not None:
            wanted = value.strip().lower()
            hits = [(v, n) for v, n in counts if v.lower() == wanted]
            matched = hits[0] if hits else (value, 0)
        return Breakdown(run, segment, dimension, size, counts, matched[0], matched[1])

    def dimension_values(self, dimension: str) -> List[str]:
        """The distinct values of a users-table column (for matching "iOS", "premium"...)."""
        if dimension not in DIMENSIONS:
            return []
        with self.connection() as conn:
            column = users.c[dimension]
            return [
                v
                for v in conn.execute(select(column).distinct().where(column.isnot(None))).scalars()
            ]
