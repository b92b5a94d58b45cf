"""Shared fixtures: every database test runs on SQLite and on MariaDB.

MariaDB comes from TEST_MARIADB_URL (default mysql+pymysql://root@127.0.0.1:3306). Each test
session creates its own database there and drops it at the end. With CI=true an unreachable
server fails the run; on a laptop those tests are skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from segmentation import db
from segmentation.schema import ensure_schema, metadata

# The running assistant (`assistant` fixture) for end-to-end tests.
pytest_plugins = ("tests.servers",)

# The real data sets: $SHARED_DATA_DIR, else ../shared/data beside the clone, else this
# machine's /work/shared/data (for clones made elsewhere, as CI does).
SHARED_DATA = next(
    (
        Path(p)
        for p in (
            os.environ.get("SHARED_DATA_DIR", ""),
            Path(__file__).resolve().parents[2] / "shared" / "data",
            "/work/shared/data",
        )
        if p and Path(p).is_dir()
    ),
    Path(__file__).resolve().parents[2] / "shared" / "data",
)
MARIADB_SERVER = os.environ.get("TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306")
BACKENDS = ("sqlite", "mariadb")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _mariadb_unavailable(reason: str) -> None:
    message = f"MariaDB at {MARIADB_SERVER} is not reachable: {reason}"
    if in_ci():
        pytest.fail(message + " (CI=true: database tests must run)", pytrace=False)
    pytest.skip(message)


def _server_engine():
    return create_engine(MARIADB_SERVER + "/", future=True, connect_args={"connect_timeout": 5})


@pytest.fixture(scope="session")
def mariadb_database():
    """A fresh MariaDB database for this test session: yields its URL."""
    name = f"si_test_{uuid.uuid4().hex[:10]}"
    server = _server_engine()
    try:
        with server.connect() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        server.dispose()
        _mariadb_unavailable(str(exc))
    yield f"{MARIADB_SERVER}/{name}"
    db.dispose_engines()
    with server.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    server.dispose()


def _empty_tables(url: str) -> None:
    engine = db.get_engine(url)
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
        for table in reversed(metadata.sorted_tables):
            conn.exec_driver_sql(f"TRUNCATE TABLE `{table.name}`")
        conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=1")


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """A database URL with the schema created and every table empty, per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        ensure_schema(db.get_engine(url))
    else:
        url = request.getfixturevalue("mariadb_database")
        _empty_tables(url)
    yield url
    db.dispose_engines()


@pytest.fixture
def engine(db_url):
    """The engine for `db_url`."""
    return db.get_engine(db_url)


@pytest.fixture
def mariadb_engine(mariadb_database):
    """An engine on the MariaDB test database, every table empty (MariaDB-only behaviour)."""
    _empty_tables(mariadb_database)
    yield db.get_engine(mariadb_database)
    db.dispose_engines()


@pytest.fixture
def shared_data() -> Path:
    """The real data sets in ../shared/data (never copied into the repo)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data folder {SHARED_DATA} is missing")
    return SHARED_DATA


@pytest.fixture
def use_database(db_url, monkeypatch, tmp_path):
    """Point DATABASE_URL (and the actions' query layer) at `db_url`; charts go to tmp_path."""
    import actions.common

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SI_CHARTS_DIR", str(tmp_path / "charts"))
    monkeypatch.setattr(actions.common, "_queries", None)
    return db_url


@pytest.fixture
def seeded(engine, use_database):
    """A complete run over three clear tiers (30 users each) and a users table."""
    from tests.factories import seed_tiers

    return seed_tiers(engine)


def _service_unavailable(message: str) -> None:
    if in_ci():
        pytest.fail(message + " (CI=true: these tests must run)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Redis for the shared lock store (REDIS_URL, default 127.0.0.1:6379): its URL."""
    from bot.lock_store import RedisUnavailable, connect
    from bot.lock_store import redis_url as configured

    url = configured()
    try:
        connect(url).close()
    except RedisUnavailable as exc:
        _service_unavailable(str(exc))
    return url


@pytest.fixture(scope="session")
def haproxy() -> str:
    """HAProxy for several Rasa servers (scripts/ensure-haproxy installs it): its path."""
    from bot.balancer import haproxy_binary

    try:
        return haproxy_binary()
    except RuntimeError as exc:
        _service_unavailable(str(exc))
