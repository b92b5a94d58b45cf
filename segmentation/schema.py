"""Tables: raw events, optional users, per-user feature tables, and segmentation runs."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
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
    Index("ix_user_segments_segment", "run_id", "segment", "score"),
    **MYSQL_OPTIONS,
)

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


def ensure_schema(engine: Engine) -> None:
    """Create any missing table (idempotent)."""
    with translate_errors(engine):
        metadata.create_all(engine, checkfirst=True)
