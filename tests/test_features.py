"""Per-user features: GROUP BY per source in SQL, joined on user, zeros where missing."""

import pytest

from segmentation import features
from segmentation.errors import ConfigError, NoDataError, SegmentationError
from segmentation.features import aggregate_event_features
from segmentation.ingest import ingest_csv
from segmentation.schema import article_views, clickstream, search_queries
from tests.factories import click, insert_frame, search, view


def test_features_per_user_with_zeros_for_missing_sources(engine):
    insert_frame(
        engine,
        clickstream,
        [
            click("u1", 1.0, "/a", 10, session_id="s1"),
            click("u1", 1.0, "/b", 20, session_id="s1"),
            click("u1", 3.0, "/a", None, session_id="s2"),
            click("u2", 10.0, "/a", 5),
        ],
    )
    insert_frame(engine, search_queries, [search("u1", 0.5), search("u3", 2.0)])
    insert_frame(engine, article_views, [view("u2", 9.0, "a", 100), view("u2", 9.0, "b", None)])
    result = aggregate_event_features(engine)
    frame = result.frame
    assert list(frame.index) == ["u1", "u2", "u3"]
    u1, u2, u3 = frame.loc["u1"], frame.loc["u2"], frame.loc["u3"]
    assert (u1.clicks, u1.distinct_pages, u1.active_days, u1.sessions) == (3, 2, 2, 2)
    assert u1.avg_click_time == pytest.approx(15.0)  # NULL time is not counted
    assert (u1.searches, u1.article_views, u1.total_article_time) == (1, 0, 0)
    assert u1.recency_days == 0  # the newest event overall (data as of) is u1's search
    assert (u2.article_views, u2.total_article_time, u2.avg_article_time) == (2, 100, 100)
    assert u2.recency_days == pytest.approx(8.5)
    assert (u3.clicks, u3.searches, u3.avg_click_time) == (0, 1, 0)
    assert result.detail["events"] == {"clickstream": 4, "search_queries": 2, "article_views": 2}


def test_no_events_is_a_clear_error(engine):
    with pytest.raises(NoDataError, match="no behaviour events"):
        aggregate_event_features(engine)


def test_unknown_feature_is_rejected(engine):
    with pytest.raises(ConfigError, match="unknown feature"):
        aggregate_event_features(engine, ["clicks", "likes"])


def test_a_load_during_the_parallel_read_stops_the_build(mariadb_engine, monkeypatch, tmp_path):
    """MariaDB reads the sources on two connections; a load landing meanwhile is refused."""
    engine = mariadb_engine
    insert_frame(engine, clickstream, [click("u1", 1.0, "/a", 10)])
    late = tmp_path / "late.csv"
    late.write_text("user_id,timestamp,query\nu9,2026-11-20 10:00:00,shoes\n")
    read_source = features._read_source

    def read_while_a_file_lands(engine_, make_query, *rest):
        if make_query is features._searches_query:
            ingest_csv(engine_, late, "search_queries")
        return read_source(engine_, make_query, *rest)

    monkeypatch.setattr(features, "_read_source", read_while_a_file_lands)
    with pytest.raises(SegmentationError, match="events were loaded while the features"):
        aggregate_event_features(engine)
    monkeypatch.undo()
    assert "u9" in aggregate_event_features(engine).frame.index  # a new build sees it
