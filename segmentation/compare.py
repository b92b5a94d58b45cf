"""`compare`: several clustering algorithms on the same features, scored with the same metrics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import pandas as pd
from sklearn.cluster import DBSCAN, AgglomerativeClustering, MeanShift, estimate_bandwidth
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from segmentation.clustering import (
    ClusterSettings,
    OutlierHandler,
    make_estimator,
    separation_scores,
)
from segmentation.features import load_features
from segmentation.progress import progress

# name -> (make estimator from (k, random_state, data), fit on a sample of at most `sample` users?)
Factory = Callable[[int, int, np.ndarray], object]


def _dbscan(k: int, seed: int, data: np.ndarray) -> DBSCAN:
    """eps from the k-distance curve: the 90th percentile of each point's min_samples-th
    neighbour distance."""
    min_samples = max(4, 2 * data.shape[1])
    neighbours = NearestNeighbors(n_neighbors=min_samples).fit(data)
    distances, _ = neighbours.kneighbors(data)
    return DBSCAN(eps=float(np.percentile(distances[:, -1], 90)), min_samples=min_samples)


def _mean_shift(k: int, seed: int, data: np.ndarray) -> MeanShift:
    bandwidth = estimate_bandwidth(
        data, quantile=0.2, n_samples=min(len(data), 1000), random_state=seed
    )
    return MeanShift(bandwidth=bandwidth, bin_seeding=True)


def _build_estimator(algorithm: str, n_init: int) -> Factory:
    """The estimator `build --algorithm` fits (clustering.make_estimator), with `n_init`."""
    return lambda k, seed, data: make_estimator(
        ClusterSettings(k=k, algorithm=algorithm, n_init=n_init, random_state=seed)
    )


ALGORITHMS: Dict[str, Tuple[Factory, bool]] = {
    "KMeans": (_build_estimator("kmeans", 10), False),
    "MiniBatchKMeans": (_build_estimator("minibatch_kmeans", 3), False),
    "GaussianMixture": (_build_estimator("gmm", 2), False),
    "Agglomerative (Ward)": (lambda k, s, d: AgglomerativeClustering(n_clusters=k), True),
    "MeanShift": (_mean_shift, True),
    "DBSCAN": (_dbscan, True),
}


def _score(data: np.ndarray, labels: np.ndarray, sample: int, seed: int) -> Dict[str, float]:
    """Metrics on clustered points (DBSCAN noise left out); silhouette on at most `sample`."""
    clustered = labels >= 0
    data, labels = data[clustered], labels[clustered]
    if len(np.unique(labels)) < 2:
        return {"silhouette": np.nan, "davies_bouldin": np.nan, "calinski_harabasz": np.nan}
    rng = np.random.RandomState(seed)
    picked = rng.choice(len(labels), min(sample, len(labels)), replace=False)
    return separation_scores(data, labels, picked)


def compare_algorithms(
    engine,
    source: str = "events",
    k: int = 3,
    sample: int = 5000,
    random_state: int = 42,
    algorithms: Optional[Dict[str, Tuple[Factory, bool]]] = None,
) -> pd.DataFrame:
    """One row per algorithm: users fitted, clusters found, noise share, metrics, seconds."""
    features = load_features(engine, source)
    data = make_pipeline(OutlierHandler("log"), StandardScaler()).fit_transform(
        features.frame.to_numpy(dtype=float)
    )
    data = data[:, np.nanstd(data, axis=0) > 0]
    rng = np.random.RandomState(random_state)
    subset = rng.choice(len(data), min(sample, len(data)), replace=False)
    rows = []
    chosen = algorithms or ALGORITHMS
    with progress(total=len(chosen), desc="compare", unit="algorithm") as bar:
        for name, (factory, sampled) in chosen.items():
            points = data[subset] if sampled else data
            started = time.perf_counter()
            labels = np.asarray(factory(k, random_state, points).fit_predict(points))
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "algorithm": name,
                    "users": len(points),
                    "clusters": int(len(set(labels.tolist()) - {-1})),
                    "noise_share": float((labels < 0).mean()),
                    **_score(points, labels, sample, random_state),
                    "seconds": seconds,
                }
            )
            bar.update(1)
    return pd.DataFrame(rows)


def comparison_chart(table: pd.DataFrame, path: Path) -> Path:
    """Silhouette (higher is better) and Davies-Bouldin (lower is better) per algorithm."""
    from segmentation.charts import plt, save_figure

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for axis, metric, note in (
        (axes[0], "silhouette", "higher is better"),
        (axes[1], "davies_bouldin", "lower is better"),
    ):
        axis.barh(table["algorithm"], table[metric].fillna(0), color="#7570b3")
        axis.set_title(f"{metric.replace('_', '-')} ({note})", fontsize=10)
    return save_figure(figure, path)
