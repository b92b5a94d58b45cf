"""The real Globo.com news clicks load with a stated mapping (both backends, ~10 s each)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from segmentation.db import connect
from segmentation.schema import clickstream, users
from tests.test_ingest_support import run_cli, table_counts

GLOBO = "globo_news_clicks_48h.csv"
CLICK_MAPPING = [
    "--map=user_id=user_id",
    "--map=session_id=session_id",
    "--map=url=click_article_id",
    "--map=timestamp=click_timestamp",
    "--map=device=click_deviceGroup",
    "--map=referrer=click_referrer_type",
    "--timestamp-format=epoch_ms",
]
USER_MAPPING = ["--map=country=click_country", "--map=device=click_deviceGroup"]


def test_globo_clicks_load_into_clickstream(shared_data, db_url, engine, capsys):
    path = str(shared_data / GLOBO)
    code, out, err = run_cli(capsys, db_url, "ingest", "clickstream", path, *CLICK_MAPPING)
    assert (code, err) == (0, "")
    assert "loaded 437,746 rows into clickstream" in out
    assert (
        "ignored columns (not mapped): session_start, session_size, click_environment, "
        "click_os, click_country, click_region" in out
    )
    with connect(engine) as conn:
        summary = conn.execute(
            select(
                func.count(),
                func.count(func.distinct(clickstream.c.user_id)),
                func.count(func.distinct(clickstream.c.session_id)),
                func.min(clickstream.c.timestamp),
                func.count(clickstream.c.time_spent),
            )
        ).one()
        first = conn.execute(select(clickstream).order_by(clickstream.c.id).limit(1)).one()
    assert tuple(summary) == (437_746, 115_268, 158_452, datetime(2017, 10, 1, 3, 0, 0), 0)
    # user_id,session_id,...,click_article_id,click_timestamp,...: 0,1506825423271737,...
    assert (first.user_id, first.url, first.session_id, first.device, first.referrer) == (
        "0",
        "157541",
        "1506825423271737",
        "3",
        "2",
    )
    assert first.timestamp == datetime(2017, 10, 1, 3, 0, 28)  # 1506826828020 ms


def test_globo_users_need_an_explicit_keep(shared_data, db_url, engine, capsys):
    path = str(shared_data / GLOBO)
    code, _out, err = run_cli(capsys, db_url, "ingest", "users", path, *USER_MAPPING)
    assert code == 2
    assert f"{path}:3: user id '0' is also on line 2" in err
    assert table_counts(engine)["users"] == 0

    code, out, err = run_cli(capsys, db_url, "ingest", "users", path, *USER_MAPPING, "--keep=last")
    assert (code, err) == (0, "")
    assert "loaded 115,268 rows into users" in out and "322,478 rows with a repeated user" in out
    with connect(engine) as conn:
        count = conn.execute(select(func.count()).select_from(users)).scalar()
        countries = conn.execute(select(func.count(func.distinct(users.c.country)))).scalar()
    assert count == 115_268 and countries > 1
