"""Spark's side of the plumbing: a session, the JDBC driver for our database, and the event
tables read from MySQL/MariaDB (partitioned on the primary key) or from Parquet/CSV files.

pyspark is an optional extra (requirements-spark.txt); it is imported only here and in
segmentation/spark_engine.py. Java and the JDBC jars are Debian packages that
scripts/ensure-spark installs when missing (`default-jre-headless`, `libmariadb-java`,
`libxerial-sqlite-jdbc-java`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from sqlalchemy import func, select
from sqlalchemy.engine import Engine, make_url

from segmentation.errors import ConfigError
from segmentation.features import SOURCE_QUERIES

JAR_DIRS = (Path("/usr/share/java"),)
JARS = {"mysql": "mariadb-java-client.jar", "sqlite": "sqlite-jdbc.jar"}
DRIVERS = {"mysql": "org.mariadb.jdbc.Driver", "sqlite": "org.sqlite.JDBC"}
# The columns each event table contributes (what a warehouse export must have).
EVENT_COLUMNS: Dict[str, Tuple[str, ...]] = {
    "clickstream": ("user_id", "timestamp", "url", "session_id", "time_spent"),
    "search_queries": ("user_id", "timestamp"),
    "article_views": ("user_id", "timestamp", "time_spent"),
}


def _import_pyspark():
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "the Spark engine needs pyspark: pip install -r requirements-spark.txt "
            "(and Java 17: scripts/ensure-spark installs it on Debian)"
        ) from exc


def jar_path(dialect: str) -> Path:
    """The JDBC driver jar for `dialect` ("mysql" or "sqlite"), from SI_SPARK_JARS_DIR or
    /usr/share/java."""
    dirs = [Path(os.environ["SI_SPARK_JARS_DIR"])] if os.environ.get("SI_SPARK_JARS_DIR") else []
    for folder in dirs + list(JAR_DIRS):
        candidate = folder / JARS[dialect]
        if candidate.exists():
            return candidate
    raise ConfigError(
        f"no JDBC driver {JARS[dialect]} in {', '.join(str(d) for d in dirs + list(JAR_DIRS))}: "
        "run scripts/ensure-spark (installs libmariadb-java and libxerial-sqlite-jdbc-java)"
    )


def available_jars() -> List[Path]:
    """Every JDBC jar we know that is installed (a session may read either database)."""
    found = []
    for dialect in JARS:
        try:
            found.append(jar_path(dialect))
        except ConfigError:
            pass
    return found


def dialect_of(db: Engine) -> str:
    name = db.dialect.name
    if name in ("mysql", "mariadb"):
        return "mysql"
    if name == "sqlite":
        return "sqlite"
    raise ConfigError(f"the Spark engine reads MySQL/MariaDB or SQLite, not {name}")


def jdbc_options(db: Engine) -> Dict[str, str]:
    """url/driver/user/password for Spark's JDBC source, from the SQLAlchemy engine's URL."""
    url = make_url(str(db.url.render_as_string(hide_password=False)))
    dialect = dialect_of(db)
    if dialect == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ConfigError("the Spark engine needs a file database, not an in-memory one")
        return {"url": f"jdbc:sqlite:{Path(url.database).resolve()}", "driver": DRIVERS[dialect]}
    host = f"{url.host or '127.0.0.1'}:{url.port or 3306}"
    return {
        # jdbc:mysql: picks Spark's MySQL dialect (backquoted names); Connector/J 2.x accepts it.
        "url": f"jdbc:mysql://{host}/{url.database}?connectTimeout=5000&socketTimeout=600000",
        "driver": DRIVERS[dialect],
        "user": url.username or "root",
        "password": url.password or "",
    }


def session(master: Optional[str] = None, dialect: Optional[str] = None, app: str = "segmentation"):
    """A SparkSession on `master` (None: spark-submit's --master, else local[*]) with the JDBC
    jar, UTC time, loopback-only driver and no UI."""
    _import_pyspark()
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder if master is None else SparkSession.builder.master(master)
    builder = (
        builder.appName(f"segment-insights-{app}")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.driver.memory", os.environ.get("SI_SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.sql.shuffle.partitions", os.environ.get("SI_SPARK_SHUFFLE", "8"))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    jars = [str(jar_path(dialect))] if dialect else []
    jars += [str(jar) for jar in available_jars() if str(jar) not in jars]
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def parse_event_files(items: Optional[List[str]]) -> Dict[str, str]:
    """`TABLE=PATH` arguments -> {table: path}; tables are the event tables' names."""
    files: Dict[str, str] = {}
    for item in items or []:
        table, sep, path = item.partition("=")
        if not sep or table not in EVENT_COLUMNS or not path:
            raise ConfigError(
                f"--events-file takes TABLE=PATH with TABLE one of {', '.join(EVENT_COLUMNS)}"
            )
        if not Path(path).exists():
            raise ConfigError(f"--events-file {table}: {path} does not exist")
        files[table] = path
    return files


def read_file(spark, table: str, path: str):
    """One event table exported as Parquet (a file or folder) or CSV with a header row."""
    from pyspark.sql import functions as F

    reader = spark.read
    frame = (
        reader.option("header", "true").csv(path)
        if path.lower().endswith((".csv", ".csv.gz"))
        else reader.parquet(path)
    )
    missing = [c for c in EVENT_COLUMNS[table] if c not in frame.columns]
    if missing:
        raise ConfigError(f"{path} has no column(s) {', '.join(missing)} for {table}")
    frame = frame.select(*EVENT_COLUMNS[table])
    frame = frame.withColumn("user_id", F.col("user_id").cast("string"))
    frame = frame.withColumn("timestamp", F.col("timestamp").cast("timestamp"))
    if "time_spent" in frame.columns:
        frame = frame.withColumn("time_spent", F.col("time_spent").cast("double"))
    return frame


def read_table(spark, db: Engine, table: str, partitions: int):
    """One event table over JDBC, split into `partitions` ranges of its id."""
    source = next(t for t, _ in SOURCE_QUERIES if t.name == table)
    with db.connect() as conn:
        low, high = conn.execute(select(func.min(source.c.id), func.max(source.c.id))).one()
    reader = spark.read.format("jdbc").options(**jdbc_options(db)).option("dbtable", table)
    reader = reader.option("fetchsize", "10000")
    if dialect_of(db) == "sqlite":  # its DATETIME text would be read as a date, REAL as float
        typed = "timestamp STRING" + (", time_spent DOUBLE" if table != "search_queries" else "")
        reader = reader.option("customSchema", typed)
    if low is not None and high > low and partitions > 1:
        reader = reader.options(
            partitionColumn="id",
            lowerBound=str(low),
            upperBound=str(high + 1),
            numPartitions=str(partitions),
        )
    frame = reader.load().select(*EVENT_COLUMNS[table])
    return frame.withColumn("timestamp", frame["timestamp"].cast("timestamp"))
