"""The scikit-learn engine, the clustering settings, and the quality of a clustering.

The model is `make_pipeline(OutlierHandler(), StandardScaler(), KMeans(...))`. Segment names
come from an engagement score of each cluster centre (the mean of its standardised features,
with "lower is better" features negated), never from the cluster id: the lowest-scoring centre
is "Low Engagement", the highest "Highly Engaged".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
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

from segmentation.errors import ConfigError
from segmentation.features import FeatureFrame, FeatureSpec, load_features
from segmentation.model import SegmentModel, apply_outliers, outlier_state, rank_order

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
    """log1p for non-negative columns ("log"), Tukey-fence capping ("iqr"), or nothing: the
    scikit-learn face of segmentation.model's outlier step."""

    def __init__(self, method: str = "log") -> None:
        self.method = method

    def fit(self, X, y=None):  # noqa: N803 - scikit-learn naming
        X = np.asarray(X, dtype=float)
        quartiles = np.percentile(X, [25, 75], axis=0) if self.method == "iqr" else (None, None)
        self.state_ = outlier_state(self.method, X.min(axis=0), *quartiles)
        return self

    def transform(self, X):  # noqa: N803
        return apply_outliers(self.state_, X)

    def to_dict(self) -> dict:
        return dict(self.state_)


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


def _centres(estimator) -> np.ndarray:
    return (
        estimator.means_ if isinstance(estimator, GaussianMixture) else estimator.cluster_centers_
    )


class ScikitLearnEngine:
    """The single-machine engine: features aggregated by the database, the scikit-learn
    pipeline fitted in memory (see segmentation.engine for the interface)."""

    name = "scikit-learn"

    def __init__(self) -> None:
        self._pipeline: Optional[Pipeline] = None
        self._fitted = None  # (the FeatureFrame fitted on, its cluster ids)

    def aggregate(self, db, source="events", features=None, lower_is_better=None, window=None):
        """Per-user features from the database (segmentation.features)."""
        return load_features(db, source, features, lower_is_better, window)

    def fit(
        self, features: FeatureFrame, used: Sequence[FeatureSpec], settings: ClusterSettings
    ) -> SegmentModel:
        """Fit outliers -> scaler -> estimator on the `used` features."""
        values = features.frame[[spec.name for spec in used]].to_numpy(dtype=float)
        self._pipeline = make_model(settings)
        self._fitted = (features, self._pipeline.fit_predict(values))
        handler, scaler, estimator = (step for _, step in self._pipeline.steps)
        return SegmentModel.from_fit(
            [spec.name for spec in used],
            [spec.lower_is_better for spec in used],
            handler.to_dict(),
            scaler.mean_,
            scaler.scale_,
            _centres(estimator),
            settings.segment_names(),
        )

    def assign(self, features: FeatureFrame, model: SegmentModel) -> np.ndarray:
        """Each user's segment rank, as the fitted estimator labelled (or predicts) it."""
        fitted_on, cluster_ids = self._fitted
        if features is not fitted_on:  # other users than those fitted: predict theirs
            cluster_ids = self._pipeline.predict(features.frame[model.features].to_numpy(float))
        order = rank_order(_centres(self._pipeline[-1]), model.lower_is_better)
        rank_of_cluster = np.empty_like(order)
        rank_of_cluster[order] = np.arange(len(order))
        return rank_of_cluster[cluster_ids]


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


def separation_scores(
    scaled: np.ndarray, labels: np.ndarray, picked: np.ndarray
) -> Dict[str, float]:
    """Silhouette on the `picked` rows, Davies-Bouldin and Calinski-Harabasz on all of them
    (the scores `build` stores and `compare` prints)."""
    with sklearn.config_context(working_memory=WORKING_MEMORY_MB):  # bounded pairwise chunks
        silhouette = float(silhouette_score(scaled[picked], labels[picked]))
    return {
        "silhouette": silhouette,
        "davies_bouldin": float(davies_bouldin_score(scaled, labels)),
        "calinski_harabasz": float(calinski_harabasz_score(scaled, labels)),
    }


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
    sample = min(settings.sample_size, settings.silhouette_exact_max)
    if n > settings.silhouette_exact_max:  # a sample no larger than the exact limit
        picked = rng.choice(n, sample, replace=False)
        metrics["silhouette_sample"] = float(sample)
    else:
        picked = np.arange(n)
    metrics.update(separation_scores(scaled, labels, picked))
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
