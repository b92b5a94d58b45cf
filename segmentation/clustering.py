"""Clustering users into engagement segments, and the quality of a clustering.

The model is `make_pipeline(OutlierHandler(), StandardScaler(), KMeans(...))`. Segment names
come from an engagement score of each cluster centre (the mean of its standardised features,
with "lower is better" features negated), never from the cluster id: the lowest-scoring centre
is "Low Engagement", the highest "Highly Engaged".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from segmentation.errors import ConfigError, NoDataError
from segmentation.features import FeatureSpec

ALGORITHMS = ("kmeans", "minibatch_kmeans", "gmm")
WORKING_MEMORY_MB = 128  # scikit-learn's default (1 GB) would dominate peak memory
OUTLIER_METHODS = ("log", "iqr", "none")
STANDARD_NAMES = {
    2: ("Low Engagement", "Highly Engaged"),
    3: ("Low Engagement", "Moderate Engagement", "Highly Engaged"),
}


def default_names(k: int) -> List[str]:
    """Segment names from least to most engaged."""
    if k in STANDARD_NAMES:
        return list(STANDARD_NAMES[k])
    return [f"Engagement tier {i} of {k}" for i in range(1, k + 1)]


@dataclass
class ClusterSettings:
    """What to fit and how; stored with every run."""

    k: int = 3
    algorithm: str = "kmeans"
    n_init: int = 10
    random_state: int = 42
    outliers: str = "log"
    names: Optional[List[str]] = None
    stability_runs: int = 3
    silhouette_exact_max: int = 50_000
    sample_size: int = 10_000

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"algorithm must be one of {', '.join(ALGORITHMS)}")
        if self.outliers not in OUTLIER_METHODS:
            raise ConfigError(f"outlier handling must be one of {', '.join(OUTLIER_METHODS)}")
        if self.k < 2:
            raise ConfigError("k must be at least 2")
        if self.n_init < 1:
            raise ConfigError("n_init must be at least 1")
        if self.names is not None and len(self.names) != self.k:
            raise ConfigError(f"{len(self.names)} names given for k={self.k} segments")
        if self.names is not None and len(set(self.names)) != self.k:
            raise ConfigError("segment names must be different from each other")

    def segment_names(self) -> List[str]:
        return list(self.names) if self.names else default_names(self.k)

    def as_dict(self) -> dict:
        return {
            "k": self.k,
            "algorithm": self.algorithm,
            "n_init": self.n_init,
            "random_state": self.random_state,
            "outliers": self.outliers,
            "names": self.segment_names(),
        }


class OutlierHandler(BaseEstimator, TransformerMixin):
    """log1p for non-negative columns ("log"), Tukey-fence capping ("iqr"), or nothing."""

    def __init__(self, method: str = "log") -> None:
        self.method = method

    def fit(self, X, y=None):  # noqa: N803 - scikit-learn naming
        X = np.asarray(X, dtype=float)
        self.log_columns_ = (
            (X.min(axis=0) >= 0) if self.method == "log" else np.zeros(X.shape[1], bool)
        )
        if self.method == "iqr":
            q1, q3 = np.percentile(X, [25, 75], axis=0)
            spread = q3 - q1
            self.lower_, self.upper_ = q1 - 1.5 * spread, q3 + 1.5 * spread
        return self

    def transform(self, X):  # noqa: N803
        X = np.array(X, dtype=float, copy=True)
        if self.method == "log":
            X[:, self.log_columns_] = np.log1p(X[:, self.log_columns_])
        elif self.method == "iqr":
            X = np.clip(X, self.lower_, self.upper_)
        return X

    def to_dict(self) -> dict:
        state = {"method": self.method, "log_columns": self.log_columns_.tolist()}
        if self.method == "iqr":
            state.update(lower=self.lower_.tolist(), upper=self.upper_.tolist())
        return state

    @classmethod
    def from_dict(cls, state: dict) -> "OutlierHandler":
        handler = cls(state["method"])
        handler.log_columns_ = np.array(state["log_columns"], dtype=bool)
        if handler.method == "iqr":
            handler.lower_ = np.array(state["lower"])
            handler.upper_ = np.array(state["upper"])
        return handler


def make_estimator(settings: ClusterSettings, random_state: Optional[int] = None):
    seed = settings.random_state if random_state is None else random_state
    if settings.algorithm == "kmeans":
        return KMeans(n_clusters=settings.k, n_init=settings.n_init, random_state=seed)
    if settings.algorithm == "minibatch_kmeans":
        return MiniBatchKMeans(
            n_clusters=settings.k, n_init=settings.n_init, random_state=seed, batch_size=4096
        )
    return GaussianMixture(n_components=settings.k, n_init=settings.n_init, random_state=seed)


def make_model(settings: ClusterSettings) -> Pipeline:
    """The segmentation pipeline: outliers, standardisation, clustering."""
    return make_pipeline(
        OutlierHandler(settings.outliers), StandardScaler(), make_estimator(settings)
    )


@dataclass
class SegmentModel:
    """A fitted model in plain numbers, stored as JSON with the run (for the "why" answers)."""

    features: List[str]
    lower_is_better: List[bool]
    outliers: dict
    scaler_mean: List[float]
    scaler_scale: List[float]
    centres: List[List[float]]  # scaled space, ordered by rank (least engaged first)
    names: List[str]  # by rank
    dropped_constant: List[str] = field(default_factory=list)

    @property
    def weights(self) -> np.ndarray:
        signs = np.where(np.array(self.lower_is_better), -1.0, 1.0)
        return signs / len(self.features)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Raw feature values (n x d, in `features` order) -> the clustering space."""
        handled = OutlierHandler.from_dict(self.outliers).transform(values)
        return (handled - np.array(self.scaler_mean)) / np.array(self.scaler_scale)

    def distances(self, scaled: np.ndarray) -> np.ndarray:
        """Euclidean distance of each row to each centre (n x k, rank order)."""
        centres = np.array(self.centres)
        return np.sqrt(((scaled[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2))

    def scores(self, scaled: np.ndarray) -> np.ndarray:
        return scaled @ self.weights

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict) -> "SegmentModel":
        return cls(**data)


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


def _centres(estimator) -> np.ndarray:
    return (
        estimator.means_ if isinstance(estimator, GaussianMixture) else estimator.cluster_centers_
    )


def fit_segments(
    frame: pd.DataFrame, specs: Sequence[FeatureSpec], settings: ClusterSettings
) -> Clustering:
    """Fit the pipeline on per-user features and name the clusters by engagement."""
    if len(frame) < settings.k:
        raise NoDataError(f"only {len(frame)} user(s): need at least k={settings.k} to segment")
    constant = [spec.name for spec in specs if frame[spec.name].nunique() <= 1]
    used = [spec for spec in specs if spec.name not in constant]
    if not used:
        raise NoDataError("every feature has the same value for all users: nothing to segment on")
    values = frame[[spec.name for spec in used]].to_numpy(dtype=float)
    pipeline = make_model(settings)
    cluster_ids = pipeline.fit_predict(values)
    handler, scaler, estimator = (step for _, step in pipeline.steps)
    scaled = scaler.transform(handler.transform(values))
    lower = [spec.lower_is_better for spec in used]
    signs = np.where(np.array(lower), -1.0, 1.0) / len(used)
    raw_centres = _centres(estimator)
    order = np.argsort(raw_centres @ signs, kind="stable")  # rank -> cluster id
    rank_of_cluster = np.empty_like(order)
    rank_of_cluster[order] = np.arange(len(order))
    model = SegmentModel(
        features=[spec.name for spec in used],
        lower_is_better=lower,
        outliers=handler.to_dict(),
        scaler_mean=scaler.mean_.tolist(),
        scaler_scale=scaler.scale_.tolist(),
        centres=raw_centres[order].tolist(),
        names=settings.segment_names(),
        dropped_constant=constant,
    )
    ranks = rank_of_cluster[cluster_ids]
    all_distances = model.distances(scaled)
    own = all_distances[np.arange(len(ranks)), ranks]
    metrics = quality_metrics(scaled, ranks, settings)
    metrics["separation"] = feature_separation(scaled, ranks, model.features)
    return Clustering(model, ranks, model.scores(scaled), own, metrics)


def feature_separation(
    scaled: np.ndarray, labels: np.ndarray, features: Sequence[str]
) -> Dict[str, float]:
    """How much of each feature's variance lies between the segments (eta squared, 0 to 1):
    what actually tells the segments apart."""
    total = ((scaled - scaled.mean(axis=0)) ** 2).sum(axis=0)
    between = np.zeros(scaled.shape[1])
    for label in np.unique(labels):
        members = scaled[labels == label]
        between += len(members) * (members.mean(axis=0) - scaled.mean(axis=0)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(total > 0, between / total, 0.0)
    return {name: round(float(value), 4) for name, value in zip(features, eta)}


def quality_metrics(
    scaled: np.ndarray, labels: np.ndarray, settings: ClusterSettings
) -> Dict[str, float]:
    """Silhouette (sampled above `silhouette_exact_max` users), Davies-Bouldin,
    Calinski-Harabasz, and stability: mean adjusted Rand index against refits with other seeds."""
    n = len(labels)
    rng = np.random.RandomState(settings.random_state)
    metrics: Dict[str, float] = {"n_users": float(n)}
    if len(np.unique(labels)) < 2:
        return metrics
    if n > settings.silhouette_exact_max:
        picked = rng.choice(n, settings.sample_size, replace=False)
        metrics["silhouette_sample"] = float(settings.sample_size)
    else:
        picked = np.arange(n)
    with sklearn.config_context(working_memory=WORKING_MEMORY_MB):  # bounded pairwise chunks
        metrics["silhouette"] = float(silhouette_score(scaled[picked], labels[picked]))
    metrics["davies_bouldin"] = float(davies_bouldin_score(scaled, labels))
    metrics["calinski_harabasz"] = float(calinski_harabasz_score(scaled, labels))
    subset = (
        np.arange(n) if n <= settings.sample_size else rng.choice(n, settings.sample_size, False)
    )
    rand_indices = []
    for offset in range(1, settings.stability_runs + 1):
        refit = make_estimator(settings, random_state=settings.random_state + offset)
        rand_indices.append(adjusted_rand_score(labels[subset], refit.fit_predict(scaled[subset])))
    if rand_indices:
        metrics["stability_ari"] = float(np.mean(rand_indices))
        metrics["stability_ari_min"] = float(np.min(rand_indices))
    return metrics
