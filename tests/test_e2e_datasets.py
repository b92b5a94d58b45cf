"""End to end over REST on three data sets, against the real Rasa and action servers on MariaDB.

1. the demo events (clickstream, searches, article views) with a users table;
2. the seed's own feature table (../shared/data/userbehaviour.csv) built with k=4 and the
   names 'Dormant,Casual,Regular,Power Users' (none of these words is in the training data);
3. the real Globo click log (countries and devices are numeric codes).

Every expected number is computed here with SQL on user_segments, never by the query layer.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from datetime import date
from statistics import median

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.processes import Servers, free_port
from segmentation import db
from segmentation.build import build_segments
from segmentation.clustering import ClusterSettings
from segmentation.schema import ensure_schema
from tests.servers import ARTIFACTS
from tests.test_features_table import USERBEHAVIOUR_FEATURES

FAST = ClusterSettings(n_init=3, stability_runs=1)
UB_NAMES = "Dormant,Casual,Regular,Power Users"


class Dataset:
    """A database with one built run, and the servers answering about it."""

    def __init__(self, url: str, servers: Servers) -> None:
        self.url = url
        self.servers = servers
        self.engine = create_engine(url, future=True)

    def sql(self, query: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(text(query), params).all()

    @property
    def run(self) -> int:
        return self.sql("SELECT MAX(id) FROM segmentation_runs WHERE status = 'complete'")[0][0]

    def count(self, where: str = "1=1", **params) -> int:
        query = f"SELECT COUNT(*) FROM user_segments WHERE run_id = :run AND {where}"
        return self.sql(query, run=self.run, **params)[0][0]

    def values(self, feature: str, where: str = "1=1", **params):
        path = '$."' + feature + '"'
        query = (
            "SELECT CAST(JSON_EXTRACT(features, :path) AS DOUBLE) FROM user_segments "
            f"WHERE run_id = :run AND {where}"
        )
        return [row[0] for row in self.sql(query, path=path, run=self.run, **params)]

    def chat(self):
        """A conversation: send a message, get the text of the replies."""
        sender = f"e2e-{uuid.uuid4().hex[:10]}"

        def say(message: str) -> str:
            response = requests.post(
                f"{self.servers.rasa_url}/webhooks/rest/webhook",
                json={"sender": sender, "message": message},
                timeout=120,
            )
            response.raise_for_status()
            return "\n".join(r.get("text") or "" for r in response.json())

        return say


@contextlib.contextmanager
def dataset(session_database_url: str, name: str, load, tmp_path_factory):
    """A database of its own, loaded by `load(engine, folder)`, served by its own servers."""
    from bot.model import ensure_model

    server_url = make_url(session_database_url)
    database = f"{server_url.database}_{name}"
    server = create_engine(server_url.set(database=""), future=True)
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4"))
    url = server_url.set(database=database).render_as_string(hide_password=False)
    try:
        engine = db.get_engine(url)
        ensure_schema(engine)
        folder = tmp_path_factory.mktemp(name)
        load(engine, folder)
        runtime = tmp_path_factory.mktemp(f"{name}-runtime")
        env = {"DATABASE_URL": url, "SI_RUNTIME_DIR": str(runtime)}
        servers = Servers(
            ensure_model(quiet=True),
            free_port(),
            free_port(),
            extra_env=env,
            log_dir=ARTIFACTS / "logs" / f"e2e-{name}",
            timeout=300,
        )
        with servers:
            data = Dataset(url, servers)
            yield data
            data.engine.dispose()
    finally:
        db.dispose_engines()
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))
        server.dispose()


def load_demo(engine, folder) -> None:
    from segmentation.demo import build_demo

    build_demo(engine, 3000, seed=11, settings=FAST, out_dir=folder)


def load_userbehaviour(engine, folder) -> None:
    from segmentation.ingest.features import load_feature_table
    from tests.conftest import SHARED_DATA

    load_feature_table(
        engine,
        SHARED_DATA / "userbehaviour.csv",
        "apps",
        "userid",
        USERBEHAVIOUR_FEATURES,
        ["Last Visited Minutes"],
    )
    settings = ClusterSettings(k=4, names=UB_NAMES.split(","), n_init=3, stability_runs=1)
    build_segments(engine, settings, source="features:apps")


def load_globo(engine, folder) -> None:
    from segmentation.ingest import ingest_csv
    from tests.conftest import SHARED_DATA
    from tests.test_real_data_segments import GLOBO_CLICKS

    path = SHARED_DATA / "globo_news_clicks_48h.csv"
    ingest_csv(engine, path, "clickstream", GLOBO_CLICKS, timestamp_format="epoch_ms")
    users = {"user_id": "user_id", "country": "click_country", "device": "click_deviceGroup"}
    ingest_csv(engine, path, "users", users, keep="last")
    build_segments(engine, FAST)


@pytest.fixture(scope="module")
def demo(mariadb_database, tmp_path_factory):
    with dataset(mariadb_database, "demo", load_demo, tmp_path_factory) as data:
        yield data


@pytest.fixture(scope="module")
def apps(mariadb_database, tmp_path_factory):
    with dataset(mariadb_database, "apps", load_userbehaviour, tmp_path_factory) as data:
        yield data


@pytest.fixture(scope="module")
def globo(mariadb_database, tmp_path_factory):
    with dataset(mariadb_database, "globo", load_globo, tmp_path_factory) as data:
        yield data


def first_number(reply: str) -> str:
    return re.search(r"\*([\d,.]+(?: s| min| days)?)\*", reply).group(1)


def refused(reply: str) -> bool:
    return reply.startswith("I can't answer that exactly, so I won't guess a number")


# --- demo events --------------------------------------------------------------------------
def test_demo_several_filters_a_segment_and_follow_ups(demo):
    say = demo.chat()
    reply = say("how many premium iOS users in Germany are highly engaged?")
    n = demo.count(
        "segment = 'Highly Engaged' AND plan = 'premium' AND device = 'iOS' AND country = 'DE'"
    )
    assert reply.startswith(
        f"*Highly Engaged* users in Germany (DE) on iOS on the premium plan: *{n:,}* — "
    ), reply
    reply = say("and in France?")
    n = demo.count(
        "segment = 'Highly Engaged' AND plan = 'premium' AND device = 'iOS' AND country = 'FR'"
    )
    assert reply.startswith(
        f"*Highly Engaged* users in France (FR) on iOS on the premium plan: *{n:,}*"
    )
    assert '"France" instead of "Germany"' in reply
    reply = say("what about Android?")
    n = demo.count(
        "segment = 'Highly Engaged' AND plan = 'premium' AND device = 'Android' "
        "AND country = 'FR'"
    )
    assert f"on Android on the premium plan: *{n:,}*" in reply.splitlines()[0]


def test_demo_filtered_mean_and_median(demo):
    say = demo.chat()
    reply = say("mean searches for low engagement users in Brazil")
    values = demo.values("searches", "segment = 'Low Engagement' AND country = 'BR'")
    mean = sum(values) / len(values)
    from segmentation import formatting as fmt

    assert reply.startswith(
        f"Average searches of *Low Engagement* users in Brazil (BR): *{fmt.number(mean)}* "
        f"({len(values):,} users)"
    ), reply
    reply = say("and the median?")
    assert reply.startswith(
        f"Median searches of *Low Engagement* users in Brazil (BR): *{fmt.number(median(values))}*"
    ), reply


def test_demo_values_side_by_side(demo):
    from segmentation import formatting as fmt

    say = demo.chat()
    reply = say("average clicks of highly engaged users on android vs ios")
    assert reply.startswith(
        "Average clicks of *Highly Engaged* users on Android or iOS, by device"
    ), reply
    for device in ("Android", "iOS"):
        values = demo.values("clicks", "segment = 'Highly Engaged' AND device = :d", d=device)
        mean = fmt.number(sum(values) / len(values))
        assert re.search(rf"{device}\s+{re.escape(mean)}\s+{len(values):,}", reply), reply
    # "top 3 countries by ...": countries ranked, "by" is not Belarus
    ranked = demo.sql(
        "SELECT country, COUNT(*) AS n FROM user_segments WHERE run_id = :run AND "
        "segment = 'Highly Engaged' GROUP BY country ORDER BY n DESC, country",
        run=demo.run,
    )
    reply = say("top 3 countries by highly engaged users")
    top = ranked[0]
    assert f"({top[0]})* has the most *Highly Engaged* users: *{top[1]:,}*" in reply, reply
    assert f"The top 3 of {len(ranked)}:" in reply, reply
    for country, n in ranked[:3]:
        assert re.search(rf"\({country}\)\s+{n:,}\s", reply), (country, reply)
    assert f"({ranked[3][0]})" not in reply, reply


def test_demo_directions_are_honoured(demo):
    say = demo.chat()
    means = demo.sql(
        "SELECT segment, AVG(CAST(JSON_EXTRACT(features, '$.sessions') AS DOUBLE)) AS m "
        "FROM user_segments WHERE run_id = :run GROUP BY segment ORDER BY m",
        run=demo.run,
    )
    assert say("which segment has the fewest sessions?").startswith(
        f"*{means[0][0]}* has the lowest"
    )
    assert say("which segment has the most sessions?").startswith(
        f"*{means[-1][0]}* has the highest"
    )
    counts = demo.sql(
        "SELECT country, COUNT(*) AS n FROM user_segments WHERE run_id = :run AND "
        "segment = 'Highly Engaged' GROUP BY country ORDER BY n DESC, country",
        run=demo.run,
    )
    reply = say("which country has the most highly engaged users?")
    assert f"the most *Highly Engaged* users: *{counts[0][1]:,}*" in reply.splitlines()[0]
    assert f"({counts[0][0]})" in reply.splitlines()[0]
    reply = say("and the fewest?")
    assert f"the fewest *Highly Engaged* users: *{counts[-1][1]:,}*" in reply.splitlines()[0]


def test_demo_signup_dates(demo):
    say = demo.chat()
    last_event = demo.sql("SELECT data_as_of FROM segmentation_runs WHERE id = :r", r=demo.run)[0][
        0
    ]
    year = last_event.year
    n = demo.count(
        "segment = 'Highly Engaged' AND signup_date >= :a AND signup_date < :b",
        a=date(year, 1, 1),
        b=date(year + 1, 1, 1),
    )
    reply = say("how many highly engaged users joined this year?")
    assert reply.startswith(f"*Highly Engaged* users who signed up in {year}: *{n:,}* — "), reply


def test_demo_parts_that_cannot_be_applied(demo):
    say = demo.chat()
    reply = say("how many highly engaged users are in the north region?")
    assert refused(reply) and '"north"' in reply and "region" in reply
    reply = say("average clicks of platinum plan users")
    assert (
        refused(reply) and 'No plan matches "platinum"; the plans are basic, free, premium' in reply
    )
    reply = say("how many users renewed their subscription last month?")
    assert refused(reply) and "renew" in reply


# --- the seed's feature table, k=4, custom names --------------------------------------------
def test_apps_custom_names_and_column_words(apps):
    say = apps.chat()
    casual = apps.count("segment = 'Casual'")
    assert say("number of users in the casual group").startswith(f"*Casual* has *{casual:,} users*")
    regular = apps.count("segment = 'Regular'")
    assert say("describe the regular users").startswith(f"*Regular*: {regular:,} users")
    ratings = apps.values("Ratings", "segment = 'Power Users'")
    from segmentation import formatting as fmt

    reply = say("average ratings of power users")
    assert reply.startswith(
        f"Average Ratings of *Power Users*: *{fmt.number(sum(ratings) / len(ratings))}*"
    ), reply
    resets = apps.sql(
        "SELECT segment, AVG(CAST(JSON_EXTRACT(features, '$.\"New Password Request\"') AS DOUBLE))"
        " AS m FROM user_segments WHERE run_id = :run GROUP BY segment ORDER BY m DESC",
        run=apps.run,
    )
    # a direction as a follow-up of one segment's average: which segment has the most
    best = apps.sql(
        "SELECT segment, AVG(CAST(JSON_EXTRACT(features, '$.Ratings') AS DOUBLE)) AS m "
        "FROM user_segments WHERE run_id = :run GROUP BY segment ORDER BY m DESC LIMIT 1",
        run=apps.run,
    )[0]
    reply = say("and the most?")
    assert reply.startswith(
        f"*{best[0]}* has the highest average Ratings: *{fmt.number(best[1])}* per user"
    ), reply
    reply = say("which segment resets passwords the most")
    assert reply.startswith(f"*{resets[0][0]}* has the highest average New Password Request")
    dormant = apps.count("segment = 'Dormant'")
    reply = say("casual vs dormant")
    assert reply.startswith(f"*Casual* ({casual:,} users) vs *Dormant* ({dormant:,} users)")
    # a comparison naming its statistic and feature: that statistic of that feature only
    reply = say("median ratings for dormant vs regular users")
    assert reply.startswith("Median Ratings of *Dormant* and *Regular* users, by segment"), reply
    for name in ("Dormant", "Regular"):
        value = fmt.number(median(apps.values("Ratings", "segment = :s", s=name)))
        assert re.search(rf"{name}\s+{re.escape(value)}\s", reply), (name, value, reply)
    assert "Average Screen Time" not in reply
    reply = say("compare dormant and regular on ratings")
    assert "averages per user" in reply and "Ratings" in reply
    assert "Average Screen Time" not in reply and "Last Visited" not in reply


def test_apps_has_no_users_table(apps):
    reply = apps.chat()("how many dormant users are in Germany?")
    assert refused(reply) and "this data has no country" in reply


# --- the Globo click log: numeric codes ----------------------------------------------------
def test_globo_ids_codes_and_ranking(globo):
    say = globo.chat()
    user, segment = globo.sql(
        "SELECT user_id, segment FROM user_segments WHERE run_id = :run ORDER BY user_id LIMIT 1",
        run=globo.run,
    )[0]
    assert say(f"what's {user}'s segment?").startswith(f"User *{user}* is in *{segment}*.")
    n = globo.count("segment = 'Highly Engaged' AND country = '10'")
    assert say("how many highly engaged users are in country 10?").startswith(
        f"*Highly Engaged* users in 10: *{n:,}*"
    )
    counts = globo.sql(
        "SELECT device, COUNT(*) AS n FROM user_segments WHERE run_id = :run AND "
        "segment = 'Low Engagement' GROUP BY device ORDER BY n DESC",
        run=globo.run,
    )
    reply = say("which device has the most low engagement users?")
    assert reply.startswith(
        f"*{counts[0][0]}* has the most *Low Engagement* users: *{counts[0][1]:,}*"
    )
