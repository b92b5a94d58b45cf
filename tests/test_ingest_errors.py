"""Bad input: exit status 2, a message naming file, line, column and problem, and nothing loaded."""

from __future__ import annotations

import pytest

from segmentation.cli import main
from segmentation.errors import EXIT_BAD_INPUT, EXIT_DATABASE
from tests.test_ingest_support import (
    CLICKS_HEADER,
    CLICKS_ROWS,
    assert_nothing_loaded,
    clicks_file,
    run_cli,
    write_csv,
)

GOOD = CLICKS_ROWS[0]


def fails(capsys, db_url, engine, *argv):
    """Run the CLI, expect exit status 2 and an empty database; return stderr."""
    code, out, err = run_cli(capsys, db_url, *argv)
    assert code == EXIT_BAD_INPUT, (out, err)
    assert err.startswith("error: ")
    assert_nothing_loaded(engine)
    return err


def ingest_fails(capsys, db_url, engine, path, table="clickstream", *options):
    return fails(capsys, db_url, engine, "ingest", table, str(path), *options)


def test_missing_required_column_names_it_and_the_columns_found(capsys, db_url, engine, tmp_path):
    path = write_csv(tmp_path, "c.csv", ["user_id,url,device", "u1,/a,iOS"])
    err = ingest_fails(capsys, db_url, engine, path)
    assert f"{path}:1: missing required column(s) 'timestamp'" in err
    assert "the file's columns are: user_id, url, device" in err


def test_unknown_column_without_mapping_is_named_with_a_hint(capsys, db_url, engine, tmp_path):
    path = write_csv(tmp_path, "c.csv", [CLICKS_HEADER + ",colour", GOOD + ",red"])
    err = ingest_fails(capsys, db_url, engine, path)
    assert f"{path}:1: unknown column(s) 'colour' for table clickstream" in err
    assert "--map" in err


def test_mapping_a_column_the_file_lacks(capsys, db_url, engine, tmp_path):
    path = clicks_file(tmp_path, [GOOD])
    err = ingest_fails(capsys, db_url, engine, path, "clickstream", "--map", "url=page")
    assert "'page'" in err and "the file's columns are: user_id, timestamp, url" in err


@pytest.mark.parametrize(
    "row, found",
    [(GOOD + ",extra", 8), ("u1,2026-10-01 10:00:00,/a", 3)],
    ids=["extra-field", "missing-fields"],
)
def test_wrong_number_of_fields(capsys, db_url, engine, tmp_path, row, found):
    path = clicks_file(tmp_path, [GOOD, row, GOOD.replace("u1", "u9")])
    err = ingest_fails(capsys, db_url, engine, path)
    assert f"{path}:3: expected 7 fields (as in the header), found {found}" in err


@pytest.mark.parametrize(
    "value, message",
    [
        ("12s", "column 'time_spent': '12s' is not a number of seconds"),
        ("-5", "column 'time_spent': negative duration -5.0: must be >= 0"),
        ("inf", "column 'time_spent': 'inf' is not a finite number"),
    ],
)
def test_bad_durations(capsys, db_url, engine, tmp_path, value, message):
    path = clicks_file(tmp_path, [GOOD, f"u2,2026-10-01 10:00:00,/a,,Web,s9,{value}"])
    err = ingest_fails(capsys, db_url, engine, path)
    assert f"{path}:3: {message}" in err


@pytest.mark.parametrize(
    "value, options, message",
    [
        ("yesterday", (), "column 'timestamp': 'yesterday' is not a timestamp"),
        ("2026-02-30 10:00:00", (), "'2026-02-30 10:00:00' is not a timestamp"),
        ("1790000000", (), "it looks like epoch_s: use --timestamp-format epoch_s"),
        ("1790000000", ("--timestamp-format", "epoch_ms"), "is it epoch_s?"),
        ("17900x", ("--timestamp-format", "epoch_s"), "'17900x' is not a number"),
        ("2026-10-01", ("--timestamp-format", "%d/%m/%Y"), "does not match --timestamp-format"),
    ],
)
def test_bad_timestamps(capsys, db_url, engine, tmp_path, value, options, message):
    path = write_csv(
        tmp_path, "q.csv", ["user_id,timestamp,query", "u1,1790000000,a", f"u2,{value},b"]
    )
    if not options:  # the first row must parse for the second to be the bad one
        path = write_csv(
            tmp_path,
            "q.csv",
            ["user_id,timestamp,query", "u1,2026-10-01 10:00:00,a", f"u2,{value},b"],
        )
    err = ingest_fails(capsys, db_url, engine, path, "search_queries", *options)
    assert f"{path}:3: column 'timestamp': " in err and message in err


def test_missing_required_value(capsys, db_url, engine, tmp_path):
    path = clicks_file(tmp_path, [GOOD, ",2026-10-01 10:00:00,/a,,Web,s9,1"])
    err = ingest_fails(capsys, db_url, engine, path)
    assert err.startswith("error: 1 problem(s) found, nothing was loaded:\n")
    assert f"{path}:3: column 'user_id': missing value (required)" in err


def test_value_too_long_for_its_column(capsys, db_url, engine, tmp_path):
    path = clicks_file(tmp_path, [GOOD, "u" * 65 + ",2026-10-01 10:00:00,/a,,Web,s9,1"])
    err = ingest_fails(capsys, db_url, engine, path)
    assert f"{path}:3: column 'user_id': value is 65 characters long; at most 64 fit" in err


def test_empty_file(capsys, db_url, engine, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    err = ingest_fails(capsys, db_url, engine, path)
    assert f"{path}: the file is empty" in err


def test_header_only(capsys, db_url, engine, tmp_path):
    path = write_csv(tmp_path, "h.csv", [CLICKS_HEADER, "", "  "])
    err = ingest_fails(capsys, db_url, engine, path)
    assert f"{path}:1: the file has a header but no data rows" in err


def test_duplicate_rows_name_both_lines(capsys, db_url, engine, tmp_path):
    other = CLICKS_ROWS[1]
    path = clicks_file(tmp_path, [GOOD, other, CLICKS_ROWS[2], GOOD, GOOD])
    err = ingest_fails(capsys, db_url, engine, path)
    assert f"{path}:5: duplicate row: the same as line 2" in err
    assert f"{path}:6: duplicate row: the same as line 2" in err
    assert ":3: duplicate" not in err and ":4: duplicate" not in err


def test_duplicate_rows_in_different_blocks(capsys, db_url, engine, tmp_path):
    rows = [f"u{i},2026-10-01 10:00:00,/p/{i},,Web,s{i},1" for i in range(300)]
    path = clicks_file(tmp_path, rows + [rows[7]])
    err = ingest_fails(capsys, db_url, engine, path, "clickstream", "--block-mb", "0.001")
    assert f"{path}:302: duplicate row: the same as line 9" in err


def test_every_problem_is_reported_with_its_physical_line(capsys, db_url, engine, tmp_path):
    path = write_csv(
        tmp_path,
        "c.csv",
        [
            CLICKS_HEADER,
            "",
            'u1,2026-10-01 10:00:00,"/multi',
            'line",,Web,s1,1',  # one record on lines 3-4
            "",
            "u2,not a time,/a,,Web,s2,1",  # line 6
            "u3,2026-10-01 10:00:00,/a,,Web,s3,-1",  # line 7
            "u4,2026-10-01 10:00:00,/a,,Web",  # line 8
        ],
        crlf=True,
    )
    err = ingest_fails(capsys, db_url, engine, path)
    assert "3 problem(s) found, nothing was loaded" in err
    assert f"{path}:6: column 'timestamp': 'not a time' is not a timestamp" in err
    assert f"{path}:7: column 'time_spent': negative duration -1.0" in err
    assert f"{path}:8: expected 7 fields (as in the header), found 5" in err


def test_a_late_problem_rolls_back_blocks_already_written(capsys, db_url, engine, tmp_path):
    rows = [f"u{i},2026-10-01 10:00:00,/p/{i},,Web,s{i},1" for i in range(2000)]
    path = clicks_file(tmp_path, rows + ["u0,2026-10-01 10:00:00,/late,,Web,s0,oops"])
    err = ingest_fails(capsys, db_url, engine, path, "clickstream", "--block-mb", "0.002")
    assert f"{path}:2002: column 'time_spent': 'oops' is not a number" in err


def test_problems_are_capped(capsys, db_url, engine, tmp_path):
    rows = [f"u{i},2026-10-01 10:00:00,/p,,Web,s{i},x{i}" for i in range(1500)]
    err = ingest_fails(capsys, db_url, engine, clicks_file(tmp_path, rows))
    assert "stopped after the first 1,000 problems; there may be more" in err


@pytest.mark.parametrize(
    "row, message",
    [
        ('u2,2026-10-01 10:00:00,/a"b,,Web,s2,1', "a '\"' inside a field that is not quoted"),
        ('u2,2026-10-01 10:00:00,"/a,,Web,s2,1', "a quoted field is never closed"),
        ("u2,2026-10-01 10:00:00,/a\r,,Web,s2,1", "a carriage return (CR) without a line feed"),
    ],
    ids=["stray-quote", "unclosed-quote", "bare-cr"],
)
def test_broken_quoting_and_line_endings(capsys, db_url, engine, tmp_path, row, message):
    path = clicks_file(tmp_path, [GOOD, row])
    err = ingest_fails(capsys, db_url, engine, path)
    assert f"{path}:3: {message}" in err


def test_bytes_that_are_not_utf8(capsys, db_url, engine, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        (CLICKS_HEADER + "\n" + GOOD + "\n").encode() + b"u2,2026-10-01,/caf\xe9,,,,\n"
    )
    err = ingest_fails(capsys, db_url, engine, path)
    assert f"{path}:3: byte 0xe9 is not valid UTF-8" in err


def test_repeated_user_ids_need_keep(capsys, db_url, engine, tmp_path):
    path = write_csv(tmp_path, "u.csv", ["user_id,country", "u1,US", "u2,BR", "u1,FR"])
    err = ingest_fails(capsys, db_url, engine, path, "users")
    assert f"{path}:4: user id 'u1' is also on line 2" in err and "--keep first" in err


@pytest.mark.parametrize(
    "options, message",
    [
        (("--map", "url"), "--map expects TABLE_COLUMN=FILE_COLUMN"),
        (("--map", "colour=url"), "table clickstream has no column 'colour'"),
        (("--keep", "first"), "--keep only applies to the users table"),
        (("--timestamp-format", "fortnightly"), "unknown timestamp format 'fortnightly'"),
    ],
)
def test_bad_options(capsys, db_url, engine, tmp_path, options, message):
    err = ingest_fails(
        capsys, db_url, engine, clicks_file(tmp_path, [GOOD]), "clickstream", *options
    )
    assert message in err


def test_bad_mapping_file(capsys, db_url, engine, tmp_path):
    mapping = tmp_path / "m.json"
    mapping.write_text('{"url": "page",\n "device": 3}')
    path = clicks_file(tmp_path, [GOOD])
    err = ingest_fails(capsys, db_url, engine, path, "clickstream", "--mapping", str(mapping))
    assert f"{mapping}: expected a JSON object of strings" in err


def test_missing_file(capsys, db_url, engine, tmp_path):
    err = ingest_fails(capsys, db_url, engine, tmp_path / "nope.csv")
    assert "nope.csv: no such file" in err


def test_unreachable_database_exits_3(tmp_path, capsys):
    path = clicks_file(tmp_path, [GOOD])
    url = "mysql+pymysql://root@127.0.0.1:1/segment_insights"
    assert main(["--database-url", url, "ingest", "clickstream", str(path)]) == EXIT_DATABASE
    assert "cannot reach the database" in capsys.readouterr().err
