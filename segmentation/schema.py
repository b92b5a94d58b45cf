"""Tables: raw events, optional users, per-user feature tables, and segmentation runs."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine

from segmentation.db import translate_errors

metadata = MetaData()

# SQLite only auto-increments INTEGER PRIMARY KEY; MySQL gets BIGINT.
RowId = BigInteger().with_variant(Integer(), "sqlite")
UserId = String(64)
# MySQL's FLOAT is single precision; numbers the bot says must equal what was computed.
Real = Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql")
MYSQL_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

# --- Loaded files: one row per file loaded, so loading the same file twice adds nothing.
ingested_files = Table(
    "ingested_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("table_name", String(64), nullable=False),
    Column("file_name", String(512), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("mapping", JSON),
    Column("loaded_at", DateTime, nullable=False),
    UniqueConstraint("table_name", "sha256", name="uq_ingested_files_content"),
    **MYSQL_OPTIONS,
)

# --- Raw behaviour events. No index on user_id: features are built by full GROUP BY scans.
clickstream = Table(
    "clickstream",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("user_id", UserId, nullable=False),
    Column("timestamp", DateTime, nullable=False),
    Column("url", String(512), nullable=False),
    Column("referrer", String(512)),
    Column("device", String(64)),
    Column("session_id", String(64)),
    Column("time_spent", Real),
    Column("file_id", Integer, nullable=False),
    **MYSQL_OPTIONS,
)

search_queries = Table(
    "search_queries",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("user_id", UserId, nullable=False),
    Column("timestamp", DateTime, nullable=False),
    Column("query", String(512), nullable=False),
    Column("file_id", Integer, nullable=False),
    **MYSQL_OPTIONS,
)

article_views = Table(
    "article_views",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("user_id", UserId, nullable=False),
    Column("article_id", String(64), nullable=False),
    Column("timestamp", DateTime, nullable=False),
    Column("time_spent", Real),
    Column("file_id", Integer, nullable=False),
    **MYSQL_OPTIONS,
)

EVENT_TABLES = {t.name: t for t in (clickstream, search_queries, article_views)}

# --- Optional attributes per user, for breakdowns by country / device / plan.
users = Table(
    "users",
    metadata,
    Column("user_id", UserId, primary_key=True),
    Column("country", String(64)),
    Column("device", String(64)),
    Column("plan", String(64)),
    Column("signup_date", Date),
    Column("file_id", Integer, nullable=False),
    **MYSQL_OPTIONS,
)

# --- Per-user feature tables (one row per user, numeric columns chosen by the user).
feature_datasets = Table(
    "feature_datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("file_name", String(512), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("id_column", String(128), nullable=False),
    # [{"name": ..., "column": ..., "lower_is_better": bool}, ...]
    Column("features", JSON, nullable=False),
    Column("n_users", Integer, nullable=False),
    Column("report", JSON),
    Column("loaded_at", DateTime, nullable=False),
    **MYSQL_OPTIONS,
)

feature_rows = Table(
    "feature_rows",
    metadata,
    Column("dataset_id", Integer, ForeignKey("feature_datasets.id"), primary_key=True),
    Column("user_id", UserId, primary_key=True),
    Column("features", JSON, nullable=False),
    **MYSQL_OPTIONS,
)

# --- Segmentation runs. A run is current once status is 'complete' (the newest such run).
segmentation_runs = Table(
    "segmentation_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("source", String(200), nullable=False),
    Column("algorithm", String(40), nullable=False),
    Column("k", Integer, nullable=False),
    Column("params", JSON, nullable=False),
    Column("model", JSON),
    Column("metrics", JSON),
    Column("overall", JSON),
    Column("n_users", Integer),
    Column("data_as_of", DateTime),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Index("ix_runs_status", "status", "id"),
    **MYSQL_OPTIONS,
)

user_segments = Table(
    "user_segments",
    metadata,
    Column("run_id", Integer, ForeignKey("segmentation_runs.id"), primary_key=True),
    Column("user_id", UserId, primary_key=True),
    Column("cluster", Integer, nullable=False),
    Column("segment", String(64), nullable=False),
    Column("score", Real, nullable=False),
    Column("distance", Real, nullable=False),
    Column("features", JSON, nullable=False),
    # The user's attributes when the run was built (a snapshot of `users`).
    Column("country", String(64)),
    Column("device", String(64)),
    Column("plan", String(64)),
    Column("signup_date", Date),
    Index("ix_user_segments_segment", "run_id", "segment", "score"),
    **MYSQL_OPTIONS,
)
SNAPSHOT_COLUMNS = ("country", "device", "plan", "signup_date")

segment_profiles = Table(
    "segment_profiles",
    metadata,
    Column("run_id", Integer, ForeignKey("segmentation_runs.id"), primary_key=True),
    Column("segment", String(64), primary_key=True),
    Column("rank", Integer, nullable=False),
    Column("cluster", Integer, nullable=False),
    Column("size", Integer, nullable=False),
    Column("share", Real, nullable=False),
    Column("score", Real, nullable=False),
    Column("means", JSON, nullable=False),
    Column("medians", JSON, nullable=False),
    Column("centre", JSON, nullable=False),
    **MYSQL_OPTIONS,
)


# Per-run aggregates of every feature by segment and attribute values: the "cube" that answers
# filtered counts, sums, means, minima and maxima without reading every user. Two grains:
# by_month false (signup_month NULL: all signup dates together) and true (by signup month).
segment_cells = Table(
    "segment_cells",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("segmentation_runs.id"), nullable=False),
    Column("by_month", Boolean, nullable=False),
    Column("feature", String(191), nullable=False),
    Column("segment", String(64), nullable=False),
    Column("country", String(64)),
    Column("device", String(64)),
    Column("plan", String(64)),
    Column("signup_month", Date),
    Column("n", Integer, nullable=False),
    Column("total", Real, nullable=False),
    Column("minimum", Real, nullable=False),
    Column("maximum", Real, nullable=False),
    Index("ix_segment_cells_lookup", "run_id", "by_month", "feature", "segment"),
    **MYSQL_OPTIONS,
)


# Alerts and digests sent for a run, so a post is never repeated: one row per run, kind and
# channel ("" for the terminal/log); status "sending" while posting, then "sent" or "failed"
# (a failed one is tried again by the next refresh).
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("segmentation_runs.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("message_ts", String(32)),
    Column("detail", JSON),
    Column("error", Text),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("run_id", "kind", "channel", name="uq_alert_deliveries_run"),
    **MYSQL_OPTIONS,
)


def _add_missing_columns(engine: Engine) -> None:
    """Databases created before the attribute snapshot get its (nullable) columns."""
    present = {column["name"] for column in inspect(engine).get_columns("user_segments")}
    missing = [name for name in SNAPSHOT_COLUMNS if name not in present]
    if not missing:
        return
    with engine.begin() as conn:
        for name in missing:
            column = user_segments.c[name]
            kind = column.type.compile(dialect=engine.dialect)
            conn.exec_driver_sql(f"ALTER TABLE user_segments ADD COLUMN {name} {kind} NULL")


def ensure_schema(engine: Engine) -> None:
    """Create any missing table and column (idempotent)."""
    with translate_errors(engine):
        metadata.create_all(engine, checkfirst=True)
        _add_missing_columns(engine)
