"""Per-user features, aggregated inside the database.

Each event table is aggregated on its own with one GROUP BY user_id scan; the three per-user
results are then joined on user_id (an outer join: a user missing from a source gets zeros).
Raw event tables are never joined to each other: that multiplies rows per user (the seed
project's query took 76.8 s for 1,000 users with 10 events per source).

On MySQL/MariaDB the three scans run side by side on two connections (each GROUP BY runs on one
core), with room for their temporary tables in memory; loads that land meanwhile are detected
and the build stops rather than mix data from before and after them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from sqlalchemy import Table, distinct, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select

from segmentation.config import aggregate_tmp_table_bytes
from segmentation.db import connect, is_mysql, use_memory_temp_tables
from segmentation.errors import ConfigError, NoDataError, SegmentationError
from segmentation.schema import (
    article_views,
    clickstream,
    feature_datasets,
    feature_rows,
    ingested_files,
    search_queries,
)


@dataclass(frozen=True)
class FeatureSpec:
    """A behaviour feature: how to say it, and whether a higher value means more engaged."""

    name: str
    label: str
    unit: str = ""
    lower_is_better: bool = False
    aliases: Tuple[str, ...] = ()  # other words people use for it (besides name and label)


EVENT_FEATURES: Dict[str, FeatureSpec] = {
    spec.name: spec
    for spec in (
        FeatureSpec("clicks", "clicks", "clicks", aliases=("page views", "clicked")),
        FeatureSpec(
            "distinct_pages",
            "distinct pages viewed",
            "pages",
            aliases=("unique pages", "different pages", "pages visited", "distinct urls"),
        ),
        FeatureSpec("active_days", "active days", "days", aliases=("days of activity",)),
        FeatureSpec("sessions", "sessions", "sessions", aliases=("visits", "logins")),
        FeatureSpec(
            "recency_days",
            "days since last activity",
            "days",
            lower_is_better=True,
            aliases=("recency", "days since last visit", "last seen", "last active"),
        ),
        FeatureSpec("searches", "searches", "searches", aliases=("search queries", "searched")),
        FeatureSpec(
            "article_views",
            "article views",
            "views",
            aliases=("articles read", "articles viewed", "article reads", "articles"),
        ),
        FeatureSpec(
            "total_article_time",
            "total time on articles",
            "s",
            aliases=("total reading time", "total article time"),
        ),
        FeatureSpec(
            "avg_article_time",
            "average time per article",
            "s",
            aliases=("reading time", "time per article", "time on articles", "article time"),
        ),
        FeatureSpec(
            "avg_click_time",
            "average time per click",
            "s",
            aliases=("time per click", "time on page", "dwell time", "click time"),
        ),
    )
}
DEFAULT_EVENT_FEATURES: Tuple[str, ...] = tuple(EVENT_FEATURES)


@dataclass
class FeatureFrame:
    """One row per user (index: user_id, sorted), one column per feature."""

    frame: pd.DataFrame
    specs: List[FeatureSpec]
    source: str
    data_as_of: Optional[datetime] = None
    detail: Optional[dict] = None


def _since(query: Select, table: Table, since: Optional[datetime]) -> Select:
    """Only events at or after `since` (a --window), when given."""
    return query if since is None else query.where(table.c.timestamp >= since)


def _clicks_query(since: Optional[datetime] = None) -> Select:
    c = clickstream.c
    query = select(
        c.user_id,
        func.count().label("clicks"),
        func.count(distinct(c.url)).label("distinct_pages"),
        func.count(distinct(func.date(c.timestamp))).label("active_days"),
        func.count(distinct(c.session_id)).label("sessions"),
        func.coalesce(func.sum(c.time_spent), 0).label("click_time"),
        func.count(c.time_spent).label("timed_clicks"),
        func.max(c.timestamp).label("last_click"),
    )
    return _since(query, clickstream, since).group_by(c.user_id)


def _searches_query(since: Optional[datetime] = None) -> Select:
    s = search_queries.c
    query = select(
        s.user_id, func.count().label("searches"), func.max(s.timestamp).label("last_search")
    )
    return _since(query, search_queries, since).group_by(s.user_id)


def _articles_query(since: Optional[datetime] = None) -> Select:
    a = article_views.c
    query = select(
        a.user_id,
        func.count().label("article_views"),
        func.coalesce(func.sum(a.time_spent), 0).label("total_article_time"),
        func.count(a.time_spent).label("timed_views"),
        func.max(a.timestamp).label("last_article"),
    )
    return _since(query, article_views, since).group_by(a.user_id)


SOURCE_QUERIES: Sequence[Tuple[Table, callable]] = (
    (clickstream, _clicks_query),
    (search_queries, _searches_query),
    (article_views, _articles_query),
)


def _read_grouped(conn, query: Select) -> pd.DataFrame:
    result = conn.execute(query)
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    return frame.set_index("user_id")


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        values = numerator.astype(float) / denominator.astype(float)
    return values.where(denominator > 0, 0.0)


def _loads_marker(conn: Connection) -> tuple:
    """Changes whenever a file is loaded (or removed) by ingest."""
    return tuple(conn.execute(select(func.count(), func.max(ingested_files.c.id))).one())


def _read_source(engine: Engine, make_query, since: Optional[datetime]) -> pd.DataFrame:
    """One source's GROUP BY on its own MySQL connection, temporary tables kept in memory."""
    with connect(engine) as conn:
        use_memory_temp_tables(conn, aggregate_tmp_table_bytes())
        return _read_grouped(conn, make_query(since))


def last_event_time(conn: Connection) -> Optional[datetime]:
    """The newest event's timestamp over every event table (None when there is none)."""
    stamps = [
        conn.execute(select(func.max(table.c.timestamp))).scalar() for table, _ in SOURCE_QUERIES
    ]
    stamps = [pd.Timestamp(s).to_pydatetime() for s in stamps if s is not None]
    return max(stamps) if stamps else None


def window_start(engine: Engine, window: Optional[timedelta]) -> Optional[datetime]:
    """The first instant counted by a `window` ending at the data's last event."""
    if window is None:
        return None
    with connect(engine) as conn:
        last = last_event_time(conn)
    return None if last is None else last - window


def _read_sources(engine: Engine, since: Optional[datetime] = None) -> List[pd.DataFrame]:
    """Each source's per-user aggregates (events at or after `since`), in SOURCE_QUERIES
    order."""
    if not is_mysql(engine):  # SQLite: one connection, one snapshot
        with connect(engine) as conn:
            return [_read_grouped(conn, make_query(since)) for _, make_query in SOURCE_QUERIES]
    with connect(engine) as conn:
        before = _loads_marker(conn)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(_read_source, engine, q, since) for _, q in SOURCE_QUERIES]
        parts = [future.result() for future in futures]
    with connect(engine) as conn:
        if _loads_marker(conn) != before:
            raise SegmentationError(
                "events were loaded while the features were being read; nothing was written. "
                "Run the build again once the load has finished."
            )
    return parts


def aggregate_event_features(
    engine: Engine,
    features: Optional[Sequence[str]] = None,
    window: Optional[timedelta] = None,
) -> FeatureFrame:
    """Per-user event features: three GROUP BY scans, joined on user_id, zeros where missing.
    With a `window`, only events in that span before the data's last event count (users with
    none in it are left out)."""
    wanted = list(features or DEFAULT_EVENT_FEATURES)
    unknown = [name for name in wanted if name not in EVENT_FEATURES]
    if unknown:
        raise ConfigError(
            f"unknown feature(s) {', '.join(unknown)}; choose from {', '.join(EVENT_FEATURES)}"
        )
    since = window_start(engine, window)
    parts = _read_sources(engine, since)
    counts = {
        table.name: int(part.iloc[:, 0].sum()) if len(part) else 0
        for (table, _), part in zip(SOURCE_QUERIES, parts)
    }
    joined = pd.concat(parts, axis=1, join="outer").sort_index()
    if joined.empty:
        raise NoDataError(
            "no behaviour events loaded yet: load clickstream, search_queries or article_views "
            "with `python -m segmentation ingest`, or run `python -m segmentation demo`"
        )
    last_seen = pd.concat(
        [pd.to_datetime(joined[col]) for col in ("last_click", "last_search", "last_article")],
        axis=1,
    ).max(axis=1)
    data_as_of = last_seen.max()
    numeric = joined.drop(columns=["last_click", "last_search", "last_article"]).fillna(0)
    values = pd.DataFrame(index=joined.index)
    for name in ("clicks", "distinct_pages", "active_days", "sessions", "searches"):
        values[name] = numeric[name].astype(float)
    values["article_views"] = numeric["article_views"].astype(float)
    values["total_article_time"] = numeric["total_article_time"].astype(float)
    values["avg_article_time"] = _ratio(numeric["total_article_time"], numeric["timed_views"])
    values["avg_click_time"] = _ratio(numeric["click_time"], numeric["timed_clicks"])
    values["recency_days"] = ((data_as_of - last_seen).dt.total_seconds() / 86400.0).round(4)
    values.index.name = "user_id"
    return FeatureFrame(
        frame=values[wanted],
        specs=[EVENT_FEATURES[name] for name in wanted],
        source="events",
        data_as_of=data_as_of.to_pydatetime(),
        detail={"events": counts, **({"since": str(since)} if since is not None else {})},
    )


def readable_column(name: str) -> str:
    """A feature table's column as people say it: "support_tickets_raised" -> "support
    tickets raised" (names with spaces stay as they are)."""
    return " ".join(name.replace("_", " ").split()) if "_" in name else name


def load_dataset_features(
    engine: Engine,
    name: str,
    features: Optional[Sequence[str]] = None,
    lower_is_better: Optional[Sequence[str]] = None,
) -> FeatureFrame:
    """The per-user feature table `name`, as loaded by `ingest-features`."""
    with connect(engine) as conn:
        dataset = conn.execute(
            select(feature_datasets).where(feature_datasets.c.name == name)
        ).first()
        if dataset is None:
            known = conn.execute(select(feature_datasets.c.name)).scalars().all()
            raise NoDataError(
                f"no feature table named '{name}'"
                + (f"; loaded: {', '.join(known)}" if known else "; load one with ingest-features")
            )
        rows = conn.execute(
            select(feature_rows.c.user_id, feature_rows.c.features).where(
                feature_rows.c.dataset_id == dataset.id
            )
        ).all()
    declared = {item["name"]: bool(item.get("lower_is_better")) for item in dataset.features}
    wanted = list(features or declared)
    unknown = [feature for feature in wanted if feature not in declared]
    if unknown:
        raise ConfigError(
            f"feature table '{name}' has no feature(s) {', '.join(unknown)}; "
            f"it has {', '.join(declared)}"
        )
    if lower_is_better is None:
        lower = {feature for feature, is_lower in declared.items() if is_lower}
    else:
        lower = set(lower_is_better)
        if lower - set(declared):
            raise ConfigError(
                f"--lower names unknown feature(s): {', '.join(sorted(lower - set(declared)))}"
            )
    frame = pd.DataFrame(
        [row.features for row in rows],
        index=pd.Index([row.user_id for row in rows], name="user_id"),
    )
    frame = frame[wanted].astype(float).sort_index()
    specs = [FeatureSpec(f, readable_column(f), "", lower_is_better=f in lower) for f in wanted]
    return FeatureFrame(
        frame=frame,
        specs=specs,
        source=f"features:{name}",
        detail={
            "dataset_id": dataset.id,
            "file": dataset.file_name,
            "loaded_at": str(dataset.loaded_at),
        },
    )


def load_features(
    engine: Engine,
    source: str = "events",
    features: Optional[Sequence[str]] = None,
    lower_is_better: Optional[Sequence[str]] = None,
    window: Optional[timedelta] = None,
) -> FeatureFrame:
    """Features for `source`: "events" (the event tables, optionally only the last `window`
    of them) or "features:NAME" (a feature table)."""
    if source == "events":
        if lower_is_better is not None:
            raise SegmentationError("--lower applies to feature tables; event features are fixed")
        return aggregate_event_features(engine, features, window)
    if window is not None:
        raise ConfigError("--window applies to events; a feature table has no event times")
    if source.startswith("features:"):
        return load_dataset_features(engine, source.split(":", 1)[1], features, lower_is_better)
    raise SegmentationError(f"unknown source '{source}': use 'events' or 'features:NAME'")
