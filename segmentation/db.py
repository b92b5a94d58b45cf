"""Engines and connections: one SQLAlchemy Core (2.0 style) code path for SQLite and MySQL."""

from __future__ import annotations

import contextlib
import threading
from typing import Dict, Iterator, Optional, Union

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from segmentation import config
from segmentation.errors import DatabaseUnavailable

_engines: Dict[str, Engine] = {}
_lock = threading.Lock()

# MySQL errors meaning "the server is not there or is going away" (2xxx, 2013 also when a
# read timed out), access denied (1045), unknown database (1049), and a statement stopped by
# its time limit (MariaDB 1969, MySQL 3024).
_MYSQL_UNREACHABLE = {1045, 1049, 1969, 2002, 2003, 2005, 2006, 2013, 2055, 3024}


def describe(url: URL) -> str:
    """The URL without its password, for messages."""
    return url.render_as_string(hide_password=True)


def is_mysql(engine_or_conn) -> bool:
    """True for MySQL and MariaDB."""
    return engine_or_conn.dialect.name in ("mysql", "mariadb")


def use_memory_temp_tables(conn: Connection, limit_bytes: int) -> None:
    """Give this MySQL session's GROUP BYs `limit_bytes` of in-memory temporary tables
    (a session setting; 0 keeps the server's)."""
    if limit_bytes > 0 and is_mysql(conn):
        conn.exec_driver_sql(
            "SET SESSION tmp_table_size = %s, max_heap_table_size = %s",
            (limit_bytes, limit_bytes),
        )


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def mysql_connect_args(timeouts: Optional[Dict[str, float]] = None) -> Dict[str, object]:
    """PyMySQL arguments with bounded connect, read and write waits (config.db_timeouts())."""
    limits = timeouts or config.db_timeouts()
    args: Dict[str, object] = {"charset": "utf8mb4", "connect_timeout": limits["connect"]}
    for kind in ("read", "write"):
        if limits[kind] > 0:
            args[f"{kind}_timeout"] = limits[kind]
    return args


def _statement_limit(seconds: float):
    """A connect hook giving each MySQL session a server-side statement time limit."""

    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if "mariadb" in dbapi_connection.get_server_info().lower():
                cursor.execute("SET SESSION max_statement_time = %s", (seconds,))
            else:  # MySQL limits SELECTs only, in milliseconds
                cursor.execute("SET SESSION max_execution_time = %s", (int(seconds * 1000),))
        finally:
            cursor.close()

    return on_connect


def build_engine(url: URL, **options) -> Engine:
    """A new engine for `url`: SQLite with WAL, or MySQL with bounded waits (connect, read,
    write, pool checkout and, when SI_DB_STATEMENT_TIMEOUT is set, each statement)."""
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            from pathlib import Path

            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, future=True, **options)
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    limits = config.db_timeouts()
    mysql = url.get_backend_name() in ("mysql", "mariadb")
    connect_args = {"local_infile": True, **mysql_connect_args(limits)} if mysql else {}
    engine = create_engine(
        url,
        future=True,
        pool_pre_ping=True,
        pool_recycle=3600,
        pool_timeout=limits["connect"],
        connect_args=connect_args,
        **options,
    )
    if mysql and limits["statement"] > 0:
        event.listen(engine, "connect", _statement_limit(limits["statement"]))
    return engine


def get_engine(url: Optional[str] = None) -> Engine:
    """The engine for `url` (default: `DATABASE_URL` or the embedded SQLite), built lazily once."""
    key = url or config.database_url()
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = build_engine(make_url(key))
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests and process shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _unreachable(exc: BaseException) -> bool:
    """True when the database can't be used at all (down, refused, unknown, no access, too
    slow to answer)."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, OperationalError):
        orig = getattr(exc, "orig", None)
        code = orig.args[0] if orig is not None and orig.args else None
        if isinstance(code, int):
            return code in _MYSQL_UNREACHABLE
        return "unable to open database" in str(orig)
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@contextlib.contextmanager
def translate_errors(target: Union[Engine, URL]) -> Iterator[None]:
    """Turn "cannot connect" driver errors into DatabaseUnavailable naming the database."""
    url = target.url if isinstance(target, Engine) else target
    try:
        yield
    except (DBAPIError, PoolTimeout) as exc:
        if _unreachable(exc):
            reason = str(getattr(exc, "orig", exc)).strip()
            raise DatabaseUnavailable(
                f"cannot reach the database {describe(url)}: {reason}"
            ) from exc
        raise


@contextlib.contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """A connection without a transaction block (reads)."""
    with translate_errors(engine), engine.connect() as conn:
        yield conn


@contextlib.contextmanager
def begin(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction: committed at the end, rolled back on error."""
    with translate_errors(engine), engine.begin() as conn:
        yield conn


def create_database_if_missing(url: str) -> None:
    """For MySQL URLs, create the named database when the server does not have it yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "mysql" or not parsed.database:
        return
    server = create_engine(parsed.set(database=""), future=True, connect_args=mysql_connect_args())
    try:
        with translate_errors(parsed), server.connect() as conn:
            name = parsed.database.replace("`", "``")
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4"))
            conn.commit()
    finally:
        server.dispose()
