"""The schema upgrades itself: a database made before the attribute snapshot gets its columns,
and a run built before it says it has no attributes instead of answering without them."""

from sqlalchemy import inspect, text

from segmentation import db
from segmentation.answering import CannotApply
from segmentation.queries import SegmentQueries
from segmentation.query import Filter, Query
from segmentation.schema import SNAPSHOT_COLUMNS, ensure_schema


def test_old_user_segments_get_the_snapshot_columns_and_old_runs_say_so(db_url):
    engine = db.get_engine(db_url)
    with engine.begin() as conn:  # as the table was before the snapshot existed
        for column in SNAPSHOT_COLUMNS:
            conn.execute(text(f"ALTER TABLE user_segments DROP COLUMN {column}"))
        conn.execute(
            text(
                "INSERT INTO segmentation_runs (id, created_at, source, algorithm, k, params, "
                "model, metrics, overall, n_users, status) VALUES (1, '2026-11-01 10:00:00', "
                "'events', 'kmeans', 2, :params, :model, '{}', '{}', 1, 'complete')"
            ),
            {
                "params": '{"features": ["clicks"], "names": ["Low", "High"]}',
                "model": '{"names": ["Low", "High"]}',
            },
        )
        conn.execute(
            text(
                "INSERT INTO segment_profiles (run_id, segment, `rank`, cluster, size, share, "
                "score, means, medians, centre) VALUES (1, 'Low', 0, 0, 1, 1.0, 0.0, "
                "'{\"clicks\": 3}', '{\"clicks\": 3}', '{}')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO user_segments (run_id, user_id, cluster, segment, score, distance, "
                "features) VALUES (1, 'u1', 0, 'Low', 0.1, 0.2, '{\"clicks\": 3}')"
            )
        )
    assert not set(SNAPSHOT_COLUMNS) & {
        c["name"] for c in inspect(engine).get_columns("user_segments")
    }
    ensure_schema(engine)
    assert set(SNAPSHOT_COLUMNS) <= {
        c["name"] for c in inspect(engine).get_columns("user_segments")
    }
    queries = SegmentQueries(engine=engine)
    assert queries.answer(Query("count", segments=("Low",))).total.n == 1
    try:
        queries.answer(Query("count", filters=(Filter("country", ("DE",)),)))
    except CannotApply as exc:
        assert "built before user attributes were kept with each run" in str(exc)
    else:
        raise AssertionError("an old run must not be filtered as if it had attributes")
