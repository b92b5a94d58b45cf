"""What an engine does, and what every engine shares.

An engine aggregates per-user features, fits a model and assigns users to its segments. Two
implement it: `ScikitLearnEngine` (segmentation/clustering.py: the database aggregates, memory
fits) and `SparkEngine` (segmentation/spark_engine.py: Spark SQL aggregates, MLlib fits). What
surrounds them is shared: dropping constant features, naming segments by engagement
(`SegmentModel.from_fit`), scores, distances, quality metrics, and writing the run (build.py).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import timedelta
from typing import Dict, List, Optional, Protocol, Sequence

import numpy as np

from segmentation.errors import ConfigError, NoDataError
from segmentation.features import FeatureFrame, FeatureSpec
from segmentation.model import SegmentModel

ENGINES = ("scikit-learn", "spark")


class Engine(Protocol):
    """aggregate -> fit -> assign."""

    name: str

    def aggregate(
        self,
        db,
        source: str = "events",
        features: Optional[Sequence[str]] = None,
        lower_is_better: Optional[Sequence[str]] = None,
        window: Optional[timedelta] = None,
    ) -> FeatureFrame:
        """One row per user (sorted by user_id), one column per feature."""

    def fit(self, features: FeatureFrame, used: Sequence[FeatureSpec], settings) -> SegmentModel:
        """The fitted preprocessing and centres, as a SegmentModel."""

    def assign(self, features: FeatureFrame, model: SegmentModel) -> np.ndarray:
        """Each user's segment rank (0 = least engaged), in `features.frame` row order."""


@dataclass
class Clustering:
    """The outcome of fitting: the model, each user's rank, score and distance, and quality."""

    model: SegmentModel
    ranks: np.ndarray
    scores: np.ndarray
    distances: np.ndarray
    metrics: Dict[str, float]

    @property
    def segments(self) -> np.ndarray:
        return np.array(self.model.names, dtype=object)[self.ranks]


def usable_specs(features: FeatureFrame, k: int) -> List[FeatureSpec]:
    """The features that vary between users (constant ones can't separate anybody)."""
    frame = features.frame
    if len(frame) < k:
        raise NoDataError(f"only {len(frame)} user(s): need at least k={k} to segment")
    used = [spec for spec in features.specs if frame[spec.name].nunique() > 1]
    if not used:
        raise NoDataError("every feature has the same value for all users: nothing to segment on")
    return used


def cluster(engine: Engine, features: FeatureFrame, settings) -> Clustering:
    """Fit and assign with `engine`, then score, measure and name the result the same way
    whichever engine ran."""
    from segmentation.clustering import feature_separation, quality_metrics

    used = usable_specs(features, settings.k)
    model = engine.fit(features, used, settings)
    model.dropped_constant = [s.name for s in features.specs if s not in used]
    model.engine = engine.name
    ranks = np.asarray(engine.assign(features, model), dtype=int)
    scaled = model.transform(features.frame[model.features].to_numpy(dtype=float))
    own = model.distances(scaled)[np.arange(len(ranks)), ranks]
    metrics = quality_metrics(scaled, ranks, settings)
    metrics["separation"] = feature_separation(scaled, ranks, model.features)
    return Clustering(model, ranks, model.scores(scaled), own, metrics)


def make_engine(name: str = "scikit-learn", **options) -> Engine:
    """The engine called `name` ("scikit-learn" or "spark"; Spark takes `master`)."""
    if name == "scikit-learn":
        from segmentation.clustering import ScikitLearnEngine

        return ScikitLearnEngine()
    if name == "spark":
        from segmentation.spark_engine import SparkEngine

        return SparkEngine(**options)
    raise ConfigError(f"unknown engine '{name}': use {' or '.join(ENGINES)}")


def engine_from_options(args: argparse.Namespace):
    """The engine named by --engine, with its Spark options."""
    if args.engine != "spark":
        if args.events_file:
            raise ConfigError("--events-file is read by the Spark engine: add --engine spark")
        return make_engine(args.engine)
    return make_engine(
        "spark",
        master=args.spark_master,
        event_files=args.events_file,
        partitions=args.spark_partitions,
    )


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """--engine and the Spark engine's options."""
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="scikit-learn",
        help="where to compute (default %(default)s)",
    )
    parser.add_argument(
        "--spark-master",
        help="Spark master URL (default: spark-submit's --master, else local[*])",
    )
    parser.add_argument(
        "--spark-partitions",
        type=int,
        default=8,
        help="JDBC read partitions per event table (default %(default)s)",
    )
    parser.add_argument(
        "--events-file",
        action="append",
        metavar="TABLE=PATH",
        help="with --engine spark: read an event table from Parquet or CSV instead of the "
        "database (clickstream=, search_queries=, article_views=); repeatable",
    )
