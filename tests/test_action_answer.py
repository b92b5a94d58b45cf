"""action_answer against a seeded run (SQLite and MariaDB): the words are read against the run,
one query answers, the reply restates what it counted, and the numbers equal SQL written here.

The seeded run (tests/factories.seed_tiers): 90 users l000-l029, m000-m029, h000-h029 in three
clear tiers; device iOS unless i % 3 == 0 (Android); plan premium for h*, free otherwise;
country BR for odd i, US for even i.
"""

import json
from datetime import datetime

import pytest
from sqlalchemy import text

from actions.answer import ActionAnswer
from segmentation import formatting as fmt
from tests.action_helpers import entity, make_tracker, only_text, run_action, slots_set


def sql(engine, query, **params):
    with engine.connect() as conn:
        return conn.execute(text(query), params).all()


def ask(message, intent="ask_segment_size", previous=None, channel="rest", entities=()):
    slots = {"query": previous} if previous else {}
    tracker = make_tracker(intent, message, entities=entities, slots=slots, channel=channel)
    return run_action(ActionAnswer(), tracker)


def run_id(engine):
    return sql(engine, "SELECT MAX(id) FROM segmentation_runs WHERE status = 'complete'")[0][0]


def count(engine, where="1=1", **params):
    return sql(
        engine,
        f"SELECT COUNT(*) FROM user_segments WHERE run_id = :run AND {where}",
        run=run_id(engine),
        **params,
    )[0][0]


def test_a_size_with_a_typo_restates_the_segment(seeded, engine):
    messages, events = ask("how many users are higly engaged?")
    n = count(engine, "segment = 'Highly Engaged'")
    body = only_text(messages)
    assert body.startswith(f"*Highly Engaged* has *{n} users*, 33.3% of all 90 users.")
    assert f"run #{run_id(engine)} of" in body
    assert 'I read "higly engaged" as Highly Engaged' in body
    assert json.loads(slots_set(events)["query"])["segments"] == ["Highly Engaged"]


def test_two_filters_and_a_segment_in_one_question(seeded, engine):
    body = only_text(ask("how many iOS users in Brazil are in the moderate segment?")[0])
    n = count(engine, "segment = 'Moderate Engagement' AND device = 'iOS' AND country = 'BR'")
    everyone = count(engine, "device = 'iOS' AND country = 'BR'")
    assert body.startswith(
        f"*Moderate Engagement* users in Brazil (BR) on iOS: *{n}* — "
        f"{fmt.percent(n / 30)} of all 30 *Moderate Engagement* users, and "
        f"{fmt.percent(n / everyone)} of the {everyone} users in Brazil (BR) on iOS."
    )


def test_a_filtered_mean_names_its_population_and_its_reference(seeded, engine):
    body = only_text(ask("mean searches for low engagement users in Brazil", "ask_metric")[0])
    run = run_id(engine)
    ((mean, n),) = (
        sql(
            engine,
            "SELECT AVG(CAST(JSON_EXTRACT(features, '$.searches') AS DOUBLE)), COUNT(*) "
            "FROM user_segments WHERE run_id = :run AND segment = 'Low Engagement' "
            "AND country = 'BR'",
            run=run,
        )
        if engine.dialect.name != "sqlite"
        else sql(
            engine,
            "SELECT AVG(json_extract(features, '$.searches')), COUNT(*) FROM user_segments "
            "WHERE run_id = :run AND segment = 'Low Engagement' AND country = 'BR'",
            run=run,
        )
    )
    assert body.startswith(
        f"Average searches of *Low Engagement* users in Brazil (BR): *{fmt.number(mean)}* "
        f"({n} users), against"
    )


def test_lowest_is_honoured(seeded, engine):
    body = only_text(ask("which segment has the lowest number of clicks", "ask_metric")[0])
    assert body.startswith("*Low Engagement* has the lowest average clicks")
    body = only_text(ask("which segment has the most clicks", "ask_metric")[0])
    assert body.startswith("*Highly Engaged* has the highest average clicks")


def test_which_country_has_the_most(seeded, engine):
    body = only_text(ask("which country has the most highly engaged users", "ask_metric")[0])
    rows = sql(
        engine,
        "SELECT country, COUNT(*) FROM user_segments WHERE run_id = :run AND "
        "segment = 'Highly Engaged' GROUP BY country ORDER BY COUNT(*) DESC",
        run=run_id(engine),
    )
    names = {"BR": "Brazil (BR)", "US": "United States (US)"}
    leaders = sorted(names[c] for c, n in rows if n == rows[0][1])
    verb = "have" if len(leaders) > 1 else "has"
    first_line = body.splitlines()[0]
    assert (
        sorted(part.strip("*") for part in first_line.split(f" {verb} ")[0].split(" and "))
        == leaders
    )
    assert f"the most *Highly Engaged* users: *{rows[0][1]}*" in first_line


@pytest.mark.parametrize(
    "question, part",
    [
        ("how many users are in the north region?", '"north", "region"'),
        ("average clicks of platinum plan users", 'No plan matches "platinum"'),
        ("how many highly engaged users are German?", "Germany (DE)"),
        ("how many users signed up in the last 30 days?", "this data has no signup date"),
        ("users with more than 5 clicks", '"5"'),
    ],
)
def test_a_part_that_cannot_be_applied_gets_no_number(seeded, question, part):
    messages, events = ask(question)
    body = only_text(messages)
    assert body.startswith("I can't answer that exactly, so I won't guess a number")
    assert part in body
    assert "The segments are Low Engagement, Moderate Engagement, Highly Engaged." in body
    assert "query" not in slots_set(events)


def test_follow_ups_replace_a_filter_of_the_same_kind_and_add_another(seeded, engine):
    _, events = ask("how many highly engaged users are in Brazil?")
    first = slots_set(events)["query"]
    messages, events = ask("and in the US?", "inform", previous=first)
    us = count(engine, "segment = 'Highly Engaged' AND country = 'US'")
    body = only_text(messages)
    assert body.startswith(f"*Highly Engaged* users in United States (US): *{us}*")
    assert '"US" instead of "Brazil"' in body
    messages, _ = ask("what about Android?", "inform", previous=slots_set(events)["query"])
    both = count(engine, "segment = 'Highly Engaged' AND country = 'US' AND device = 'Android'")
    body = only_text(messages)
    assert body.startswith(f"*Highly Engaged* users in United States (US) on Android: *{both}*")
    assert '"Android" added to "US" from before' in body


def test_a_missing_measure_is_asked_with_buttons_that_carry_the_question(seeded, engine):
    messages, events = ask("average of the top segment in Brazil", "ask_metric")
    assert messages[0]["text"] == "Which measure?"
    button = next(b for b in messages[0]["buttons"] if b["title"] == "searches")
    payload = json.loads(button["payload"][len("/inform") :])["query"]
    messages, _ = ask("", "inform", entities=[entity("query", payload)])
    assert only_text(messages).startswith("Average searches of *Highly Engaged* users in Brazil")


def test_a_forged_button_gets_a_polite_reply(seeded):
    bad = json.dumps({"measure": "count", "segments": ["Whales"]})
    body = only_text(ask("", "inform", entities=[entity("query", bad)])[0])
    assert "has no segment 'Whales'" in body
    body = only_text(ask("", "inform", entities=[entity("query", "{not json")])[0])
    assert "could not be read" in body


def test_lists_page_with_more(seeded, engine):
    messages, events = ask("top 5 highly engaged users in Brazil", "list_members")
    rows = sql(
        engine,
        "SELECT user_id FROM user_segments WHERE run_id = :run AND segment = 'Highly Engaged' "
        "AND country = 'BR' ORDER BY score DESC, user_id DESC",
        run=run_id(engine),
    )
    body = only_text(messages)
    assert f"1–5 of {len(rows)} (most engaged first)" in body
    assert [r[0] for r in rows[:5]] == [
        line.split()[0] for line in body.split("```")[1].splitlines()[3:]
    ]
    messages, _ = ask("more", "more", previous=slots_set(events)["query"])
    body = only_text(messages)
    assert f"6–10 of {len(rows)}" in body and rows[5][0] in body


def test_a_user_by_their_own_id_format(seeded, engine):
    segment = sql(
        engine,
        "SELECT segment FROM user_segments WHERE user_id = 'h004' AND run_id = :r",
        r=run_id(engine),
    )[0][0]
    body = only_text(ask("what's h004's segment", "lookup_user")[0])
    assert body.startswith(f"User *h004* is in *{segment}*.")
    body = only_text(ask("which segment is user nobody42 in?", "lookup_user")[0])
    assert "User nobody42 is not in run" in body


def test_run_questions(seeded, engine):
    assert "only run so far" in only_text(ask("what changed since the last run?", "ask_changes")[0])
    body = only_text(ask("how good is the clustering?", "ask_quality")[0])
    assert "Silhouette" in body and "What separates the segments most" in body
    body = only_text(ask("what countries do we have?", "ask_data_info")[0])
    assert "Countries (2):" in body and "Brazil (BR)" in body
    body = only_text(ask("what is the segmentation based on?", "ask_run_info")[0])
    assert "based on: clicks" in body


def test_the_terminal_gets_plain_text_and_a_chart_path(seeded, tmp_path):
    messages, _ = ask("show me a chart of the segment sizes", "ask_chart", channel="cmdline")
    body = only_text(messages)
    assert "*" not in body.replace("\033[1m", "").replace("\033[0m", "")
    assert "Chart (Segment sizes) saved to" in body


def test_slack_gets_the_structure_and_a_titled_chart(seeded, monkeypatch):
    monkeypatch.setenv("SI_PUBLIC_URL", "http://127.0.0.1:5005")
    messages, _ = ask("compare the low and the high segment", "compare_segments", channel="slack")
    reply = messages[0]["custom"]["reply"]
    assert any(block["type"] == "table" for block in reply["blocks"])
    chart = next(m for m in messages if m.get("image"))
    assert chart["custom"]["chart"]["title"] == "Low Engagement vs Highly Engaged"
    assert chart["image"].startswith("http://127.0.0.1:5005/webhooks/webchat/charts/run")


def test_no_run_says_how_to_build_one(use_database, engine):
    body = only_text(ask("how many users are highly engaged?")[0])
    assert "python -m segmentation demo" in body


def test_a_huge_number_is_refused_not_crashed(seeded):
    body = only_text(ask("top " + "9" * 400 + " users", "list_members")[0])
    assert body.startswith("I can't answer that exactly")


# --- exports -----------------------------------------------------------------------------------


def exported_file(messages, folder):
    (export,) = [m["custom"]["export"] for m in messages if "export" in (m.get("custom") or {})]
    return export, folder / export["file"]


def csv_ids(path):
    import csv

    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["user_id"] for r in rows], rows


def test_export_writes_every_asked_user_and_says_what_it_holds(
    seeded, engine, tmp_path, monkeypatch
):
    monkeypatch.setenv("SI_EXPORTS_DIR", str(tmp_path))
    messages, _ = ask("export the low engagement users in Brazil as csv", "list_members")
    expected = {
        r[0]
        for r in sql(
            engine,
            "SELECT user_id FROM user_segments WHERE run_id = :run "
            "AND segment = 'Low Engagement' AND country = 'BR'",
            run=run_id(engine),
        )
    }
    assert messages[0]["text"].startswith(
        f"Exported all {len(expected)} *Low Engagement* users in Brazil (BR) as CSV"
    )
    assert f"run #{run_id(engine)}" in messages[0]["text"]
    export, path = exported_file(messages, tmp_path)
    ids, rows = csv_ids(path)
    assert set(ids) == expected and len(ids) == len(expected) == export["rows"]
    assert {r["segment"] for r in rows} == {"Low Engagement"}
    assert export["title"] == f"low-engagement-users-in-brazil-br-run-{run_id(engine)}.csv"
    assert f"exports/{path.name}" in messages[1]["text"]


def test_export_as_a_follow_up_keeps_the_filters_and_the_terminal_gets_a_path(
    seeded, engine, tmp_path, monkeypatch
):
    monkeypatch.setenv("SI_EXPORTS_DIR", str(tmp_path))
    _, events = ask("how many premium users on Android?")
    previous = slots_set(events)["query"]
    messages, _ = ask("send me the whole list as a file", "list_members", previous, "cmdline")
    expected = {
        r[0]
        for r in sql(
            engine,
            "SELECT user_id FROM user_segments WHERE run_id = :run "
            "AND plan = 'premium' AND device = 'Android'",
            run=run_id(engine),
        )
    }
    (path,) = list(tmp_path.glob("*.csv"))
    assert set(csv_ids(path)[0]) == expected
    assert messages[-1]["text"] == f"CSV saved to {path}"
    assert f"Exported all {len(expected)}" in messages[0]["text"]


def test_an_export_of_an_unknown_value_is_refused_and_writes_nothing(seeded, tmp_path, monkeypatch):
    folder = tmp_path / "exports"
    monkeypatch.setenv("SI_EXPORTS_DIR", str(folder))
    body = only_text(ask("export the premium users on the platinum plan as csv", "list_members")[0])
    assert "platinum" in body and "Exported" not in body
    assert not folder.exists() or list(folder.iterdir()) == []


# --- segments over time ----------------------------------------------------------------------


@pytest.fixture
def two_runs(seeded, engine):
    """A second run after users l000-l009 became very active."""
    from segmentation.build import build_segments
    from segmentation.clustering import ClusterSettings
    from segmentation.schema import clickstream
    from tests.factories import click, insert_frame

    clicks = [
        click(f"l{i:03d}", 0.5 + j % 5, url=f"/x{j % 7}") for i in range(10) for j in range(60)
    ]
    insert_frame(engine, clickstream, clicks)
    build_segments(engine, ClusterSettings(n_init=3, stability_runs=1))


def test_trend_sizes_and_shares_per_run_with_their_dates(two_runs, engine):
    body = only_text(ask("is the highly engaged segment growing?", "ask_trend")[0])
    rows = sql(
        engine,
        "SELECT r.id, r.created_at, s.segment, COUNT(*) FROM segmentation_runs r "
        "JOIN user_segments s ON s.run_id = r.id GROUP BY r.id, r.created_at, s.segment",
    )
    totals = {}
    for run, _, _, n in rows:
        totals[run] = totals.get(run, 0) + n
    assert len(totals) == 2
    for run, created, segment, n in rows:
        if isinstance(created, str):  # SQLite
            created = datetime.fromisoformat(created)
        assert f"#{run} {created:%d %b %Y}" in body
        assert f"{n} ({fmt.percent(n / totals[run])})" in body, (segment, run)
    sizes = {(run, segment): n for run, _, segment, n in rows}
    first, last = sorted(totals)
    change = sizes[(last, "Highly Engaged")] - sizes[(first, "Highly Engaged")]
    sign = "+" if change >= 0 else "−"
    assert f"From run #{first} to run #{last}: " in body
    assert f"Highly Engaged {sign}{abs(change)}" in body


def test_what_changed_names_the_flows_and_why_a_user_moved(two_runs, engine):
    body = only_text(ask("what changed since the last run?", "ask_changes")[0])
    (first, last) = [r[0] for r in sql(engine, "SELECT id FROM segmentation_runs ORDER BY id")]
    pairs = sql(
        engine,
        "SELECT a.segment, b.segment, COUNT(*) FROM user_segments a JOIN user_segments b "
        "ON a.user_id = b.user_id AND a.run_id = :a AND b.run_id = :b GROUP BY a.segment, b.segment",
        a=first,
        b=last,
    )
    moved = sum(n for a, b, n in pairs if a != b)
    assert moved >= 10 and f"*{moved}* users changed segment" in body
    for name in ("Low Engagement", "Moderate Engagement", "Highly Engaged"):
        came = sum(n for a, b, n in pairs if b == name and a != name)
        left = sum(n for a, b, n in pairs if a == name and b != name)
        assert f"{name}: +{came} in, −{left} out" in body

    (now,) = sql(
        engine, "SELECT segment FROM user_segments WHERE run_id = :r AND user_id = 'l000'", r=last
    )
    body = only_text(ask("why did user l000 move?", "lookup_user")[0])
    assert f"They *moved* from Low Engagement (run #{first}) to {now[0]}." in body
    assert "What changed most, now against then:" in body and "clicks" in body


def test_runs_with_other_segments_are_not_directly_comparable(seeded, engine):
    from segmentation.build import build_segments
    from segmentation.clustering import ClusterSettings

    build_segments(
        engine, ClusterSettings(k=4, names=["A", "B", "C", "D"], n_init=3, stability_runs=1)
    )
    body = only_text(ask("what changed since the last run?", "ask_changes")[0])
    assert "not directly comparable" in body and "changed segment" not in body


def test_words_nothing_can_read_get_a_clarification_whatever_the_intent(seeded):
    (message,) = ask("blorp zzz quux", "ask_segment_size")[0]
    assert message["text"].startswith("I'm not sure what you mean.")
    assert '"blorp", "zzz", "quux"' in message["text"]
    body = only_text(ask("how many blorp users?", "ask_segment_size")[0])
    assert body.startswith("I can't answer that exactly") and '"blorp"' in body
    # an intent that needs a part (a profile needs a segment) doesn't turn it into a question
    (message,) = ask("what's bitcoin trading at", "ask_segment_profile")[0]
    assert message["text"].startswith("I'm not sure what you mean."), message
    assert '"bitcoin"' in message["text"]
