"""The real data sets in ../shared/data load and segment; segment names follow engagement.

The engagement order is checked independently of the model: for every user, the mean over
features of their percentile rank (flipped where lower is better), read from the CSV itself;
its average per segment must rise from Low to Moderate to Highly Engaged.
"""

import pandas as pd
from sqlalchemy import select

from segmentation.build import build_segments
from segmentation.clustering import ClusterSettings
from segmentation.ingest import ingest_csv, load_feature_table
from segmentation.queries import SegmentQueries
from segmentation.query import Query
from segmentation.render.phrases import weak_separation
from segmentation.schema import segmentation_runs, user_segments

FAST = ClusterSettings(n_init=3, stability_runs=1, silhouette_exact_max=10_000)
ORDER = ["Low Engagement", "Moderate Engagement", "Highly Engaged"]
GLOBO_CLICKS = {
    "user_id": "user_id",
    "session_id": "session_id",
    "url": "click_article_id",
    "timestamp": "click_timestamp",
    "device": "click_deviceGroup",
    "referrer": "click_referrer_type",
}


def segments_of(engine, run_id) -> pd.Series:
    with engine.connect() as conn:
        rows = conn.execute(
            select(user_segments.c.user_id, user_segments.c.segment).where(
                user_segments.c.run_id == run_id
            )
        ).all()
    return pd.Series({r.user_id: r.segment for r in rows})


def engagement_by_segment(values: pd.DataFrame, lower: list, segments: pd.Series) -> list:
    """Segments ordered by the mean percentile rank of their users' values."""
    ranks = values.rank(pct=True)
    for column in lower:
        ranks[column] = 1 - ranks[column]
    per_user = ranks.mean(axis=1)
    per_user.index = per_user.index.astype(str)
    return per_user.groupby(segments.reindex(per_user.index)).mean().sort_values().index.tolist()


def test_globo_clicks_segment_by_engagement(engine, shared_data):
    path = shared_data / "globo_news_clicks_48h.csv"
    loaded = ingest_csv(engine, path, "clickstream", GLOBO_CLICKS, timestamp_format="epoch_ms")
    users = {"user_id": "user_id", "country": "click_country", "device": "click_deviceGroup"}
    ingest_csv(engine, path, "users", users, keep="last")
    result = build_segments(engine, FAST)
    assert loaded.rows == 437_746 and result.n_users == 115_268
    assert sum(result.sizes.values()) == 115_268 and list(result.sizes) == ORDER
    raw = pd.read_csv(path, usecols=["user_id", "session_id", "click_article_id"])
    per_user = raw.groupby("user_id").agg(
        clicks=("click_article_id", "size"), sessions=("session_id", "nunique")
    )
    assert engagement_by_segment(per_user, [], segments_of(engine, result.run_id)) == ORDER
    breakdown = SegmentQueries(engine=engine).answer(
        Query("count", segments=("Highly Engaged",), group_by=("country",))
    )
    assert sum(g.n for g in breakdown.groups) == result.sizes["Highly Engaged"]


def test_userbehaviour_with_lower_is_better(engine, shared_data):
    path = shared_data / "userbehaviour.csv"
    features = [
        "Average Screen Time",
        "Average Spent on App (INR)",
        "Ratings",
        "Last Visited Minutes",
    ]
    lower = ["Last Visited Minutes"]
    loaded = load_feature_table(engine, path, "userbehaviour", "userid", features, lower)
    result = build_segments(engine, FAST, source="features:userbehaviour")
    assert loaded.n_users == result.n_users == 999
    raw = pd.read_csv(path, index_col="userid")[features]
    assert engagement_by_segment(raw, lower, segments_of(engine, result.run_id)) == ORDER


def test_app_features_without_id_column(engine, shared_data):
    path = shared_data / "app_user_behavior_features15.csv"
    lower = ["days_since_last_login", "crash_events_last_30_days", "support_tickets_raised"]
    load_feature_table(engine, path, "app", None, lower_is_better=lower, id_offset=100_000)
    result = build_segments(engine, FAST, source="features:app")
    assert result.n_users == 50_000 and sum(result.sizes.values()) == 50_000
    segments = segments_of(engine, result.run_id)
    assert segments.index.min() == "100000" and segments.index.max() == "149999"
    raw = pd.read_csv(path)
    raw.index = (raw.index + 100_000).astype(str)
    assert engagement_by_segment(raw, lower, segments) == ORDER
    with engine.connect() as conn:
        metrics = conn.execute(select(segmentation_runs.c.metrics)).scalar_one()
    # This synthetic table has almost no cluster structure, and the run's quality says so:
    # every answer about it carries a caveat naming what does separate the segments.
    assert metrics["silhouette"] < 0.25
    caveat = weak_separation(SegmentQueries(engine=engine).current_run())
    assert caveat.startswith(
        f"Note: these segments are weakly separated (silhouette {metrics['silhouette']:.2f})"
    )
    leading = sorted(metrics["separation"], key=metrics["separation"].get, reverse=True)[:2]
    named = " and ".join(name.replace("_", " ") for name in leading)
    assert f"they differ mainly in {named}" in caveat and "support tickets raised" in named


def test_socialmedia_with_junk_line_and_swapped_columns(engine, shared_data):
    path = shared_data / "socialmedia_emotion_train.csv"
    features = [
        "Daily_Usage_Time (minutes)",
        "Posts_Per_Day",
        "Likes_Received_Per_Day",
        "Comments_Received_Per_Day",
        "Messages_Sent_Per_Day",
    ]
    loaded = load_feature_table(engine, path, "social", "User_ID", features, skip_bad_rows=True)
    assert loaded.n_users == 1000
    assert loaded.report["rows_skipped"] == 1
    assert loaded.report["swapped_columns"] == [{"columns": ["Age", "Gender"], "rows": 76}]
    result = build_segments(engine, FAST, source="features:social")
    raw = pd.read_csv(path, skip_blank_lines=True, on_bad_lines="skip")
    raw = raw[pd.to_numeric(raw["User_ID"], errors="coerce").notna()]
    raw.index = raw.pop("User_ID").astype(int).astype(str)
    values = raw[features].apply(pd.to_numeric)
    assert engagement_by_segment(values, [], segments_of(engine, result.run_id)) == ORDER
