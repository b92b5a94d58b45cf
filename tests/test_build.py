"""Building segments: names follow engagement, runs are all-or-nothing and reproducible."""


import pandas as pd
import pytest
from sqlalchemy import select

from segmentation.build import build_segments
from segmentation.clustering import ClusterSettings
from segmentation.errors import ConfigError, NoDataError
from segmentation.schema import (
    segment_profiles,
    segmentation_runs,
    user_segments,
)
from tests.factories import (
    insert_feature_table,
    load_population,
    runs_and_row_counts,
    tiered_population,
)

FAST = dict(n_init=3, stability_runs=2)


def assignments(engine, run_id):
    with engine.connect() as conn:
        rows = conn.execute(
            select(user_segments.c.user_id, user_segments.c.segment).where(
                user_segments.c.run_id == run_id
            )
        ).all()
    return dict(rows)


def test_names_follow_engagement_not_cluster_ids(engine):
    load_population(engine, tiered_population())
    result = build_segments(engine, ClusterSettings(**FAST))
    segments = assignments(engine, result.run_id)
    assert len(segments) == 90
    for user, segment in segments.items():
        expected = {"l": "Low Engagement", "m": "Moderate Engagement", "h": "Highly Engaged"}
        assert segment == expected[user[0]], user
    assert result.sizes == {"Low Engagement": 30, "Moderate Engagement": 30, "Highly Engaged": 30}
    for name in ("silhouette", "davies_bouldin", "calinski_harabasz", "stability_ari"):
        assert name in result.metrics
    assert result.metrics["stability_ari"] == pytest.approx(1.0)


def test_run_is_complete_and_profiles_match_rows(engine):
    load_population(engine, tiered_population(20))
    result = build_segments(engine, ClusterSettings(**FAST))
    with engine.connect() as conn:
        run = conn.execute(select(segmentation_runs)).one()
        rows = conn.execute(select(user_segments)).all()
        profiles = conn.execute(select(segment_profiles).order_by(segment_profiles.c.rank)).all()
    assert run.status == "complete" and run.n_users == 60 == len(rows)
    assert run.data_as_of is not None and run.model["names"][0] == "Low Engagement"
    frame = pd.DataFrame([{**r.features, "segment": r.segment} for r in rows])
    for profile in profiles:
        members = frame[frame.segment == profile.segment].drop(columns="segment")
        assert profile.size == len(members)
        assert profile.share == pytest.approx(len(members) / 60)
        for feature, mean in profile.means.items():
            assert mean == pytest.approx(members[feature].mean())
            assert profile.medians[feature] == pytest.approx(members[feature].median())
    assert [p.rank for p in profiles] == [0, 1, 2]
    assert profiles[0].score < profiles[1].score < profiles[2].score
    assert result.run_id == run.id


def test_same_data_same_assignment(engine):
    load_population(engine, tiered_population(25, seed=3))
    first = build_segments(engine, ClusterSettings(**FAST))
    second = build_segments(engine, ClusterSettings(**FAST))
    assert second.run_id != first.run_id
    assert assignments(engine, first.run_id) == assignments(engine, second.run_id)


def test_other_k_uses_configured_names(engine):
    load_population(engine, tiered_population(20))
    names = ["Dormant", "Casual", "Regular", "Fans"]
    result = build_segments(engine, ClusterSettings(k=4, names=names, **FAST))
    assert list(result.sizes) == names
    assert set(assignments(engine, result.run_id).values()) <= set(names)
    with pytest.raises(ConfigError, match="3 names given for k=4"):
        ClusterSettings(k=4, names=names[:3])


def test_failed_build_leaves_previous_run_current(engine):
    load_population(engine, tiered_population(10))
    good = build_segments(engine, ClusterSettings(**FAST))
    with pytest.raises(NoDataError, match="need at least k=200"):
        build_segments(engine, ClusterSettings(k=200, n_init=1))
    runs, counts = runs_and_row_counts(engine)
    assert [r.status for r in runs] == ["complete", "failed"]
    assert "need at least" in runs[1].error
    assert counts == {good.run_id: 30}


def test_feature_table_with_lower_is_better(engine):
    rows = {}
    for i in range(20):
        rows[f"a{i}"] = {"minutes": 5.0 + i % 3, "days_since_login": 30.0 + i % 4}
        rows[f"b{i}"] = {"minutes": 60.0 + i % 3, "days_since_login": 1.0 + i % 2}
    insert_feature_table(engine, "app", rows, lower=("days_since_login",), file_name="app.csv")
    result = build_segments(engine, ClusterSettings(k=2, **FAST), source="features:app")
    segments = assignments(engine, result.run_id)
    assert {segments[f"a{i}"] for i in range(20)} == {"Low Engagement"}
    assert {segments[f"b{i}"] for i in range(20)} == {"Highly Engaged"}
    with engine.connect() as conn:
        params = conn.execute(select(segmentation_runs.c.params)).scalar_one()
    assert params["lower_is_better"] == ["days_since_login"]
    assert params["source_detail"]["file"] == "app.csv"
