"""`python -m segmentation`: every command takes argv and returns meaningful exit codes."""

import re

import pytest
from sqlalchemy import func, select

from segmentation.cli import build_parser, main
from segmentation.errors import EXIT_BAD_INPUT, EXIT_DATABASE, EXIT_NO_DATA
from segmentation.schema import segmentation_runs, users
from tests.factories import insert_frame, load_population, tiered_population

COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: python -m segmentation" in capsys.readouterr().out


def cli(db_url, *args):
    return main(["--quiet", "--database-url", db_url, *args])


def test_build_without_data_exits_4(db_url, capsys):
    assert cli(db_url, "build") == EXIT_NO_DATA
    assert "no behaviour events loaded yet" in capsys.readouterr().err


def test_show_without_run_exits_4(db_url, capsys):
    assert cli(db_url, "show") == EXIT_NO_DATA
    assert "no segmentation run yet" in capsys.readouterr().err


def test_bad_options_exit_2_and_write_nothing(engine, db_url, capsys):
    load_population(engine, tiered_population(5))
    assert cli(db_url, "build", "--k", "1") == EXIT_BAD_INPUT
    assert "k must be at least 2" in capsys.readouterr().err
    assert cli(db_url, "build", "--k", "4") == 0  # tier names by default
    assert cli(db_url, "build", "--k", "4", "--names", "a,b") == EXIT_BAD_INPUT
    assert "2 names given for k=4" in capsys.readouterr().err
    assert cli(db_url, "build", "--source", "features:nope") == EXIT_NO_DATA
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(segmentation_runs)).scalar_one() == 1


def test_unreachable_database_exits_3(capsys):
    code = main(["--database-url", "mysql+pymysql://root@127.0.0.1:1/nowhere", "show"])
    assert code == EXIT_DATABASE
    assert (
        "cannot reach the database mysql+pymysql://root@127.0.0.1:1/nowhere"
        in capsys.readouterr().err
    )


def test_build_and_inspect(engine, db_url, capsys, tmp_path):
    load_population(engine, tiered_population(20))
    insert_frame(
        engine,
        users,
        [{"user_id": f"h{i:03d}", "plan": "premium", "file_id": 1} for i in range(20)],
    )
    assert cli(db_url, "build", "--n-init", "2") == 0
    out = capsys.readouterr().out
    assert "Run #1 is current: 60 users" in out and "Highly Engaged" in out and "silhouette" in out
    assert cli(db_url, "show") == 0
    out = capsys.readouterr().out
    assert out.startswith("60 users in 3 segments:"), out
    assert "• Highly Engaged: 20 users (33.3%)" in out and "*" not in out
    assert cli(db_url, "user", "l001") == 0
    assert "User l001 is in Low Engagement." in capsys.readouterr().out
    assert cli(db_url, "user", "zzz") == EXIT_NO_DATA
    assert cli(db_url, "members", "high", "--limit", "3") == 0
    assert "Highly Engaged users: 1–3 of 20 (most engaged first)" in capsys.readouterr().out
    assert cli(db_url, "breakdown", "high", "--by", "plan") == 0
    assert re.search(r"\npremium +20 +100.0% +100.0%", capsys.readouterr().out)
    assert cli(db_url, "show", "--where", "plan=premium") == 0
    assert capsys.readouterr().out.startswith("20 users on the premium plan in 3 segments:")
    assert cli(db_url, "show", "--where", "plan") == EXIT_BAD_INPUT
    assert cli(db_url, "ask", "how many premium users are highly engaged?") == 0
    assert "Highly Engaged users on the premium plan: 20" in capsys.readouterr().out
    assert cli(db_url, "ask", "how many users in the north region?") == EXIT_BAD_INPUT
    assert '"north", "region"' in capsys.readouterr().err.replace(
        "cannot use: north, region", '"north", "region"'
    )
    assert cli(db_url, "build", "--n-init", "2") == 0
    assert cli(db_url, "changes") == 0
    assert "From run #1" in capsys.readouterr().out
    assert cli(db_url, "runs") == 0
    out = capsys.readouterr().out
    assert "#2" in out and "#1" in out
    assert cli(db_url, "charts", str(tmp_path)) == 0
    assert len(list(tmp_path.glob("run2-*.png"))) == 5
