"""SQL for filtered, grouped measures over one run: the primitive every data answer uses.

`cell_stats` returns, for every segment and group, the number of users matching the filters
and the sum, minimum and maximum of one feature: from the run's cells (segmentation.cube)
when they can answer exactly, else from the users' rows. `median` and `members` always read
the users' rows. Everything is one SQL statement with bound parameters, aggregated in the
database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, List, Optional, Sequence, Tuple

from sqlalchemy import Float, cast, desc, extract, func, or_, select
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from segmentation.errors import NoDataError
from segmentation.query import Filter
from segmentation.results import RunInfo
from segmentation.schema import segment_cells, user_segments

CATEGORY_KEYS = ("country", "device", "plan")
DATE_KEYS = ("signup_month", "signup_year")
GROUP_KEYS = CATEGORY_KEYS + DATE_KEYS


@dataclass(frozen=True)
class CellRow:
    """Users of one segment and group (key values in group-key order) matching the filters."""

    segment: str
    keys: Tuple[Any, ...]
    n: int
    total: float = 0.0
    minimum: Optional[float] = None
    maximum: Optional[float] = None


def require_user_rows(run: RunInfo) -> None:
    """Refuse to count the users' rows of a run whose rows retention removed (they would
    read as zero users)."""
    if run.params.get("pruned"):
        raise NoDataError(
            f"the per-user rows of {run.label} were removed by retention (--keep-runs): only "
            "its sizes, shares, averages and cells are kept"
        )


def json_path(feature: str) -> str:
    """The JSON path of a feature inside user_segments.features."""
    escaped = feature.replace("\\", "\\\\").replace('"', '\\"')
    return f'$."{escaped}"'


def feature_value(conn: Connection, feature: str) -> ColumnElement:
    """A user's value of `feature`, as a number, for this database."""
    extracted = func.json_extract(user_segments.c.features, json_path(feature))
    if conn.dialect.name in ("mysql", "mariadb"):
        return cast(extracted, mysql.DOUBLE(asdecimal=False))
    return cast(extracted, Float)


def _month_start(conn: Connection, column) -> ColumnElement:
    if conn.dialect.name in ("mysql", "mariadb"):
        return func.date_format(column, "%Y-%m-01")
    return func.strftime("%Y-%m-01", column)


def _normalise_key(value: Any) -> Any:
    """Dates come back as text from some drivers: months as date objects, years as ints."""
    if isinstance(value, str) and len(value) == 10 and value[4] == "-":
        return date.fromisoformat(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _month_aligned(f: Filter) -> bool:
    return all(d is None or d.day == 1 for d in (f.start, f.end))


def cells_apply(run: RunInfo, filters: Sequence[Filter], keys: Sequence[str]) -> bool:
    """True when the run's cells answer these filters and groups exactly."""
    return bool(run.params.get("cells")) and all(
        f.attribute in CATEGORY_KEYS or (f.attribute == "signup_date" and _month_aligned(f))
        for f in filters
    )


def _where(columns, filters: Sequence[Filter], date_column) -> List[ColumnElement]:
    clauses = []
    for f in filters:
        if f.values and f.exclude:
            column = columns[f.attribute]
            clauses.append(or_(column.notin_(list(f.values)), column.is_(None)))
        elif f.values:
            clauses.append(columns[f.attribute].in_(list(f.values)))
        else:
            if f.start is not None:
                clauses.append(date_column >= f.start)
            if f.end is not None:
                clauses.append(date_column < f.end)
    return clauses


def cell_stats(
    conn: Connection,
    run: RunInfo,
    feature: Optional[str],
    filters: Sequence[Filter] = (),
    keys: Sequence[str] = (),
    segments: Sequence[str] = (),
) -> List[CellRow]:
    """Per segment and group: users matching `filters` (and `segments`, if given), with the
    sum/min/max of `feature` when one is given."""
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown:
        raise ValueError(f"cannot group by {unknown}")
    if cells_apply(run, filters, keys):
        rows = _from_cells(conn, run, feature, filters, keys, segments)
    else:
        rows = _from_users(conn, run, feature, filters, keys, segments)
    if "signup_year" in keys:
        rows = _roll_up_years(rows, list(keys).index("signup_year"))
    return rows


def _from_cells(conn, run, feature, filters, keys, segments) -> List[CellRow]:
    c = segment_cells.c
    by_month = any(f.attribute == "signup_date" for f in filters) or any(
        k in DATE_KEYS for k in keys
    )
    columns = [c.signup_month if k in DATE_KEYS else c[k] for k in keys]
    where = [
        c.run_id == run.id,
        c.by_month == by_month,
        c.feature == (feature or run.features[0]),
        *_where(c, filters, c.signup_month),
    ]
    if segments:
        where.append(c.segment.in_(list(segments)))
    query = (
        select(
            c.segment,
            *columns,
            func.sum(c.n),
            func.sum(c.total),
            func.min(c.minimum),
            func.max(c.maximum),
        )
        .where(*where)
        .group_by(c.segment, *columns)
    )
    return [_cell(row, len(keys), feature) for row in conn.execute(query)]


def _from_users(conn, run, feature, filters, keys, segments) -> List[CellRow]:
    require_user_rows(run)
    u = user_segments.c
    columns = []
    for key in keys:
        if key in DATE_KEYS:  # grouped by month here; years are rolled up afterwards
            columns.append(_month_start(conn, u.signup_date))
        else:
            columns.append(u[key])
    stats = [func.count()]
    if feature:
        value = feature_value(conn, feature)
        stats += [func.sum(value), func.min(value), func.max(value)]
    where = [u.run_id == run.id, *_where(u, filters, u.signup_date)]
    if segments:
        where.append(u.segment.in_(list(segments)))
    query = select(u.segment, *columns, *stats).where(*where).group_by(u.segment, *columns)
    return [_cell(row, len(keys), feature) for row in conn.execute(query)]


def _cell(row, n_keys: int, feature: Optional[str]) -> CellRow:
    keys = tuple(_normalise_key(v) for v in row[1 : 1 + n_keys])
    n = int(row[1 + n_keys])
    if not feature:
        return CellRow(row[0], keys, n)
    total, low, high = row[2 + n_keys : 5 + n_keys]
    return CellRow(
        row[0],
        keys,
        n,
        float(total or 0.0),
        None if low is None else float(low),
        None if high is None else float(high),
    )


def _roll_up_years(rows: List[CellRow], position: int) -> List[CellRow]:
    """Month keys -> year keys, summing the cells of each year."""
    merged = {}
    for row in rows:
        month = row.keys[position]
        year = month.year if isinstance(month, date) else month
        keys = row.keys[:position] + (year,) + row.keys[position + 1 :]
        merged.setdefault((row.segment, keys), []).append(row)
    return [combine(parts, segment, keys) for (segment, keys), parts in merged.items()]


def combine(parts: Sequence[CellRow], segment: str = "", keys: Tuple[Any, ...] = ()) -> CellRow:
    """Several cells as one (sums of counts and totals, min of minima, max of maxima)."""
    lows = [p.minimum for p in parts if p.minimum is not None]
    highs = [p.maximum for p in parts if p.maximum is not None]
    return CellRow(
        segment,
        keys,
        sum(p.n for p in parts),
        sum(p.total for p in parts),
        min(lows) if lows else None,
        max(highs) if highs else None,
    )


def _user_filter(run: RunInfo, filters, segments, keys_equal=()) -> List[ColumnElement]:
    u = user_segments.c
    where = [u.run_id == run.id, *_where(u, filters, u.signup_date)]
    if segments:
        where.append(u.segment.in_(list(segments)))
    return where + list(keys_equal)


def members_where(run: RunInfo, filters: Sequence[Filter] = (), segments: Sequence[str] = ()):
    """The conditions on user_segments rows that `members` and `median` count (exports)."""
    return _user_filter(run, filters, segments)


def group_condition(conn: Connection, key: str, value: Any) -> ColumnElement:
    """users_segments rows whose group `key` equals `value` (None: unknown)."""
    u = user_segments.c
    if key == "signup_month":
        column = _month_start(conn, u.signup_date)
        value = value.isoformat() if isinstance(value, date) else value
    elif key == "signup_year":
        column = extract("year", u.signup_date)
    else:
        column = u[key]
    return column.is_(None) if value is None else column == value


def median(
    conn: Connection,
    run: RunInfo,
    feature: str,
    filters: Sequence[Filter] = (),
    segments: Sequence[str] = (),
    conditions: Sequence[ColumnElement] = (),
) -> Tuple[int, Optional[float]]:
    """(users, exact median of `feature`) over the matching users (the mean of the two
    middle values when their number is even, as pandas computes it)."""
    require_user_rows(run)
    where = _user_filter(run, filters, segments, conditions)
    n = conn.execute(select(func.count()).select_from(user_segments).where(*where)).scalar_one()
    if not n:
        return 0, None
    value = feature_value(conn, feature)
    middle = (
        select(value).where(*where).order_by(value).limit(1 if n % 2 else 2).offset((n - 1) // 2)
    )
    values = [float(v) for v in conn.execute(middle).scalars()]
    return int(n), sum(values) / len(values)


def members(
    conn: Connection,
    run: RunInfo,
    filters: Sequence[Filter] = (),
    segments: Sequence[str] = (),
    feature: Optional[str] = None,
    order: str = "most",
    limit: int = 10,
    offset: int = 0,
) -> Tuple[int, list]:
    """(users matching, one page of them ordered by `feature` or by engagement score)."""
    require_user_rows(run)
    u = user_segments.c
    where = _user_filter(run, filters, segments)
    if cells_apply(run, filters, ()):  # the run's cells count them without a scan
        total = sum(r.n for r in cell_stats(conn, run, None, filters, (), segments))
    else:
        total = conn.execute(
            select(func.count()).select_from(user_segments).where(*where)
        ).scalar_one()
    key = feature_value(conn, feature) if feature else u.score
    ordering = (desc(key), desc(u.user_id)) if order == "most" else (key, u.user_id)
    rows = conn.execute(
        select(u.user_id, u.segment, u.score, u.features, *(u[c] for c in CATEGORY_KEYS))
        .where(*where)
        .order_by(*ordering)
        .limit(limit)
        .offset(offset)
    ).all()
    return int(total), rows


def users_exist(conn: Connection, run: RunInfo, candidates: Sequence[str]) -> List[str]:
    """Which of `candidates` are user ids of the run (one query, bound parameters)."""
    if not candidates:
        return []
    u = user_segments.c
    found = conn.execute(
        select(u.user_id).where(u.run_id == run.id, u.user_id.in_(list(candidates)))
    ).scalars()
    return list(found)
