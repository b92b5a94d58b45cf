"""The query layer, against real runs on SQLite and MariaDB."""

import pandas as pd
import pytest
from sqlalchemy import event, func, select

from segmentation.answering import CannotApply, UnknownSegment, UnknownUser
from segmentation.build import build_segments
from segmentation.clustering import ClusterSettings
from segmentation.errors import NoDataError
from segmentation.queries import SegmentQueries
from segmentation.query import Filter, Query
from segmentation.schema import clickstream, user_segments, users
from tests.factories import click, insert_frame, load_population, tiered_population

FAST = ClusterSettings(n_init=3, stability_runs=1)


@pytest.fixture
def built(engine):
    load_population(engine, tiered_population(30))
    insert_frame(
        engine,
        users,
        [
            {"user_id": f"{p}{i:03d}", "device": "iOS" if i % 3 else "Android", "file_id": 2}
            for p in "lmh"
            for i in range(30)
            if not (p == "h" and i >= 27)  # three high users have no users row
        ],
    )
    result = build_segments(engine, FAST)
    return SegmentQueries(engine=engine), result


def user_rows(engine, run_id):
    with engine.connect() as conn:
        rows = conn.execute(select(user_segments).where(user_segments.c.run_id == run_id)).all()
    return pd.DataFrame([{**r.features, "user_id": r.user_id, "segment": r.segment} for r in rows])


def test_no_run_says_how_to_make_one(engine):
    with pytest.raises(NoDataError, match="python -m segmentation demo"):
        SegmentQueries(engine=engine).overview()


def test_overview_and_size_equal_the_rows(built, engine):
    queries, result = built
    overview = queries.overview()
    frame = user_rows(engine, result.run_id)
    assert overview.run.id == result.run_id
    assert overview.total_users == len(frame) == 90
    for summary in overview.segments:
        assert summary.size == (frame.segment == summary.name).sum()
    assert overview.overall_means["clicks"] == pytest.approx(frame.clicks.mean())
    size = queries.answer(Query("count", segments=("Highly Engaged",)))
    assert (size.total.n, size.population.n, size.segment_sizes) == (30, 90, {"Highly Engaged": 30})
    assert size.run.id == result.run_id


def test_profile_compare_and_metric(built, engine):
    queries, result = built
    frame = user_rows(engine, result.run_id)
    profile = queries.answer(Query("profile", segments=("Low Engagement",)))
    clicks = next(f for f in profile.features if f.feature == "clicks")
    low = frame[frame.segment == "Low Engagement"]
    assert clicks.value == pytest.approx(low.clicks.mean())
    assert clicks.reference == pytest.approx(frame.clicks.mean())
    comparison = queries.answer(Query("compare", segments=("Low Engagement", "Highly Engaged")))
    searches = next(f for f in comparison.features if f.feature == "searches")
    high = frame[frame.segment == "Highly Engaged"]
    assert (searches.value, searches.reference) == pytest.approx(
        (low.searches.mean(), high.searches.mean())
    )
    metric = queries.answer(
        Query("mean", features=("searches",), group_by=("segment",), rank="most")
    )
    assert metric.ranked()[0].key == ("Highly Engaged",)
    means = {g.key[0]: g.value for g in metric.groups}
    assert means["Moderate Engagement"] == pytest.approx(
        frame[frame.segment == "Moderate Engagement"].searches.mean()
    )
    with pytest.raises(CannotApply, match="no feature 'likes'"):
        queries.answer(Query("mean", features=("likes",)))


def test_user_lookup_explains_with_distances(built):
    queries, _ = built
    user = queries.user_segment("h005")
    assert user.segment == "Highly Engaged"
    assert user.distances[0][0] == "Highly Engaged"  # nearest centre is its own segment
    assert user.distances[0][1] <= user.distances[1][1] <= user.distances[2][1]
    assert user.previous_segment is None and not user.moved
    with pytest.raises(UnknownUser, match="user nobody is not in run #"):
        queries.user_segment("nobody")


def test_each_answer_reads_through_one_connection(built, engine):
    """The run and the numbers of an answer come from one checkout (one snapshot)."""
    queries, _ = built
    queries.overview()  # the first use also checks the schema
    checkouts = []
    listener = lambda *args: checkouts.append(args)  # noqa: E731
    event.listen(engine, "checkout", listener)
    try:
        for ask in (
            lambda: queries.user_segment("h005"),
            lambda: queries.answer(Query("profile", segments=("Low Engagement",))),
            lambda: queries.answer(Query("list", segments=("Highly Engaged",), limit=3)),
            lambda: queries.answer(
                Query("count", segments=("Highly Engaged",), group_by=("device",))
            ),
            lambda: queries.answer(
                Query("median", features=("clicks",), filters=(Filter("device", ("iOS",)),))
            ),
        ):
            checkouts.clear()
            ask()
            assert len(checkouts) == 1
    finally:
        event.remove(engine, "checkout", listener)


def test_members_are_paged_and_ordered(built, engine):
    queries, result = built
    high = Query("list", segments=("Highly Engaged",), limit=10)
    first = queries.answer(high)
    second = queries.answer(high.with_(offset=10))
    assert first.total == 30
    assert len(first.members) == len(second.members) == 10
    scores = [m.score for m in first.members + second.members]
    assert scores == sorted(scores, reverse=True)
    assert not {m.user_id for m in first.members} & {m.user_id for m in second.members}
    least = queries.answer(Query("list", segments=("Low Engagement",), limit=5, order="least"))
    assert [m.score for m in least.members] == sorted(m.score for m in least.members)


def test_breakdown_counts_the_run_snapshot_of_the_users_table(built):
    queries, _ = built
    result = queries.answer(Query("count", segments=("Highly Engaged",), group_by=("device",)))
    assert {g.key[0]: g.n for g in result.groups} == {"iOS": 18, "Android": 9, None: 3}
    ios = queries.answer(
        Query("count", segments=("Highly Engaged",), filters=(Filter("device", ("iOS",)),))
    )
    assert (ios.total.n, ios.segment_sizes["Highly Engaged"]) == (18, 30)
    assert sorted(queries.current_run().params["values"]["device"]) == ["Android", "iOS"]


def test_unknown_segment_lists_the_real_ones(built):
    queries, _ = built
    with pytest.raises(UnknownSegment, match="Low Engagement, Moderate Engagement, Highly Engaged"):
        queries.answer(Query("count", segments=("whales",)))


def test_migration_between_runs(built, engine):
    queries, first = built
    with pytest.raises(NoDataError, match="only run"):
        queries.migration()
    # Low users l000-l009 become very active; a brand-new user appears.
    insert_frame(
        engine,
        clickstream,
        [click(f"l{i:03d}", 0.5 + j % 5, url=f"/x{j % 7}") for i in range(10) for j in range(60)]
        + [click("newbie", 1.0)],
    )
    second = build_segments(engine, FAST)
    change = queries.migration()
    assert (change.from_run.id, change.to_run.id) == (first.run_id, second.run_id)
    before, after = user_rows(engine, first.run_id), user_rows(engine, second.run_id)
    merged = before.merge(after, on="user_id", suffixes=("_a", "_b"))
    expected = merged.groupby(["segment_a", "segment_b"]).size().to_dict()
    assert change.counts == expected
    assert (
        change.between("Low Engagement", "Highly Engaged")
        + change.between("Low Engagement", "Moderate Engagement")
        >= 10
    )
    assert sum(change.new_users.values()) == 1 and change.gone_users == {}
    user = queries.user_segment("l000")
    assert user.previous_segment == "Low Engagement" and user.moved
    # What drove the move: their clicks now against then, straight from both runs' rows.
    clicks = next(c for c in user.changes if c.feature == "clicks")
    now, then = after.set_index("user_id").loc["l000"], before.set_index("user_id").loc["l000"]
    assert (clicks.value, clicks.reference) == (now.clicks, then.clicks)
    assert now.clicks > then.clicks
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(user_segments)).scalar_one()
    assert total == 90 + 91
