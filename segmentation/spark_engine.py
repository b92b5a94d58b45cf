"""The Spark engine: the event features in Spark SQL, the preprocessing and MLlib KMeans
(k-means||) on Spark, then the same naming, metrics and run writing as the scikit-learn engine.

Feature definitions are those of segmentation/features.py, source by source and then joined on
the user (users missing from a source get zeros). The preprocessing is the model's (see
segmentation/model.py): log1p of non-negative columns or IQR capping, then standard scaling with
the population standard deviation, all as Spark column expressions. KMeans runs `n_init` times
(seeds random_state, random_state+1, ...) and keeps the lowest cost, as scikit-learn does.

The per-user features and segments are brought to the driver (one row per user, not per event)
for the shared writer, which writes the run in one transaction.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from segmentation.errors import ConfigError, NoDataError
from segmentation.features import DEFAULT_EVENT_FEATURES, EVENT_FEATURES, FeatureFrame, FeatureSpec
from segmentation.model import SegmentModel, outlier_state
from segmentation.spark_io import dialect_of, parse_event_files, read_file, read_table, session

EXACT_QUANTILES_MAX_USERS = 10_000_000


class SparkEngine:
    """aggregate / fit / assign on Spark (segmentation.engine's interface)."""

    name = "spark"

    def __init__(
        self,
        master: Optional[str] = None,
        event_files: Optional[Sequence[str]] = None,
        partitions: int = 8,
        spark=None,
    ) -> None:
        self.master = master
        self.files = parse_event_files(list(event_files or []))
        self.partitions = partitions
        self._spark = spark
        self._owned = False  # stop() ends only a session this engine started
        self._features = None  # the per-user Spark DataFrame (cached)
        self._fitted = None  # (MLlib KMeansModel, the scaled frame, rank of each cluster id)
        self.timings: Dict[str, float] = {}

    def spark(self, db=None):
        """The Spark session: the one already active in this process, or a new one (which
        `stop` ends)."""
        if self._spark is None:
            from pyspark.sql import SparkSession

            self._spark = SparkSession.getActiveSession()
            if self._spark is None:
                self._spark = session(self.master, dialect_of(db) if db is not None else None)
                self._owned = True
        return self._spark

    # --- aggregate -------------------------------------------------------------------------

    def _events(self, db, table: str):
        if table in self.files:
            return read_file(self.spark(db), table, self.files[table])
        return read_table(self.spark(db), db, table, self.partitions)

    def aggregate(
        self,
        db,
        source: str = "events",
        features: Optional[Sequence[str]] = None,
        lower_is_better: Optional[Sequence[str]] = None,
        window: Optional[timedelta] = None,
    ) -> FeatureFrame:
        """Per-user event features computed by Spark, brought to the driver sorted by user."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        if source != "events":
            raise ConfigError("the Spark engine builds from events (tables or --events-file)")
        if lower_is_better is not None:
            raise ConfigError("--lower applies to feature tables; event features are fixed")
        wanted = list(features or DEFAULT_EVENT_FEATURES)
        unknown = [name for name in wanted if name not in EVENT_FEATURES]
        if unknown:
            raise ConfigError(f"unknown feature(s) {', '.join(unknown)}")
        started = time.perf_counter()
        raw = {
            t: self._events(db, t).persist(StorageLevel.MEMORY_AND_DISK)
            for t in ("clickstream", "search_queries", "article_views")
        }
        counts = {table: frame.count() for table, frame in raw.items()}
        self.timings["read"] = time.perf_counter() - started
        step = time.perf_counter()
        since = None
        if window is not None:
            last = [raw[t].agg(F.max("timestamp")).first()[0] for t in raw]
            last = [stamp for stamp in last if stamp is not None]
            if last:
                since = max(last) - window
                raw = {
                    t: frame.where(F.col("timestamp") >= F.lit(since)) for t, frame in raw.items()
                }
                counts = {table: frame.count() for table, frame in raw.items()}
        joined = _per_user(raw)
        values = _feature_columns(joined, wanted).persist(StorageLevel.MEMORY_AND_DISK)
        frame = values.toPandas()
        for frame_ in raw.values():
            frame_.unpersist()
        if frame.empty:
            raise NoDataError("no behaviour events to segment: load events or name event files")
        data_as_of = pd.Timestamp(frame.pop("data_as_of").iloc[0]).to_pydatetime()
        frame = frame.set_index("user_id").sort_index()
        if "recency_days" in frame:  # numpy's rounding (half to even), not Spark's (half up)
            frame["recency_days"] = frame["recency_days"].round(4)
        frame.index.name = "user_id"
        self._features = values
        self.timings["aggregate"] = time.perf_counter() - step
        master = self.spark(db).sparkContext.master
        detail = {"events": counts, "engine": "spark", "master": master}
        if self.files:
            detail["files"] = dict(self.files)
        if since is not None:
            detail["since"] = str(since)
        return FeatureFrame(
            frame=frame[wanted].astype(float),
            specs=[EVENT_FEATURES[name] for name in wanted],
            source="events",
            data_as_of=data_as_of,
            detail=detail,
        )

    # --- fit and assign --------------------------------------------------------------------

    def fit(self, features: FeatureFrame, used: Sequence[FeatureSpec], settings) -> SegmentModel:
        """Outlier handling and scaling statistics from Spark, then MLlib KMeans."""
        from pyspark.ml.clustering import KMeans
        from pyspark.sql import functions as F

        if settings.algorithm != "kmeans":
            raise ConfigError("the Spark engine fits kmeans (MLlib k-means||) only")
        step = time.perf_counter()
        names = [spec.name for spec in used]
        frame = self._frame(features, names)
        state = _outlier_state(frame, names, settings.outliers)
        handled = _apply(frame, names, state)
        stats = handled.agg(
            *[F.avg(n).alias(f"m_{n}") for n in names],
            *[F.stddev_pop(n).alias(f"s_{n}") for n in names],
        ).first()
        mean = [float(stats[f"m_{n}"]) for n in names]
        scale = [float(stats[f"s_{n}"]) or 1.0 for n in names]
        scaled = _vectors(handled, names, mean, scale).persist()
        best = None
        for attempt in range(settings.n_init):
            estimator = KMeans(
                k=settings.k,
                seed=settings.random_state + attempt,
                initMode="k-means||",
                maxIter=300,
                tol=1e-4,
            )
            fitted = estimator.fit(scaled)
            if best is None or fitted.summary.trainingCost < best.summary.trainingCost:
                best = fitted
        centres = np.array([np.asarray(c, dtype=float) for c in best.clusterCenters()])
        model = SegmentModel.from_fit(
            names,
            [spec.lower_is_better for spec in used],
            state,
            mean,
            scale,
            centres,
            settings.segment_names(),
        )
        order = [_matching_row(centres, centre) for centre in model.centres]
        self._fitted = (best, scaled, {cluster: rank for rank, cluster in enumerate(order)})
        self.timings["cluster"] = time.perf_counter() - step
        return model

    def assign(self, features: FeatureFrame, model: SegmentModel) -> np.ndarray:
        """Each user's rank from MLlib's prediction, in `features.frame` row order."""
        kmeans, scaled, rank_of = self._fitted
        step = time.perf_counter()
        predicted = kmeans.transform(scaled).select("user_id", "prediction").toPandas()
        ranks = predicted["prediction"].map(rank_of).to_numpy()
        by_user = pd.Series(ranks, index=predicted["user_id"]).reindex(features.frame.index)
        scaled.unpersist()
        self.timings["assign"] = time.perf_counter() - step
        return by_user.to_numpy(dtype=int)

    def _frame(self, features: FeatureFrame, names: List[str]):
        """The Spark per-user frame `aggregate` made."""
        if self._features is None:
            raise ConfigError("the Spark engine fits the features its own aggregate made")
        return self._features.select("user_id", *names)

    def stop(self) -> None:
        """Stop the Spark session if this engine started it."""
        if self._spark is not None and self._owned:
            self._spark.stop()
        self._spark = None


def _matching_row(centres: np.ndarray, centre: Sequence[float]) -> int:
    return int(np.argmin(((centres - np.asarray(centre)) ** 2).sum(axis=1)))


def _per_user(raw: dict):
    """Each source grouped by user on its own, then joined (outer) on user_id."""
    from pyspark.sql import functions as F

    clicks = (
        raw["clickstream"]
        .groupBy("user_id")
        .agg(
            F.count(F.lit(1)).alias("clicks"),
            F.countDistinct("url").alias("distinct_pages"),
            F.countDistinct(F.to_date("timestamp")).alias("active_days"),
            F.countDistinct("session_id").alias("sessions"),
            F.coalesce(F.sum("time_spent"), F.lit(0.0)).alias("click_time"),
            F.count("time_spent").alias("timed_clicks"),
            F.max("timestamp").alias("last_click"),
        )
    )
    searches = (
        raw["search_queries"]
        .groupBy("user_id")
        .agg(F.count(F.lit(1)).alias("searches"), F.max("timestamp").alias("last_search"))
    )
    articles = (
        raw["article_views"]
        .groupBy("user_id")
        .agg(
            F.count(F.lit(1)).alias("article_views"),
            F.coalesce(F.sum("time_spent"), F.lit(0.0)).alias("total_article_time"),
            F.count("time_spent").alias("timed_views"),
            F.max("timestamp").alias("last_article"),
        )
    )
    return clicks.join(searches, "user_id", "full_outer").join(articles, "user_id", "full_outer")


def _ratio(numerator, denominator):
    from pyspark.sql import functions as F

    return F.when(denominator > 0, numerator / denominator).otherwise(F.lit(0.0))


def _feature_columns(joined, wanted: List[str]):
    """The features' definitions (features.aggregate_event_features) as Spark columns."""
    from pyspark.sql import functions as F

    counts = ["clicks", "distinct_pages", "active_days", "sessions", "searches", "article_views"]
    sums = ["total_article_time", "click_time", "timed_clicks", "timed_views"]
    frame = joined.fillna(0, subset=counts + sums)
    last_seen = F.greatest("last_click", "last_search", "last_article")
    frame = frame.withColumn("last_seen", last_seen)
    data_as_of = frame.agg(F.max("last_seen")).first()[0]
    frame = frame.withColumn("data_as_of", F.lit(data_as_of).cast("timestamp"))
    seconds = F.col("data_as_of").cast("double") - F.col("last_seen").cast("double")
    columns = {name: F.col(name).cast("double") for name in counts + ["total_article_time"]}
    columns["avg_article_time"] = _ratio(F.col("total_article_time"), F.col("timed_views"))
    columns["avg_click_time"] = _ratio(F.col("click_time"), F.col("timed_clicks"))
    columns["recency_days"] = seconds / 86400.0  # rounded on the driver, as features.py does
    return frame.select(
        "user_id", "data_as_of", *[columns[name].cast("double").alias(name) for name in wanted]
    )


def _outlier_state(frame, names: List[str], method: str) -> dict:
    from pyspark.sql import functions as F

    row = frame.agg(*[F.min(n).alias(n) for n in names]).first()
    minimum = [float(row[n]) for n in names]
    if method != "iqr":
        return outlier_state(method, minimum)
    exact = frame.count() <= EXACT_QUANTILES_MAX_USERS  # numpy's linear interpolation
    quantile = F.percentile if exact else F.percentile_approx
    row = frame.agg(*[quantile(n, F.array(F.lit(0.25), F.lit(0.75))).alias(n) for n in names])
    quartiles = row.first()
    q1 = [float(quartiles[n][0]) for n in names]
    q3 = [float(quartiles[n][1]) for n in names]
    return outlier_state(method, minimum, q1, q3)


def _apply(frame, names: List[str], state: dict):
    """The outlier step as Spark column expressions (model.apply_outliers)."""
    from pyspark.sql import functions as F

    columns = []
    for i, name in enumerate(names):
        column = F.col(name)
        if state["method"] == "log" and state["log_columns"][i]:
            column = F.log1p(column)
        elif state["method"] == "iqr":
            column = F.least(F.greatest(column, F.lit(state["lower"][i])), F.lit(state["upper"][i]))
        columns.append(column.alias(name))
    return frame.select("user_id", *columns)


def _vectors(handled, names: List[str], mean: List[float], scale: List[float]):
    """Standardised features assembled into MLlib's `features` vector column."""
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F

    standard = handled.select(
        "user_id",
        *[((F.col(n) - F.lit(m)) / F.lit(s)).alias(n) for n, m, s in zip(names, mean, scale)],
    )
    return VectorAssembler(inputCols=names, outputCol="features").transform(standard)
