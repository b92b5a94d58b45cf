"""Per-user feature tables: the three real files, strict and --skip-bad-rows, replace by name."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from segmentation.db import connect
from segmentation.errors import ConfigError, InputErrors
from segmentation.ingest import load_feature_table
from segmentation.schema import feature_datasets, feature_rows
from tests.test_ingest_support import run_cli, table_counts, write_csv

USERBEHAVIOUR_FEATURES = [
    "Average Screen Time",
    "Average Spent on App (INR)",
    "Left Review",
    "Ratings",
    "New Password Request",
    "Last Visited Minutes",
]
SWAPPED_IDS = {str(i) for i in list(range(251, 289)) + list(range(751, 789))}


def stored_features(engine, name):
    """{user_id: features} of feature table `name`, and its dataset row."""
    with connect(engine) as conn:
        dataset = conn.execute(
            select(feature_datasets).where(feature_datasets.c.name == name)
        ).one()
        rows = conn.execute(
            select(feature_rows.c.user_id, feature_rows.c.features).where(
                feature_rows.c.dataset_id == dataset.id
            )
        ).all()
    return {row.user_id: row.features for row in rows}, dataset


def test_userbehaviour(shared_data, db_url, engine, capsys):
    code, out, err = run_cli(
        capsys,
        db_url,
        "ingest-features",
        "apps",
        str(shared_data / "userbehaviour.csv"),
        "--id-column",
        "userid",
        "--lower",
        "Last Visited Minutes",
    )
    assert (code, err) == (0, "")
    assert "feature table 'apps'" in out and "999 users, 6 features" in out
    rows, dataset = stored_features(engine, "apps")
    assert len(rows) == dataset.n_users == 999
    assert [(f["name"], f["lower_is_better"]) for f in dataset.features] == [
        (name, name == "Last Visited Minutes") for name in USERBEHAVIOUR_FEATURES
    ]
    # 1001,17,634,1,9,7,2990,Installed
    assert rows["1001"] == dict(zip(USERBEHAVIOUR_FEATURES, [17.0, 634.0, 1.0, 9.0, 7.0, 2990.0]))
    assert dataset.id_column == "userid" and dataset.report["ignored_columns"] == ["Status"]
    assert dataset.report["column_types"]["Status"] == "text"


def test_a_text_column_is_not_accepted_as_a_feature(shared_data, db_url, engine, capsys):
    path = str(shared_data / "userbehaviour.csv")
    code, _out, err = run_cli(
        capsys,
        db_url,
        "ingest-features",
        "apps",
        path,
        "--id-column=userid",
        "--features=Ratings,Status",
    )
    assert code == 2
    assert "features must be numeric: 'Status' holds text (e.g. 'Installed', 'Uninstalled')" in err
    assert table_counts(engine)["feature_datasets"] == 0


def test_app_features_without_an_id_column(shared_data, engine):
    result = load_feature_table(
        engine,
        shared_data / "app_user_behavior_features15.csv",
        "app15",
        id_column="none",
        lower_is_better=["days_since_last_login", "crash_events_last_30_days"],
        id_offset=100000,
    )
    assert result.n_users == 50_000 and len(result.features) == 15
    lower = {f["name"] for f in result.features if f["lower_is_better"]}
    assert lower == {"days_since_last_login", "crash_events_last_30_days"}
    rows, dataset = stored_features(engine, "app15")
    assert set(rows) == {str(100000 + i) for i in range(50_000)}
    assert dataset.id_column == "none"
    # Row 1: 5,3.41,52.71,13,5,8,8,1,0,20,9,5,2,55.79,1152; row 3 is user 100002.
    assert rows["100000"]["avg_session_duration_min"] == 3.41
    assert rows["100000"]["account_age_days"] == 1152.0
    assert rows["100002"]["sessions_per_week"] == 12.0


def test_socialmedia_strict_lists_every_bad_row_with_its_line(shared_data, db_url, engine, capsys):
    path = str(shared_data / "socialmedia_emotion_train.csv")
    code, _out, err = run_cli(
        capsys, db_url, "ingest-features", "social", path, "--id-column", "User_ID"
    )
    assert code == 2
    assert "77 problem(s) found, nothing was loaded" in err
    # User_ID 251 is on line 503 (a blank line follows every record).
    assert (
        f"{path}:503: column 'Age': 'Male' is not a number; it looks swapped with column "
        "'Gender' ('27')" in err
    )
    assert err.rstrip().endswith("hint: --skip-bad-rows loads the other rows and reports these")
    assert table_counts(engine)["feature_datasets"] == 0
    with pytest.raises(InputErrors) as caught:
        load_feature_table(engine, path, "social", "User_ID")
    lines = {error.line for error in caught.value.errors}
    assert 1285 in lines and len(lines) == 77  # the junk line, and 76 swapped rows
    junk = [error for error in caught.value.errors if error.line == 1285][0]
    assert "expected 10 fields (as in the header), found 2: 'Tabii" in junk.message


def test_socialmedia_skip_bad_rows_reports_them(shared_data, engine):
    result = load_feature_table(
        engine,
        shared_data / "socialmedia_emotion_train.csv",
        "social",
        "User_ID",
        skip_bad_rows=True,
    )
    report = result.report
    assert result.n_users == 924
    assert (report["rows_read"], report["rows_loaded"], report["rows_skipped"]) == (1001, 924, 77)
    assert report["skipped_by_reason"] == {"swapped columns": 76, "wrong number of fields": 1}
    assert report["swapped_columns"] == [{"columns": ["Age", "Gender"], "rows": 76}]
    swapped = [row for row in report["skipped"] if row["category"] == "swapped columns"]
    assert {row["user_id"] for row in swapped} == SWAPPED_IDS
    assert [row["line"] for row in report["skipped"] if row["user_id"] is None] == [1285]
    assert [f["name"] for f in result.features][:2] == ["Age", "Daily_Usage_Time (minutes)"]
    rows, dataset = stored_features(engine, "social")
    assert len(rows) == 924 and not SWAPPED_IDS & set(rows)
    assert dataset.report == report


def test_swaps_outside_the_features_are_warnings(shared_data, engine):
    result = load_feature_table(
        engine,
        shared_data / "socialmedia_emotion_train.csv",
        "social",
        "User_ID",
        features=["Posts_Per_Day", "Likes_Received_Per_Day"],
        skip_bad_rows=True,
    )
    assert result.n_users == 1000
    assert result.report["skipped_by_reason"] == {"wrong number of fields": 1}
    assert len(result.report["warnings"]) == 76
    assert result.report["warnings"][0].startswith(
        "line 503: columns 'Age' and 'Gender' look swapped"
    )


def test_loading_a_name_again_replaces_it(shared_data, engine):
    path = shared_data / "userbehaviour.csv"
    load_feature_table(engine, path, "apps", "userid")
    second = load_feature_table(engine, path, "apps", "userid", features=["Ratings", "Left Review"])
    rows, dataset = stored_features(engine, "apps")
    assert dataset.id == second.dataset_id and len(rows) == 999
    assert set(rows["1001"]) == {"Ratings", "Left Review"}
    assert table_counts(engine)["feature_datasets"] == 1
    assert table_counts(engine)["feature_rows"] == 999


DUPLICATES = ["uid,clicks,minutes", "a,1,10", "b,2,20", "a,3,30", "c,x,40"]


def test_duplicate_ids_fail_or_are_skipped(engine, tmp_path):
    path = write_csv(tmp_path, "f.csv", DUPLICATES)
    with pytest.raises(InputErrors) as caught:
        load_feature_table(engine, path, "small", "uid")
    messages = sorted(str(error) for error in caught.value.errors)
    assert messages == [
        f"{path}:4: user id 'a' is also on line 2 (one row per user)",
        f"{path}:5: column 'clicks': 'x' is not a (finite) number",
    ]
    assert table_counts(engine)["feature_rows"] == 0
    result = load_feature_table(engine, path, "small", "uid", skip_bad_rows=True)
    rows, _dataset = stored_features(engine, "small")
    assert result.n_users == 2 and rows == {
        "a": {"clicks": 1.0, "minutes": 10.0},
        "b": {"clicks": 2.0, "minutes": 20.0},
    }


@pytest.mark.parametrize(
    "options, message",
    [
        ({"id_column": "user"}, "no id column 'user'"),
        ({"id_column": "uid", "features": ["clicks", "views"]}, "no column 'views' in the file"),
        ({"id_column": "uid", "lower_is_better": ["views"]}, "--lower names 'views'"),
        ({"id_column": "uid", "features": ["uid"]}, "'uid' is the id column"),
    ],
)
def test_bad_feature_options(engine, tmp_path, options, message):
    path = write_csv(tmp_path, "f.csv", ["uid,clicks,minutes", "a,1,10"])
    with pytest.raises(ConfigError, match=message):
        load_feature_table(engine, path, "small", **options)
    assert table_counts(engine)["feature_datasets"] == 0


def test_header_only_feature_file(engine, tmp_path, db_url, capsys):
    path = write_csv(tmp_path, "f.csv", ["uid,clicks"])
    code, _out, err = run_cli(capsys, db_url, "ingest-features", "x", str(path), "--id-column=uid")
    assert code == 2 and f"{path}:1: the file has a header but no data rows" in err
