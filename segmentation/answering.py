"""Running a `Query`: one structured question -> one result object, read in one snapshot.

`Answers` is mixed into `SegmentQueries`; `answer(query)` dispatches on the measure. Counts,
shares and statistics come from `segmentation.aggregate.cell_stats` (exact sums over the
run's cells, or over its users' rows); medians and lists read the users' rows. Every result
carries its run and the query it answers, so the reply can say what it counted.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, List, Optional, Sequence, Tuple

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from segmentation import aggregate
from segmentation.attributes import ATTRIBUTES
from segmentation.errors import NoDataError
from segmentation.export_files import new_export
from segmentation.query import STAT_MEASURES, Query
from segmentation.results import (
    DataInfo,
    Exported,
    Group,
    Measured,
    Member,
    Members,
    Overview,
    RunInfo,
    SegmentComparison,
    SegmentProfile,
    SegmentSummary,
    Trend,
)
from segmentation.schema import segment_profiles, user_segments

MAX_PAGE = 100
MAX_TREND_RUNS = 20


class UnknownSegment(NoDataError):
    """A segment name that the run does not have."""


class UnknownUser(NoDataError):
    """A user id that the run does not have."""


class CannotApply(NoDataError):
    """A part of the question that this run's data can't answer (named in the message)."""


class Answers:
    """`answer(query)` and the measures behind it (mixed into SegmentQueries)."""

    # --- the run and its vocabulary ----------------------------------------------------------
    def resolve_run(self, ref) -> RunInfo:
        """The run a query is about: current (None), "previous", or a run id."""
        current = self.current_run()
        if ref in (None, "current", "all"):
            return current
        if ref == "previous":
            previous = self.previous_run(current)
            if previous is None:
                raise NoDataError(
                    f"{current.label} is the only run so far: there is no previous run"
                )
            return previous
        return self.run(int(ref))

    @staticmethod
    def check(run: RunInfo, query: Query) -> None:
        """Every segment, feature and attribute of the query exists in the run."""
        for name in query.segments:
            if name not in run.segment_names:
                raise UnknownSegment(
                    f"{run.label} has no segment '{name}'; its segments are "
                    + ", ".join(run.segment_names)
                )
        for feature in query.features:
            if feature not in run.features:
                raise CannotApply(
                    f"{run.label} has no feature '{feature}'; it has "
                    + ", ".join(run.feature_label(f) for f in run.features)
                )
        present = run.params.get("attributes", [])
        for f in query.filters:
            if f.attribute not in present:
                raise CannotApply(no_attribute_message(run, f.attribute))
        for key in query.group_by:
            attribute = "signup_date" if key.startswith("signup_") else key
            if key != "segment" and attribute not in present:
                raise CannotApply(no_attribute_message(run, attribute))

    @staticmethod
    def stored_values(run: RunInfo, query: Query) -> Query:
        """Filter values as the data spells them ("ios" -> "iOS", "DE " -> "DE"), so every
        database matches the same users; a value no user has is refused, naming the values."""
        known = run.params.get("values", {})
        filters = []
        for f in query.filters:
            values = known.get(f.attribute)
            if not f.values or values is None:
                filters.append(f)
                continue
            by_key = {v.strip().casefold(): v for v in values}
            spelled = []
            for value in f.values:
                found = by_key.get(str(value).strip().casefold())
                if found is None:
                    label = (
                        ATTRIBUTES[f.attribute].label if f.attribute in ATTRIBUTES else f.attribute
                    )
                    raise CannotApply(
                        f"no user of {run.label} has {label} '{value}'; the values are "
                        + ", ".join(values[:30])
                    )
                spelled.append(found)
            filters.append(replace(f, values=tuple(spelled)))
        return query.with_(filters=tuple(filters))

    def answer(self, query: Query):
        """The result object for `query` (see segmentation.query for the measures), read
        through one connection."""
        with self.connection():
            return self._answer(query)

    def _answer(self, query: Query):
        if query.filters and query.measure not in ("trend",):
            query = self.stored_values(self.resolve_run(query.run), query)
        handlers = {
            "count": self.measured,
            "share": self.measured,
            "overview": self.filtered_overview,
            "profile": self.filtered_profile,
            "advice": self.filtered_profile,
            "compare": self.filtered_comparison,
            "list": self.members_page,
            "trend": self.trend,
            "data_info": self.data_info,
        }
        if query.export:
            return self.exported(query)
        if query.measure in STAT_MEASURES:
            return self.measured(query)
        if query.measure in handlers:
            return handlers[query.measure](query)
        if query.measure == "user":
            return self.user_segment(query.user_id)
        if query.measure == "changes":
            target = (
                None if query.run in (None, "current", "all") else self.resolve_run(query.run).id
            )
            return self.migration(to_run=target)
        return self.resolve_run(query.run)  # run_info, quality

    # --- counts, shares and statistics -------------------------------------------------------
    def measured(self, query: Query) -> Measured:
        """Users (and a statistic of one feature) per group, with their references."""
        with self.connection() as conn:
            run = self.resolve_run(query.run)
            self.check(run, query)
            asked = list(query.segments) or list(run.segment_names)
            keys = [k for k in query.group_by if k != "segment"]
            stat = query.measure if query.measure in STAT_MEASURES else None
            feature = query.feature if stat else None
            cells = aggregate.cell_stats(conn, run, feature, query.filters, keys)
            sizes = self._sizes(conn, run)
            groups, total, population = _group(cells, query, asked, keys, stat)
            if stat == "median":
                groups, total, population = self._medians(
                    conn, run, query, asked, keys, groups, total, population
                )
        if "segment" in query.group_by:
            groups = _complete_segments(groups, query, asked, population.n)
        return Measured(run, query, groups, total, population, {s: sizes[s] for s in asked})

    def _sizes(self, conn: Connection, run: RunInfo) -> Dict[str, int]:
        rows = conn.execute(
            select(segment_profiles.c.segment, segment_profiles.c.size).where(
                segment_profiles.c.run_id == run.id
            )
        ).all()
        return {segment: int(size) for segment, size in rows}

    def _medians(self, conn, run, query, asked, keys, groups, total, population):
        feature = query.feature

        def median_of(segments: Sequence[str], key: Tuple = ()) -> Optional[float]:
            conditions = []
            for name, value in zip(query.group_by, key):
                if name == "segment":
                    segments = [value]
                else:
                    conditions.append(aggregate.group_condition(conn, name, value))
            return aggregate.median(conn, run, feature, query.filters, segments, conditions)[1]

        groups = [_with_value(g, median_of(asked, g.key)) for g in groups]
        total = _with_value(total, median_of(asked))
        population = _with_value(population, median_of(()))
        return groups, total, population

    # --- profiles, comparisons, overview -----------------------------------------------------
    def _filtered_summaries(self, conn, run, query: Query):
        """Per segment and overall: users and means of every feature, under the filters."""
        means: Dict[str, Dict[str, float]] = {}
        counts: Dict[str, int] = {name: 0 for name in run.segment_names}
        totals: Dict[str, float] = {}
        overall_n = 0
        for feature in run.features:
            cells = aggregate.cell_stats(conn, run, feature, query.filters)
            for cell in cells:
                means.setdefault(cell.segment, {})[feature] = cell.total / cell.n if cell.n else 0.0
                counts[cell.segment] = cell.n
                totals[feature] = totals.get(feature, 0.0) + cell.total
            overall_n = sum(cell.n for cell in cells)
        population = sum(counts.values())
        summaries = [
            SegmentSummary(
                name,
                rank,
                counts[name],
                counts[name] / population if population else 0.0,
                0.0,
                means.get(name, {}),
                {},
            )
            for rank, name in enumerate(run.segment_names)
        ]
        overall = {f: totals.get(f, 0.0) / overall_n for f in run.features} if overall_n else {}
        return summaries, overall, population

    def _summaries_for(self, query: Query):
        with self.connection() as conn:
            run = self.resolve_run(query.run)
            self.check(run, query)
            if not query.filters:
                overview = self._overview(conn, run)
                return run, overview.segments, overview.overall_means, overview.total_users
            summaries, overall, population = self._filtered_summaries(conn, run, query)
        return run, summaries, overall, population

    def _overview(self, conn, run: RunInfo) -> Overview:
        segments = self._summaries(conn, run)
        return Overview(run, sum(s.size for s in segments), segments, self._overall(conn, run))

    def filtered_overview(self, query: Query) -> Overview:
        """Every segment's users and averages under the query's filters."""
        run, summaries, overall, population = self._summaries_for(query)
        return Overview(run, population, summaries, overall, query)

    def filtered_profile(self, query: Query) -> SegmentProfile:
        """A segment's averages against all users (both under the filters)."""
        if not query.segments:
            raise NoDataError("which segment? Name one of the run's segments")
        run, summaries, overall, _ = self._summaries_for(query)
        summary = next(s for s in summaries if s.name == query.segments[0])
        features = self._compare(run, _asked(summary.means, query), overall)
        return SegmentProfile(run, summary, features, query)

    def filtered_comparison(self, query: Query) -> SegmentComparison:
        """Two segments' averages side by side (under the filters)."""
        if len(query.segments) < 2:
            raise NoDataError("compare which two segments?")
        run, summaries, _, _ = self._summaries_for(query)
        by_name = {s.name: s for s in summaries}
        a, b = by_name[query.segments[0]], by_name[query.segments[1]]
        features = self._compare(run, _asked(a.means, query), b.means)
        return SegmentComparison(run, a, b, features, query)

    # --- users -------------------------------------------------------------------------------
    def members_page(self, query: Query) -> Members:
        """A page of the asked users, by engagement score or by a feature."""
        limit = max(1, min(int(query.limit), MAX_PAGE))
        offset = max(0, int(query.offset))
        with self.connection() as conn:
            run = self.resolve_run(query.run)
            self.check(run, query)
            total, rows = aggregate.members(
                conn,
                run,
                query.filters,
                query.segments,
                query.feature,
                query.order,
                limit,
                offset,
            )
        members = [
            Member(
                r.user_id,
                r.score,
                r.features,
                r.segment,
                {c: getattr(r, c) for c in aggregate.CATEGORY_KEYS},
            )
            for r in rows
        ]
        label = ", ".join(query.segments) if query.segments else "all segments"
        return Members(run, label, total, offset, query.order, members, query)

    def exported(self, query: Query) -> Exported:
        """Every user a list question asks for, as a CSV file in the exports folder (it
        appears only once complete)."""
        from segmentation.export import export_to_path  # imports this layer's class

        run = self.resolve_run(query.run)
        path = new_export()
        rows = export_to_path(self, query, path)
        return Exported(run, rows, path.name, str(path), query)

    # --- runs and data -----------------------------------------------------------------------
    def trend(self, query: Query) -> Trend:
        """Users per segment in each of the last runs (oldest first), under the filters."""
        runs = list(reversed(self.runs(MAX_TREND_RUNS)))
        if not runs:
            raise NoDataError("there is no segmentation run yet")
        sizes: Dict[int, Dict[str, int]] = {}
        skipped: List[RunInfo] = []
        with self.connection() as conn:
            for run in runs:
                if query.filters:
                    try:
                        plain = query.with_(segments=(), features=(), group_by=())
                        self.check(run, plain)
                        filters = self.stored_values(run, plain).filters
                    except CannotApply:
                        skipped.append(run)  # this run's users have no such attribute
                        continue
                    cells = aggregate.cell_stats(conn, run, None, filters)
                    counts = {}
                    for cell in cells:
                        counts[cell.segment] = counts.get(cell.segment, 0) + cell.n
                else:
                    counts = self._sizes(conn, run)
                sizes[run.id] = {name: counts.get(name, 0) for name in run.segment_names}
        totals = {run_id: sum(by.values()) for run_id, by in sizes.items()}
        kept = [run for run in runs if run.id in sizes]
        if not kept:
            raise CannotApply(f"no run can apply {', '.join(f.said for f in query.filters)}")
        return Trend(kept, sizes, totals, query, skipped)

    def data_info(self, query: Query) -> DataInfo:
        """The run's features and, for each attribute its users have, the values and counts."""
        with self.connection() as conn:
            run = self.resolve_run(query.run)
            asked = query.group_by[0] if query.group_by else None
            attributes = {}
            for name in run.params.get("attributes", []):
                if ATTRIBUTES[name].kind != "category":
                    continue
                column = user_segments.c[name]
                rows = conn.execute(
                    select(column, func.count())
                    .where(user_segments.c.run_id == run.id)
                    .group_by(column)
                    .order_by(func.count().desc())
                ).all()
                attributes[name] = [(value, int(n)) for value, n in rows]
        features = [(f, run.feature_label(f)) for f in run.features]
        return DataInfo(run, features, attributes, asked)


def no_attribute_message(run: RunInfo, attribute: str) -> str:
    """Why a filter on `attribute` can't be applied to `run`, and what can be."""
    label = ATTRIBUTES[attribute].label if attribute in ATTRIBUTES else attribute
    present = [ATTRIBUTES[a].label for a in run.params.get("attributes", []) if a in ATTRIBUTES]
    if not run.params.get("attributes") and "attributes" not in run.params:
        return (
            f"{run.label} was built before user attributes were kept with each run, so it has "
            f"no {label}; build a new run to filter by {label}"
        )
    if not present:
        return (
            f"this data has no {label}: no users table was loaded for {run.label}, so I can "
            "only count and measure by segment"
        )
    return f"this data has no {label}; I can filter by {', '.join(present)}"


# --- grouping ---------------------------------------------------------------------------------
def _group(cells, query: Query, asked, keys, stat) -> Tuple[List[Group], Group, Group]:
    """Cells (per segment and key values, every segment) -> the query's groups, the total of
    the asked segments, and the population (every segment)."""
    asked_set = set(asked)
    per_group: Dict[Tuple, List[aggregate.CellRow]] = {}
    base: Dict[Tuple, int] = {}
    for cell in cells:
        by_keys = cell.keys
        base[by_keys] = base.get(by_keys, 0) + cell.n
        if cell.segment not in asked_set:
            continue
        key = tuple(
            cell.segment if name == "segment" else cell.keys[keys.index(name)]
            for name in query.group_by
        )
        per_group.setdefault(key, []).append(cell)
    groups = []
    for key, parts in per_group.items():
        merged = aggregate.combine(parts)
        attribute_key = tuple(v for name, v in zip(query.group_by, key) if name != "segment")
        groups.append(
            Group(key, merged.n, _value(merged, stat), base.get(attribute_key, 0) if keys else 0)
        )
    if keys and "segment" not in query.group_by:  # values with none of the asked users: 0
        present = {g.key for g in groups}
        groups += [Group(key, 0, None, n) for key, n in base.items() if key not in present]
    if not query.group_by and not groups:
        groups = [Group((), 0, None, 0)]
    asked_cells = aggregate.combine([c for c in cells if c.segment in asked_set])
    all_cells = aggregate.combine(cells)
    total = Group((), asked_cells.n, _value(asked_cells, stat), all_cells.n)
    population = Group((), all_cells.n, _value(all_cells, stat), all_cells.n)
    if not keys:
        groups = [Group(g.key, g.n, g.value, all_cells.n) for g in groups]
    return groups, total, population


def _value(cell: aggregate.CellRow, stat: Optional[str]) -> Optional[float]:
    if stat is None or cell.n == 0:
        return None
    if stat == "mean":
        return cell.total / cell.n
    if stat == "sum":
        return cell.total
    if stat == "min":
        return cell.minimum
    if stat == "max":
        return cell.maximum
    return None  # median: computed from the users' rows


def _with_value(group: Group, value: Optional[float]) -> Group:
    return Group(group.key, group.n, value, group.base)


def _complete_segments(groups: List[Group], query: Query, asked, everyone: int) -> List[Group]:
    """Segments with no matching user still get a row (0 users), in the run's order."""
    if query.group_by != ("segment",):
        return groups
    by_key = {g.key: g for g in groups}
    return [by_key.get((name,), Group((name,), 0, None, everyone)) for name in asked]


def _asked(means: Dict[str, float], query: Query) -> Dict[str, float]:
    """The means of the features a question names ("compare them on ratings"), else all."""
    if not query.features:
        return means
    return {f: means.get(f, 0.0) for f in query.features}
