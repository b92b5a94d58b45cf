"""The query model (issue 8, section 6): every measure x filter x grouping against SQL written here.

One data set per backend, seeded once per module in a database of its own (the per-test table
truncation of the `db_url` fixture can't reach it):

- a feature table of 390 users in triples that share every feature, their signup date,
  country and plan and differ only in device (iOS / Android / Web), so counts and statistics of
  integer features by device tie exactly, and so do engagement scores (list tie-breaks);
- users missing from the users table (every attribute NULL), others with no country, no plan
  or no signup date; signup dates over 25 months of 2024-2026, including the days on both
  sides of every date filter's bounds; a country with a quote and an accent (Côte d'Ivoire);
- run #1 built on a users table without plans (k=3, default names); run #2 after the users
  table changed (some countries, who is missing, plans added), k=4 with custom names.

Every expected number comes from SQL in this file over `user_segments` (json_extract on SQLite,
JSON_EXTRACT on MariaDB), never from the code under test. Each answer is checked on the run's
cells and on its users' rows (the same run with params["cells"] = False; non-month-aligned date
filters take the users' rows by themselves).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from fractions import Fraction
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from segmentation import aggregate, db
from segmentation.answering import CannotApply, UnknownSegment
from segmentation.build import build_segments
from segmentation.clustering import ClusterSettings
from segmentation.queries import SegmentQueries
from segmentation.query import Filter, Query, parse_where
from segmentation.results import Group, Measured, RunInfo
from segmentation.schema import ensure_schema, users
from tests.conftest import BACKENDS
from tests.factories import insert_feature_table, insert_frame

SPENT = "Average Spent on App (INR)"  # a column name with spaces and brackets
FEATURES = ("sessions", SPENT, "ratings")
NAMES = ("Dormant", "Casual", "Regular", "Power Users")
FIRST_NAMES = ("Low Engagement", "Moderate Engagement", "Highly Engaged")
IVORY = "Côte d'Ivoire"
COUNTRIES = ("DE", "FR", "BR", "US", IVORY)
DEVICES = ("iOS", "Android", "Web")
PLANS = ("free", "basic", "premium")
TRIPLES = 130
# Days on both sides of the date filters' bounds below.
EDGE_DAYS = tuple(
    date.fromisoformat(d)
    for d in (
        "2025-01-31 2025-02-01 2025-02-09 2025-02-10 2025-03-16 2025-03-17 2025-03-31 "
        "2025-04-01 2025-07-31 2025-08-01 2025-08-19 2025-08-20 2025-12-31 2026-01-01"
    ).split()
)
EDGE_TRIPLES = [j for j in range(5, TRIPLES, 6) if j % 11][: len(EDGE_DAYS)]
FAST = ClusterSettings(n_init=2, stability_runs=1)


# --- the data --------------------------------------------------------------------------------
def user_id(triple: int, device: int) -> str:
    return f"u{3 * triple + device:04d}"


def feature_rows() -> Dict[str, dict]:
    """Four activity tiers; the three users of a triple have the same features."""
    rng = np.random.RandomState(11)
    rows = {}
    for j in range(TRIPLES):
        tier = j % 4
        values = {
            "sessions": float(rng.poisson((1, 5, 12, 30)[tier])),
            SPENT: round(float(rng.lognormal(3 + tier, 0.5)), 2),
            "ratings": float(rng.randint(1, 6)),
        }
        for device in range(3):
            rows[user_id(j, device)] = values
    return rows


def users_rows(version: int) -> List[dict]:
    """The users table before run #1 (version 1: no plans) and before run #2."""
    rng = np.random.RandomState(12)
    rows = []
    for j in range(TRIPLES):
        day = date(2024, 10, 1) + timedelta(days=int(rng.randint(0, 760)))
        missing = j % 11 == 0 if version == 1 else (j % 11 == 0 and j != 22) or j == 1
        if missing:
            continue
        if j in EDGE_TRIPLES:
            signup = EDGE_DAYS[EDGE_TRIPLES.index(j)]
        else:
            signup = None if j % 7 == 3 else day
        moved = version == 2 and j % 4 == 0
        country = None if j % 13 == 1 else COUNTRIES[(j + moved) % len(COUNTRIES)]
        plan = None if version == 1 or j % 10 == 4 else PLANS[(j // 2) % 3]
        for device, name in enumerate(DEVICES):
            rows.append(
                {
                    "user_id": user_id(j, device),
                    "country": country,
                    "device": name,
                    "plan": plan,
                    "signup_date": signup,
                    "file_id": version,
                }
            )
    return rows


@dataclass
class Data:
    backend: str
    engine: Engine
    first: RunInfo  # run #1 (k=3, no plans)
    current: RunInfo  # run #2 (k=4, custom names)
    sql: "Sql"
    paths: Dict[str, SegmentQueries]  # the query layer, on the runs as built / users' rows
    expected: Dict[tuple, "Expected"] = field(default_factory=dict)  # the same SQL, once


@contextlib.contextmanager
def seeded(url: str, backend: str) -> Iterator[Data]:
    """Both runs built on the database at `url`; its connections closed afterwards."""
    engine = db.get_engine(url)
    sql = None
    try:
        ensure_schema(engine)
        insert_feature_table(engine, "app", feature_rows())
        insert_frame(engine, users, users_rows(1))
        build_segments(engine, FAST, source="features:app")
        with engine.begin() as conn:
            conn.execute(users.delete())
        insert_frame(engine, users, users_rows(2))
        build_segments(engine, replace(FAST, k=4, names=list(NAMES)), source="features:app")
        queries = SegmentQueries(engine=engine)
        current = queries.current_run()
        paths = {"built": queries, "rows": UserRowsOnly(engine=engine)}
        sql = Sql(engine)
        yield Data(backend, engine, queries.previous_run(current), current, sql, paths)
    finally:
        if sql is not None:
            sql.close()
        engine.dispose()


@contextlib.contextmanager
def own_database(session_url: str) -> Iterator[str]:
    """A database of this module's own on the session's MariaDB server, dropped afterwards."""
    url = make_url(session_url)
    name = f"{url.database}_query_model"
    server = create_engine(url.set(database=""), future=True)
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def data(request, tmp_path_factory) -> Iterator[Data]:
    """The two runs described in the module docstring, on SQLite and on MariaDB."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('query_model') / 'model.db'}"
        with seeded(url, "sqlite") as built:
            yield built
        return
    with own_database(request.getfixturevalue("mariadb_database")) as url:
        with seeded(url, "mariadb") as built:
            yield built


class UnlistedValues(SegmentQueries):
    """As if the run had too many values to list: filter values go to SQL as they are."""

    def resolve_run(self, ref) -> RunInfo:
        run = super().resolve_run(ref)
        return replace(run, params={**run.params, "values": {}})


class UserRowsOnly(SegmentQueries):
    """The same answers as if the runs had no cells: every number from the users' rows."""

    @staticmethod
    def _without_cells(run: RunInfo) -> RunInfo:
        return replace(run, params={**run.params, "cells": False})

    def resolve_run(self, ref) -> RunInfo:
        return self._without_cells(super().resolve_run(ref))

    def runs(self, limit: int = 20) -> List[RunInfo]:
        return [self._without_cells(run) for run in super().runs(limit)]


class UnlistedValuesRowsOnly(UserRowsOnly):
    """Users' rows only, and filter values to SQL as they are."""

    def resolve_run(self, ref) -> RunInfo:
        run = super().resolve_run(ref)
        return replace(run, params={**run.params, "values": {}})


PATHS = ("built", "rows")  # the run as built (cells when they apply) / users' rows only


def queries_for(data: Data, path: str) -> SegmentQueries:
    return data.paths[path]


# --- the expected numbers, in SQL ---------------------------------------------------------------
# Each filter kind: the query's filters, the same condition in SQL, its parameters, and
# whether the run's cells can answer it (category values, month-aligned dates).
FILTERS: Dict[str, Tuple[Tuple[Filter, ...], str, dict, bool]] = {
    "none": ((), "1 = 1", {}, True),
    "value": ((Filter("country", ("DE",)),), "country = :f1", {"f1": "DE"}, True),
    "values": (
        (Filter("country", ("FR", IVORY)),),
        "country IN (:f1, :f2)",
        {"f1": "FR", "f2": IVORY},
        True,
    ),
    "two_attributes": (
        (Filter("device", ("iOS",)), Filter("plan", ("premium",))),
        "device = :f1 AND plan = :f2",
        {"f1": "iOS", "f2": "premium"},
        True,
    ),
    "exclude": (
        (Filter("country", ("US", "BR"), exclude=True),),
        "(country IS NULL OR country NOT IN (:f1, :f2))",
        {"f1": "US", "f2": "BR"},
        True,
    ),
    "months": (
        (Filter("signup_date", start=date(2025, 2, 1), end=date(2025, 8, 1)),),
        "signup_date >= :f1 AND signup_date < :f2",
        {"f1": "2025-02-01", "f2": "2025-08-01"},
        True,
    ),
    "since": (
        (Filter("signup_date", start=date(2026, 1, 1)),),
        "signup_date >= :f1",
        {"f1": "2026-01-01"},
        True,
    ),
    "days": (
        (Filter("signup_date", start=date(2025, 2, 10), end=date(2025, 8, 20)),),
        "signup_date >= :f1 AND signup_date < :f2",
        {"f1": "2025-02-10", "f2": "2025-08-20"},
        False,
    ),
    "until": (
        (Filter("signup_date", end=date(2025, 3, 17)),),
        "signup_date < :f1",
        {"f1": "2025-03-17"},
        False,
    ),
    "mixed": (
        (
            Filter("device", ("Web",), exclude=True),
            Filter("country", ("DE", "FR", "US")),
            Filter("signup_date", end=date(2025, 4, 1)),
        ),
        "(device IS NULL OR device <> :f1) AND country IN (:f2, :f3, :f4) AND signup_date < :f5",
        {"f1": "Web", "f2": "DE", "f3": "FR", "f4": "US", "f5": "2025-04-01"},
        True,
    ),
    "nobody": (
        (Filter("plan", ("premium",)), Filter("plan", ("premium",), exclude=True)),
        "plan = :f1 AND (plan IS NULL OR plan <> :f2)",
        {"f1": "premium", "f2": "premium"},
        True,
    ),
}
GROUPINGS = {
    "none": (),
    "segment": ("segment",),
    "country": ("country",),
    "month": ("signup_month",),
    "year": ("signup_year",),
    "segment_device": ("segment", "device"),
    "plan_segment": ("plan", "segment"),
}
STATS = ("mean", "median", "min", "max", "sum")
MEASURES = ("count", "share") + STATS


class Sql:
    """Hand-written SQL over user_segments, per backend."""

    def __init__(self, engine: Engine) -> None:
        self.mysql = engine.dialect.name in ("mysql", "mariadb")
        self.conn = engine.connect()  # the data doesn't change once seeded: one reader

    def close(self) -> None:
        self.conn.close()

    def rows(self, statement: str, **params) -> list:
        return self.conn.execute(text(statement), params).all()

    def scalar(self, statement: str, **params):
        return self.rows(statement, **params)[0][0]

    def value(self, feature: str) -> str:
        """A user's value of a feature; its JSON path is the parameter :path."""
        if self.mysql:
            return "CAST(JSON_EXTRACT(features, :path) AS DOUBLE)"
        return "json_extract(features, :path)"

    def key(self, name: str) -> str:
        """A group key: signup months as YYYYMM numbers, years as numbers."""
        if name == "signup_month":
            if self.mysql:
                return "YEAR(signup_date) * 100 + MONTH(signup_date)"
            return "CAST(strftime('%Y%m', signup_date) AS INTEGER)"
        if name == "signup_year":
            return (
                "YEAR(signup_date)"
                if self.mysql
                else "CAST(strftime('%Y', signup_date) AS INTEGER)"
            )
        return name


def path_of(feature: str) -> str:
    return f'$."{feature}"'


def key_value(name: str, value):
    if value is None:
        return None
    if name == "signup_month":
        return date(int(value) // 100, int(value) % 100, 1)
    if name == "signup_year":
        return int(value)
    return value


def condition(run_id: int, filter_kind: str, segments: Sequence[str] = ()) -> Tuple[str, dict]:
    """The WHERE clause of a filter kind (and segments) on one run, and its parameters."""
    _, where, params, _ = FILTERS[filter_kind]
    clause = f"run_id = :run AND {where}"
    params = {**params, "run": run_id}
    if segments:
        names = {f"s{i}": name for i, name in enumerate(segments)}
        clause += " AND segment IN (" + ", ".join(f":{n}" for n in names) + ")"
        params.update(names)
    return clause, params


def middle(values: Sequence[float]) -> Optional[float]:
    """The median of values already in order (mean of the two middle ones when even)."""
    n = len(values)
    if not n:
        return None
    if n % 2:
        return float(values[n // 2])
    return (float(values[n // 2 - 1]) + float(values[n // 2])) / 2


def grouped(
    sql: Sql, where: str, params: dict, keys: Sequence[str], feature: Optional[str], stat
) -> Dict[tuple, Tuple[int, Optional[float]]]:
    """{group key: (users, statistic)} by SQL; no keys: one row {(): ...}, even for nobody."""
    columns = [sql.key(k) for k in keys]
    head = "".join(f"{c}, " for c in columns)
    if feature:
        params = {**params, "path": path_of(feature)}
    if stat == "median":
        value = sql.value(feature)
        rows = sql.rows(
            f"SELECT {head}{value} FROM user_segments WHERE {where} ORDER BY {head}{value}",
            **params,
        )
        ordered: Dict[tuple, list] = {}
        for row in rows:
            key = tuple(key_value(k, v) for k, v in zip(keys, row[:-1]))
            ordered.setdefault(key, []).append(row[-1])
        result = {key: (len(values), middle(values)) for key, values in ordered.items()}
        return result if keys else {(): result.get((), (0, None))}
    group = f" GROUP BY {', '.join(columns)}" if columns else ""
    if stat:
        value = sql.value(feature)
        stats = {"mean": "AVG", "sum": "SUM", "min": "MIN", "max": "MAX"}[stat]
        wanted = f"COUNT(*), {stats}({value})"
    else:
        wanted = "COUNT(*), NULL"
    rows = sql.rows(f"SELECT {head}{wanted} FROM user_segments WHERE {where}{group}", **params)
    return {
        tuple(key_value(k, v) for k, v in zip(keys, row[:-2])): (
            int(row[-2]),
            None if row[-1] is None else float(row[-1]),
        )
        for row in rows
    }


@dataclass
class Expected:
    groups: Dict[tuple, Tuple[int, int, Optional[float]]]  # key -> (users, base, value)
    total: Tuple[int, int, Optional[float]]
    population: Tuple[int, int, Optional[float]]
    sizes: Dict[str, int]


def expected_measured(
    data: Data,
    run: RunInfo,
    measure: str,
    feature: Optional[str],
    filter_kind: str,
    group_by: Sequence[str],
    segments: Sequence[str] = (),
) -> Expected:
    """What SQL says the answer is (computed once per question: both paths compare to it)."""
    question = (run.id, measure, feature, filter_kind, tuple(group_by), tuple(segments))
    if question not in data.expected:
        data.expected[question] = _expected(
            data, run, measure, feature, filter_kind, group_by, segments
        )
    return data.expected[question]


def _expected(data, run, measure, feature, filter_kind, group_by, segments) -> Expected:
    sql = data.sql
    stat = measure if measure in STATS else None
    asked = list(segments) or list(run.segment_names)
    asked_where, asked_params = condition(run.id, filter_kind, segments)
    all_where, all_params = condition(run.id, filter_kind)
    total_n, total_value = grouped(sql, asked_where, asked_params, (), feature, stat)[()]
    everyone, everyone_value = grouped(sql, all_where, all_params, (), feature, stat)[()]
    attributes = [k for k in group_by if k != "segment"]
    if not group_by:
        groups = {(): (total_n, everyone, total_value)}
    else:
        found = grouped(sql, asked_where, asked_params, group_by, feature, stat)
        if group_by == ("segment",):  # every asked segment, in the run's order
            groups = {}
            for name in asked:
                n, value = found.get((name,), (0, None))
                groups[(name,)] = (n, everyone, value)
        elif not attributes:
            groups = {k: (n, everyone, v) for k, (n, v) in found.items()}
        else:
            base = {
                k: n
                for k, (n, _) in grouped(sql, all_where, all_params, attributes, None, None).items()
            }
            groups = {
                key: (n, base[tuple(v for k, v in zip(group_by, key) if k != "segment")], value)
                for key, (n, value) in found.items()
            }
            if "segment" not in group_by:  # values none of the asked users have: 0 users
                for key, n in base.items():
                    groups.setdefault(key, (0, n, None))
    counts = dict(
        sql.rows(
            "SELECT segment, COUNT(*) FROM user_segments WHERE run_id = :run GROUP BY segment",
            run=run.id,
        )
    )
    sizes = {name: int(counts[name]) for name in asked}
    return Expected(
        groups,
        (total_n, everyone, total_value),
        (everyone, everyone, everyone_value),
        sizes,
    )


def close(a: Optional[float], b: Optional[float]) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a == pytest.approx(b, rel=1e-9, abs=1e-12)


def numbers(group: Group) -> Tuple[int, int, Optional[float]]:
    return (group.n, group.base, group.value)


def same(got: Tuple[int, int, Optional[float]], want: Tuple[int, int, Optional[float]]) -> bool:
    return got[:2] == want[:2] and close(got[2], want[2])


def unknown_as_none(key: tuple) -> tuple:
    """Unknown attribute values are None; the cells path says '' instead (a bug that
    test_unknown_attribute_values_group_as_none reports on its own)."""
    return tuple(None if v == "" else v for v in key)


def assert_measured(result: Measured, want: Expected, run: RunInfo, group_by) -> None:
    got = {unknown_as_none(g.key): numbers(g) for g in result.groups}
    assert len(got) == len(result.groups), "two groups with the same key"
    if not (got.keys() == want.groups.keys() and all(same(got[k], want.groups[k]) for k in got)):
        assert got == want.groups  # (users, base, value) by group: shows the difference
    if tuple(group_by) == ("segment",):
        assert [g.key for g in result.groups] == [k for k in want.groups]  # the run's order
    assert same(numbers(result.total), want.total), (numbers(result.total), want.total)
    assert same(numbers(result.population), want.population), (
        numbers(result.population),
        want.population,
    )
    assert result.segment_sizes == want.sizes
    assert result.run.id == run.id


def feature_for(measure: str, filter_kind: str) -> Optional[str]:
    """Statistics rotate over the features so that each meets every feature."""
    if measure not in STATS:
        return None
    return FEATURES[(STATS.index(measure) + list(FILTERS).index(filter_kind)) % len(FEATURES)]


def paths_for(filter_kind: str) -> Tuple[str, ...]:
    """Filters the cells can't answer take the users' rows by themselves: one path is enough."""
    return PATHS if FILTERS[filter_kind][3] else ("built",)


# --- the data set itself ----------------------------------------------------------------------
def test_the_data_exercises_every_case(data):
    sql, current, first = data.sql, data.current, data.first
    assert current.segment_names == NAMES and first.segment_names == FIRST_NAMES
    assert current.params["cells"] is True and first.params["cells"] is True
    assert current.params["attributes"] == ["country", "device", "plan", "signup_date"]
    assert first.params["attributes"] == ["country", "device", "signup_date"]  # no plans yet
    for run in (first, current):
        missing = sql.scalar(
            "SELECT COUNT(*) FROM user_segments WHERE run_id = :run AND country IS NULL "
            "AND device IS NULL AND plan IS NULL AND signup_date IS NULL",
            run=run.id,
        )
        assert missing >= 30
        sizes = dict(
            sql.rows(
                "SELECT segment, COUNT(*) FROM user_segments WHERE run_id = :run GROUP BY segment",
                run=run.id,
            )
        )
        assert set(sizes) == set(run.segment_names) and sum(sizes.values()) == 390
    years = sql.rows(
        f"SELECT DISTINCT {sql.key('signup_year')} FROM user_segments WHERE run_id = :run",
        run=current.id,
    )
    assert {y for (y,) in years} == {None, 2024, 2025, 2026}
    months = sql.scalar(
        f"SELECT COUNT(DISTINCT {sql.key('signup_month')}) FROM user_segments WHERE run_id = :run",
        run=current.id,
    )
    assert months >= 24
    days = sql.rows(
        "SELECT DISTINCT signup_date FROM user_segments WHERE run_id = :run", run=current.id
    )
    present = {d if isinstance(d, date) else date.fromisoformat(d) for (d,) in days if d}
    assert set(EDGE_DAYS) <= present
    for kind in FILTERS:
        where, params = condition(current.id, kind)
        matched = sql.scalar(f"SELECT COUNT(*) FROM user_segments WHERE {where}", **params)
        assert (matched == 0) == (kind == "nobody"), kind
    # Who is missing and who lives where changed between the runs.
    changed = sql.scalar(
        "SELECT COUNT(*) FROM user_segments a JOIN user_segments b ON a.user_id = b.user_id "
        "WHERE a.run_id = :first AND b.run_id = :current "
        "AND NOT (a.country <=> b.country)"
        if sql.mysql
        else "SELECT COUNT(*) FROM user_segments a JOIN user_segments b ON a.user_id = b.user_id "
        "WHERE a.run_id = :first AND b.run_id = :current AND a.country IS NOT b.country",
        first=first.id,
        current=current.id,
    )
    assert changed > 30


# --- every measure x filter x grouping -----------------------------------------------------------
MATRIX = [
    pytest.param(measure, kind, grouping, path, id=f"{measure}-{kind}-{grouping}-{path}")
    for measure in MEASURES
    for kind in FILTERS
    for grouping in GROUPINGS
    for path in paths_for(kind)
]


@pytest.mark.parametrize("measure, filter_kind, grouping, path", MATRIX)
def test_measure_by_filter_and_grouping(data, measure, filter_kind, grouping, path):
    filters, group_by = FILTERS[filter_kind][0], GROUPINGS[grouping]
    feature = feature_for(measure, filter_kind)
    queries = queries_for(data, path)
    run = queries.resolve_run(None)
    keys = [k for k in group_by if k != "segment"]
    assert aggregate.cells_apply(run, filters, keys) == (
        path == "built" and FILTERS[filter_kind][3]
    )
    query = Query(
        measure, features=(feature,) if feature else (), filters=filters, group_by=group_by
    )
    result = queries.answer(query)
    want = expected_measured(data, data.current, measure, feature, filter_kind, group_by)
    assert_measured(result, want, data.current, group_by)
    if measure == "share":
        for group in result.groups:
            n, base, _ = want.groups[unknown_as_none(group.key)]
            assert group.share_of_base == (n / base if base else None)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "group_by", [("country",), ("segment", "plan"), ("device", "segment")], ids="+".join
)
def test_unknown_attribute_values_group_as_none(data, group_by, path):
    """Users without the attribute (missing from the users table, or no value) are one group
    whose key is None, whichever path answers: the same key as on the users' rows."""
    result = queries_for(data, path).answer(Query("count", group_by=group_by))
    attribute = next(k for k in group_by if k != "segment")
    position = group_by.index(attribute)
    unknown = sum(g.n for g in result.groups if g.key[position] is None)
    assert [g.key for g in result.groups if g.key[position] == ""] == []
    assert unknown == data.sql.scalar(
        f"SELECT COUNT(*) FROM user_segments WHERE run_id = :run AND {attribute} IS NULL",
        run=data.current.id,
    )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("filter_kind", list(FILTERS))
def test_list_under_every_filter(data, filter_kind, path):
    result = queries_for(data, path).answer(
        Query("list", filters=FILTERS[filter_kind][0], limit=15)
    )
    where, params = condition(data.current.id, filter_kind)
    total = data.sql.scalar(f"SELECT COUNT(*) FROM user_segments WHERE {where}", **params)
    page = data.sql.rows(
        f"SELECT user_id FROM user_segments WHERE {where} "
        "ORDER BY score DESC, user_id DESC LIMIT 15",
        **params,
    )
    assert result.total == total
    assert [m.user_id for m in result.members] == [r.user_id for r in page]


WHERE_TEXTS = [
    # a command-line filter, the same condition in SQL, its parameters
    ("country=DE,FR", "country IN (:a, :b)", {"a": "DE", "b": "FR"}),
    ("device!=iOS", "(device IS NULL OR device <> :a)", {"a": "iOS"}),
    ("plan = premium", "plan = :a", {"a": "premium"}),
    ("signup_date>=2026-01-01", "signup_date >= :a", {"a": "2026-01-01"}),
    ("signup_date>2025-01-31", "signup_date > :a", {"a": "2025-01-31"}),
    ("signup_date<=2025-03-16", "signup_date <= :a", {"a": "2025-03-16"}),
    ("signup_date<2025-04-01", "signup_date < :a", {"a": "2025-04-01"}),
    ("signup_date=2025-02-10", "signup_date = :a", {"a": "2025-02-10"}),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("said, where, params", WHERE_TEXTS, ids=[w[0] for w in WHERE_TEXTS])
def test_command_line_filters(data, said, where, params, path):
    result = queries_for(data, path).answer(
        Query("count", filters=(parse_where(said),), group_by=("segment",))
    )
    counts = dict(
        data.sql.rows(
            f"SELECT segment, COUNT(*) FROM user_segments WHERE run_id = :run AND {where} "
            "GROUP BY segment",
            run=data.current.id,
            **params,
        )
    )
    assert {g.key[0]: g.n for g in result.groups} == {n: counts.get(n, 0) for n in NAMES}
    assert result.total.n == sum(counts.values()) > 0


# --- segments, runs ---------------------------------------------------------------------------
SUBSET = ("Casual", "Power Users")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("filter_kind", ["exclude", "months"])
@pytest.mark.parametrize("grouping", list(GROUPINGS))
@pytest.mark.parametrize("measure", MEASURES)
def test_segment_subset(data, measure, grouping, filter_kind, path):
    group_by = GROUPINGS[grouping]
    feature = feature_for(measure, filter_kind)
    query = Query(
        measure,
        features=(feature,) if feature else (),
        segments=SUBSET,
        filters=FILTERS[filter_kind][0],
        group_by=group_by,
    )
    result = queries_for(data, path).answer(query)
    want = expected_measured(data, data.current, measure, feature, filter_kind, group_by, SUBSET)
    assert_measured(result, want, data.current, group_by)


@pytest.mark.parametrize("path", PATHS)
def test_segment_with_no_matching_user_keeps_its_reference(data, path):
    """A filter that leaves the asked segment empty (but not everyone): a 0 row, and the
    reference (users matching the filter in every segment) is still those users."""
    sql, run = data.sql, data.current
    rows = sql.rows(
        f"SELECT {sql.key('signup_month')}, segment, COUNT(*) FROM user_segments "
        "WHERE run_id = :run AND signup_date IS NOT NULL "
        f"GROUP BY {sql.key('signup_month')}, segment",
        run=run.id,
    )
    by_month: Dict[int, Dict[str, int]] = {}
    for month, segment, n in rows:
        by_month.setdefault(int(month), {})[segment] = int(n)
    month, segment = next(
        (m, name) for m, counts in sorted(by_month.items()) for name in NAMES if name not in counts
    )
    start = date(month // 100, month % 100, 1)
    end = (start + timedelta(days=32)).replace(day=1)
    everyone = sum(by_month[month].values())
    query = Query(
        "count",
        segments=(segment,),
        filters=(Filter("signup_date", start=start, end=end),),
        group_by=("segment",),
    )
    result = queries_for(data, path).answer(query)
    assert (result.total.n, result.population.n) == (0, everyone)
    assert [numbers(g) for g in result.groups] == [(0, everyone, None)]


PREVIOUS = [("value", "segment"), ("exclude", "country"), ("days", "year"), ("mixed", "none")]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("filter_kind, grouping", PREVIOUS)
@pytest.mark.parametrize("measure", MEASURES)
def test_previous_run_is_answered_from_its_own_snapshot(data, measure, filter_kind, grouping, path):
    group_by = GROUPINGS[grouping]
    feature = feature_for(measure, filter_kind)
    query = Query(
        measure,
        features=(feature,) if feature else (),
        filters=FILTERS[filter_kind][0],
        group_by=group_by,
        run="previous",
    )
    queries = queries_for(data, path)
    result = queries.answer(query)
    want = expected_measured(data, data.first, measure, feature, filter_kind, group_by)
    assert_measured(result, want, data.first, group_by)
    by_id = queries.answer(query.with_(run=data.first.id))
    assert_measured(by_id, want, data.first, group_by)


def test_run_references(data):
    queries = data.paths["built"]
    for ref, run in ((None, data.current), ("current", data.current), ("all", data.current)):
        assert queries.answer(Query("count", run=ref)).run.id == run.id
    low = queries.answer(Query("count", segments=("Low Engagement",), run="previous"))
    assert low.total.n == data.sql.scalar(
        "SELECT COUNT(*) FROM user_segments WHERE run_id = :run AND segment = :segment",
        run=data.first.id,
        segment="Low Engagement",
    )
    with pytest.raises(UnknownSegment, match="Low Engagement"):
        queries.answer(Query("count", segments=("Low Engagement",)))
    with pytest.raises(CannotApply, match="no plan"):  # run #1 was built without plans
        queries.answer(Query("count", filters=(Filter("plan", ("free",)),), run="previous"))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("filter_kind", ["none", "value", "exclude", "months", "days"])
def test_trend_sizes_per_run(data, filter_kind, path):
    trend = queries_for(data, path).answer(
        Query("trend", filters=FILTERS[filter_kind][0], run="all")
    )
    assert [run.id for run in trend.runs] == [data.first.id, data.current.id]
    for run in (data.first, data.current):
        where, params = condition(run.id, filter_kind)
        counts = dict(
            data.sql.rows(
                f"SELECT segment, COUNT(*) FROM user_segments WHERE {where} GROUP BY segment",
                **params,
            )
        )
        assert trend.sizes[run.id] == {name: counts.get(name, 0) for name in run.segment_names}
        assert trend.totals[run.id] == sum(counts.values())


# --- ranking ----------------------------------------------------------------------------------
RANKS = [
    # measure, feature, group_by, filter kind, segments
    ("count", None, ("segment",), "none", ()),
    ("count", None, ("segment",), "two_attributes", ()),
    ("count", None, ("segment",), "nobody", ()),  # every segment ties at 0
    ("count", None, ("device",), "value", ()),  # iOS, Android and Web tie
    ("count", None, ("country",), "exclude", ("Power Users",)),
    ("count", None, ("country", "device"), "none", ()),  # two attributes; devices tie
    ("share", None, ("country",), "none", ("Power Users",)),  # by share of each country
    ("share", None, ("device",), "months", ("Casual",)),  # shares tie
    ("mean", "sessions", ("device",), "values", ()),  # exact tie
    ("mean", SPENT, ("device",), "none", ()),  # same values per device: a tie
    ("mean", SPENT, ("segment",), "exclude", ()),
    ("max", "ratings", ("segment",), "none", ()),
    ("min", "ratings", ("segment", "device"), "months", ()),
    ("median", "sessions", ("signup_year",), "none", ()),
    ("sum", SPENT, ("country",), "days", ()),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("rank", ["most", "least"])
@pytest.mark.parametrize(
    "measure, feature, group_by, filter_kind, segments",
    RANKS,
    ids=[f"{m}-{f or ''}-{'+'.join(g)}-{k}-{len(s)}" for m, f, g, k, s in RANKS],
)
def test_rank_orders_groups_with_ties(
    data, measure, feature, group_by, filter_kind, segments, rank, path
):
    query = Query(
        measure,
        features=(feature,) if feature else (),
        segments=segments,
        filters=FILTERS[filter_kind][0],
        group_by=group_by,
        rank=rank,
    )
    result = queries_for(data, path).answer(query)
    want = expected_measured(data, data.current, measure, feature, filter_kind, group_by, segments)
    assert_measured(result, want, data.current, group_by)

    def sql_metric(key):
        n, base, value = want.groups[key]
        if feature:
            return value
        if measure == "share" and group_by[0] != "segment":
            return Fraction(n, base) if base else None
        return n

    ranked = result.ranked()
    keys = [unknown_as_none(g.key) for g in ranked]
    assert sorted(map(repr, keys)) == sorted(map(repr, want.groups))
    metrics = [sql_metric(key) for key in keys]
    usable = [m for m in metrics if m is not None]
    assert metrics[: len(usable)] == usable, "groups without a value come last"
    assert usable, "nothing to rank"
    for a, b in zip(usable, usable[1:]):
        assert (a >= b or close(a, b)) if rank == "most" else (a <= b or close(a, b)), metrics
    best = max(usable) if rank == "most" else min(usable)
    leaders = {k for k in want.groups if sql_metric(k) is not None and close(sql_metric(k), best)}

    def own_metric(g: Group):  # what the reply compares to say "X and Y tie"
        if feature:
            return g.value
        return g.share_of_base if measure == "share" and group_by[0] != "segment" else g.n

    said = {unknown_as_none(g.key) for g in ranked if own_metric(g) == own_metric(ranked[0])}
    assert said == leaders


def test_ties_are_present_in_the_data(data):
    """The tie cases above really tie (else they would prove nothing)."""
    result = data.paths["built"].answer(
        Query("count", filters=FILTERS["value"][0], group_by=("device",), rank="most")
    )
    top = result.ranked()[:3]
    assert {g.key for g in top} == {(d,) for d in DEVICES} and len({g.n for g in top}) == 1


# --- lists of users ---------------------------------------------------------------------------
MEMBER_PAGES = [
    # by, order, filter kind, segments, limit, offset
    (None, "most", "none", (), 10, 0),
    (None, "least", "none", (), 10, 0),
    (None, "most", "exclude", ("Casual", "Power Users"), 7, 7),
    (None, "least", "two_attributes", (), 5, 3),
    (None, "most", "days", ("Regular",), 8, 16),
    ("sessions", "most", "none", (), 12, 0),  # ties: the three users of a triple
    ("sessions", "least", "values", (), 12, 12),
    ("sessions", "most", "months", ("Dormant", "Regular"), 9, 4),
    (SPENT, "most", "mixed", (), 6, 0),
    (SPENT, "least", "exclude", ("Power Users",), 10, 20),
    ("ratings", "least", "since", (), 11, 30),
    ("ratings", "most", "none", (), 25, 380),  # the last page, partly empty
    (None, "most", "nobody", (), 10, 0),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("by, order, filter_kind, segments, limit, offset", MEMBER_PAGES)
def test_members_pages(data, by, order, filter_kind, segments, limit, offset, path):
    query = Query(
        "list",
        features=(by,) if by else (),
        segments=segments,
        filters=FILTERS[filter_kind][0],
        order=order,
        limit=limit,
        offset=offset,
    )
    result = queries_for(data, path).answer(query)
    sql = data.sql
    where, params = condition(data.current.id, filter_kind, segments)
    key = sql.value(by) if by else "score"
    direction = "DESC" if order == "most" else "ASC"
    if by:
        params["path"] = path_of(by)
    page = sql.rows(
        "SELECT user_id, segment, score, features, country, device, plan FROM user_segments "
        f"WHERE {where} ORDER BY {key} {direction}, user_id {direction} "
        "LIMIT :limit OFFSET :offset",
        **params,
        limit=limit,
        offset=offset,
    )
    total = sql.scalar(f"SELECT COUNT(*) FROM user_segments WHERE {where}", **params)
    assert (result.total, result.offset, result.order) == (total, offset, order)
    assert [m.user_id for m in result.members] == [r.user_id for r in page]
    for member, row in zip(result.members, page):
        assert member.segment == row.segment
        assert member.score == pytest.approx(row.score, rel=1e-12)
        assert member.features == json.loads(row.features)
        assert member.attributes == {"country": row.country, "device": row.device, "plan": row.plan}


# --- filtered overview (per segment, every feature) --------------------------------------------
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("filter_kind", ["value", "exclude", "months", "days", "nobody"])
def test_filtered_overview(data, filter_kind, path):
    overview = queries_for(data, path).answer(Query("overview", filters=FILTERS[filter_kind][0]))
    where, params = condition(data.current.id, filter_kind)
    by_segment = {s.name: s for s in overview.segments}
    assert list(by_segment) == list(NAMES)
    population = grouped(data.sql, where, params, (), None, None)[()][0]
    assert overview.total_users == population
    for feature in FEATURES:
        means = grouped(data.sql, where, params, ("segment",), feature, "mean")
        for name in NAMES:
            n, mean = means.get((name,), (0, None))
            assert by_segment[name].size == n
            assert close(by_segment[name].means.get(feature), mean), (name, feature)
        overall = grouped(data.sql, where, params, (), feature, "mean")[()][1]
        assert close(overview.overall_means.get(feature), overall), feature


# --- what can't be answered ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "query, error, words",
    [
        (Query("count", segments=("Champions",)), UnknownSegment, "no segment 'Champions'"),
        (Query("mean", features=("clicks",)), CannotApply, "no feature 'clicks'"),
        (Query("list", features=("clicks",)), CannotApply, "no feature 'clicks'"),
        (Query("count", filters=(Filter("region", ("EU",)),)), CannotApply, "no region"),
        (Query("count", group_by=("region",)), CannotApply, "no region"),
        (Query("median", features=(SPENT,), segments=("Casual", "Nope")), UnknownSegment, "Nope"),
        (Query("list", segments=("Power Users' OR '1'='1",)), UnknownSegment, "no segment"),
    ],
    ids=["segment", "feature", "list-feature", "filter", "group", "one-of-two", "quoted"],
)
def test_unknown_parts_raise_the_documented_errors(data, query, error, words):
    with pytest.raises(error, match=words):
        data.paths["built"].answer(query)


ODD_VALUES = [
    "O'Brien",
    'x"; DROP TABLE user_segments; --',
    "DE' OR '1'='1",
    "100%",
    "%",
    "_",
    "D%",
    "日本",
    "\\",
]


def test_filter_values_are_spelled_as_the_data_spells_them_or_refused(data):
    queries = queries_for(data, "built")
    exact = queries.answer(Query("count", filters=(Filter("device", ("iOS",)),))).total.n
    for spelled in ("ios", " IOS ", "iOS"):
        found = queries.answer(Query("count", filters=(Filter("device", (spelled,)),)))
        assert found.total.n == exact and found.query.filters[0].values == ("iOS",)
    with pytest.raises(
        CannotApply, match="has plan 'platinum'; the values are basic, free, premium"
    ):
        queries.answer(Query("count", filters=(Filter("plan", ("platinum",)),)))


@pytest.mark.parametrize("value", ODD_VALUES)
def test_filter_values_are_bound_parameters(data, value):
    sql, run = data.sql, data.current
    everyone = sql.scalar("SELECT COUNT(*) FROM user_segments WHERE run_id = :run", run=run.id)
    for path in PATHS:
        unlisted = {"built": UnlistedValues, "rows": UnlistedValuesRowsOnly}[path]
        queries = unlisted(engine=data.engine)
        for attribute in ("country", "device", "plan"):
            only = (Filter(attribute, (value,)),)
            counted = queries.answer(Query("count", filters=only, group_by=("segment",)))
            assert counted.total.n == 0 and [g.n for g in counted.groups] == [0] * len(NAMES)
            median = queries.answer(Query("median", features=("sessions",), filters=only))
            assert (median.total.n, median.total.value) == (0, None)
            listed = queries.answer(Query("list", filters=only))
            assert (listed.total, listed.members) == (0, [])
            others = queries.answer(
                Query("count", filters=(Filter(attribute, (value,), exclude=True),))
            )
            assert others.total.n == everyone
    with data.engine.connect() as conn:  # a new snapshot: every table still there, unchanged
        still = conn.execute(
            text("SELECT COUNT(*) FROM user_segments WHERE run_id = :run"), {"run": run.id}
        ).scalar_one()
        assert (still, conn.execute(text("SELECT COUNT(*) FROM users")).scalar_one()) == (
            everyone,
            len(users_rows(2)),
        )
