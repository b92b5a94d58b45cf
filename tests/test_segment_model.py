"""The engine-independent model object (segmentation/model.py) and what the engines share."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from segmentation.clustering import ClusterSettings, OutlierHandler, ScikitLearnEngine
from segmentation.config import PROJECT_DIR
from segmentation.engine import cluster, make_engine
from segmentation.errors import ConfigError, NoDataError
from segmentation.features import FeatureFrame, FeatureSpec
from segmentation.model import SegmentModel, apply_outliers

SPECS = [FeatureSpec("visits", "visits"), FeatureSpec("idle", "idle days", lower_is_better=True)]


def frame(n: int = 300, seed: int = 3) -> FeatureFrame:
    rng = np.random.RandomState(seed)
    tier = rng.randint(0, 3, n)
    values = pd.DataFrame(
        {
            "visits": rng.poisson(2 + 20 * tier).astype(float),
            "idle": rng.poisson(30 - 10 * tier).astype(float),
        },
        index=pd.Index([f"u{i:04d}" for i in range(n)], name="user_id"),
    )
    return FeatureFrame(values, list(SPECS), "test")


def test_query_layer_imports_neither_scikit_learn_nor_spark():
    code = (
        "import sys, segmentation.queries, segmentation.answering, segmentation.model; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'pyspark'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("method", ["log", "iqr", "none"])
def test_model_transform_equals_the_fitted_pipeline(method):
    features = frame()
    values = features.frame.to_numpy()
    pipeline = make_pipeline(OutlierHandler(method), StandardScaler()).fit(values)
    handler, scaler = pipeline[0], pipeline[1]
    model = SegmentModel.from_fit(
        ["visits", "idle"],
        [False, True],
        handler.to_dict(),
        scaler.mean_,
        scaler.scale_,
        np.zeros((3, 2)),
        ["a", "b", "c"],
    )
    assert np.allclose(model.transform(values), pipeline.transform(values))
    assert np.allclose(apply_outliers(handler.to_dict(), values), handler.transform(values))


def test_from_fit_orders_centres_by_engagement():
    # cluster 0 is the most engaged (many visits, few idle days), cluster 1 the least
    centres = np.array([[2.0, -2.0], [-2.0, 2.0], [0.0, 0.0]])
    model = SegmentModel.from_fit(
        ["visits", "idle"], [False, True], {"method": "none", "log_columns": [False, False]},
        [0, 0], [1, 1], centres, ["Low", "Mid", "High"],
    )  # fmt: skip
    assert model.centres == [[-2.0, 2.0], [0.0, 0.0], [2.0, -2.0]]
    assert list(model.centre_scores()) == sorted(model.centre_scores())
    assert SegmentModel.from_json(model.to_json()) == model


def test_old_runs_models_read_back_as_scikit_learn():
    stored = SegmentModel.from_fit(["x"], [False], {"method": "none", "log_columns": [False]},
                                   [0], [1], np.array([[1.0], [0.0]]), ["L", "H"]).to_json()  # fmt: skip
    del stored["engine"]  # runs written before engines were recorded
    assert SegmentModel.from_json(stored).engine == "scikit-learn"


def test_cluster_names_by_engagement_and_records_the_engine():
    features = frame()
    result = cluster(ScikitLearnEngine(), features, ClusterSettings(n_init=3, stability_runs=1))
    assert result.model.engine == "scikit-learn"
    means = features.frame.groupby(result.segments).mean()
    assert means.loc["Low Engagement", "visits"] < means.loc["Highly Engaged", "visits"]
    assert means.loc["Low Engagement", "idle"] > means.loc["Highly Engaged", "idle"]
    assert result.distances.shape == (len(features.frame),)


def test_constant_features_are_dropped_and_recorded():
    features = frame()
    features.frame["flat"] = 1.0
    features.specs.append(FeatureSpec("flat", "flat"))
    result = cluster(ScikitLearnEngine(), features, ClusterSettings(n_init=2, stability_runs=0))
    assert result.model.dropped_constant == ["flat"] and "flat" not in result.model.features
    features.frame[["visits", "idle"]] = 0.0
    with pytest.raises(NoDataError):
        cluster(ScikitLearnEngine(), features, ClusterSettings(n_init=2, stability_runs=0))


def test_silhouette_sample_is_never_larger_than_the_users():
    # --silhouette-exact-max below the user count with the default sample size used to crash
    settings = ClusterSettings(n_init=1, stability_runs=0, silhouette_exact_max=100)
    result = cluster(ScikitLearnEngine(), frame(300), settings)
    assert result.metrics["silhouette_sample"] == 100


def test_unknown_engine_is_a_clear_error():
    with pytest.raises(ConfigError, match="scikit-learn or spark"):
        make_engine("dask")
