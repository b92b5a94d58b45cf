"""The fitted segmentation model as plain numbers, whichever engine fitted it.

Both engines (scikit-learn in segmentation/clustering.py, Spark MLlib in
segmentation/engines/spark.py) produce a `SegmentModel`; the run stores it as JSON and the query
layer reads it back to explain answers. This module imports numpy only: no scikit-learn, no Spark.

The preprocessing is (1) outlier handling, "log" (log1p of every column that has no negative
value), "iqr" (capping at Tukey's fences, 1.5 x IQR beyond the quartiles) or "none"; then (2)
standard scaling with the population standard deviation. Segments are ranked by the engagement
score of their centre: the mean of its standardised features, "lower is better" features
negated. The lowest-scoring centre gets the first name ("Low Engagement"), and so on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import numpy as np


def apply_outliers(state: Dict, values: np.ndarray) -> np.ndarray:
    """Outlier handling described by `state` (see `OutlierState`) applied to raw values."""
    handled = np.array(values, dtype=float, copy=True)
    if state["method"] == "log":
        columns = np.array(state["log_columns"], dtype=bool)
        handled[:, columns] = np.log1p(handled[:, columns])
    elif state["method"] == "iqr":
        handled = np.clip(handled, np.array(state["lower"]), np.array(state["upper"]))
    return handled


def outlier_state(method: str, minimum: Sequence[float], q1=None, q3=None) -> Dict:
    """The outlier step's fitted state from per-column statistics: the minimum (for "log") or
    the quartiles (for "iqr")."""
    minimum = np.asarray(minimum, dtype=float)
    log_columns = (minimum >= 0) if method == "log" else np.zeros(len(minimum), bool)
    state = {"method": method, "log_columns": log_columns.tolist()}
    if method == "iqr":
        q1, q3 = np.asarray(q1, dtype=float), np.asarray(q3, dtype=float)
        spread = q3 - q1
        state.update(lower=(q1 - 1.5 * spread).tolist(), upper=(q3 + 1.5 * spread).tolist())
    return state


def engagement_weights(lower_is_better: Sequence[bool]) -> np.ndarray:
    """Weights of the engagement score: +1/d per feature, -1/d where lower is better."""
    signs = np.where(np.array(lower_is_better, dtype=bool), -1.0, 1.0)
    return signs / len(signs)


def rank_order(centres: np.ndarray, lower_is_better: Sequence[bool]) -> np.ndarray:
    """Cluster ids from least to most engaged (position = rank)."""
    return np.argsort(np.asarray(centres) @ engagement_weights(lower_is_better), kind="stable")


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
    engine: str = "scikit-learn"

    @classmethod
    def from_fit(
        cls,
        features: Sequence[str],
        lower_is_better: Sequence[bool],
        outliers: dict,
        mean: Sequence[float],
        scale: Sequence[float],
        cluster_centres: np.ndarray,
        names: Sequence[str],
        **extra,
    ) -> "SegmentModel":
        """A model from any engine's fit: centres in cluster-id order are put in rank order."""
        order = rank_order(cluster_centres, lower_is_better)
        return cls(
            features=list(features),
            lower_is_better=list(lower_is_better),
            outliers=outliers,
            scaler_mean=[float(v) for v in mean],
            scaler_scale=[float(v) for v in scale],
            centres=np.asarray(cluster_centres, dtype=float)[order].tolist(),
            names=list(names),
            **extra,
        )

    @property
    def weights(self) -> np.ndarray:
        return engagement_weights(self.lower_is_better)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Raw feature values (n x d, in `features` order) -> the clustering space."""
        handled = apply_outliers(self.outliers, values)
        return (handled - np.array(self.scaler_mean)) / np.array(self.scaler_scale)

    def distances(self, scaled: np.ndarray) -> np.ndarray:
        """Euclidean distance of each row to each centre (n x k, rank order)."""
        centres = np.array(self.centres)
        return np.sqrt(((scaled[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2))

    def scores(self, scaled: np.ndarray) -> np.ndarray:
        return scaled @ self.weights

    def centre_scores(self) -> np.ndarray:
        """Each segment centre's engagement score, in rank order."""
        return np.array(self.centres) @ self.weights

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict) -> "SegmentModel":
        return cls(**data)
