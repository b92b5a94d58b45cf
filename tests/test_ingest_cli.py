"""The ingest commands' help and summaries."""

from __future__ import annotations

import pytest

from segmentation.cli import main


@pytest.mark.parametrize(
    "command, expected",
    [
        (
            "ingest",
            ["--map COLUMN=FILE_COLUMN", "--mapping FILE.json", "'%d/%m/%Y %H:%M'", "--keep"],
        ),
        ("ingest-features", ["--id-column COLUMN", "--skip-bad-rows", "--id-offset N", "--lower"]),
        ("generate", ["--users N", "--seed", "--days", "50% low"]),
    ],
)
def test_help(capsys, command, expected):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert all(text in out for text in expected), out


def test_ingest_help_lists_every_table_and_its_columns(capsys):
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    out = capsys.readouterr().out
    assert "clickstream     user_id, timestamp, url; optional referrer" in out
    assert "users           user_id; optional country, device, plan, signup_date" in out
