"""User, member, breakdown, run and conversation actions against a seeded database."""

import re

from sqlalchemy import select
from sqlalchemy.engine import make_url

from actions.common import queries
from actions.conversation_actions import ActionClarify, ActionFollowUp
from actions.run_actions import ActionChanges, ActionQuality, ActionRunInfo
from actions.segment_actions import ActionOverview
from actions.user_actions import (
    ActionBreakdown,
    ActionListMembers,
    ActionMoreMembers,
    ActionUserLookup,
)
from segmentation import db
from segmentation.build import build_segments
from segmentation.clustering import ClusterSettings
from segmentation.schema import (
    article_views,
    clickstream,
    search_queries,
    segmentation_runs,
    user_segments,
)
from tests.action_helpers import entity, make_tracker, only_text, run_action, slots_set
from tests.factories import click, insert_frame, search, view
from tests.tcp_proxy import TcpProxy


def test_user_lookup_explains_why(seeded, engine):
    tracker = make_tracker(
        "lookup_user", "which segment is user h004 in?", [entity("user_id", "h004")]
    )
    messages, events = run_action(ActionUserLookup(), tracker)
    text = only_text(messages)
    assert text.startswith("User *h004* is in *Highly Engaged*.")
    assert "closest to the *Highly Engaged* centre" in text and "runner-up is" in text
    with engine.connect() as conn:
        features = conn.execute(
            select(user_segments.c.features).where(user_segments.c.user_id == "h004")
        ).scalar_one()
    assert re.search(rf"\nclicks +{int(features['clicks'])} ", text), text
    assert slots_set(events)["user_id"] == "h004"


def test_unknown_user_gets_a_clear_answer(seeded):
    tracker = make_tracker("lookup_user", "look up user 999999", [entity("user_id", "999999")])
    text = only_text(run_action(ActionUserLookup(), tracker)[0])
    assert text.startswith("User 999999 is not in run #") and "(90 users)" in text


def test_user_id_from_text_when_no_entity(seeded):
    text = only_text(
        run_action(ActionUserLookup(), make_tracker("lookup_user", "look up user m007"))[0]
    )
    assert text.startswith("User *m007* is in *Moderate Engagement*.")


def test_members_page_then_more(seeded):
    tracker = make_tracker(
        "list_members",
        "top 5 highly engaged users",
        [entity("number", "5"), entity("segment", "Highly Engaged")],
    )
    messages, events = run_action(ActionListMembers(), tracker)
    text = only_text(messages)
    assert "*Highly Engaged*: users 1–5 of 30 (most engaged first)." in text
    assert "Say *more* for the next page." in text
    slots = slots_set(events)
    assert slots["page"] == 5 and slots["list_order"] == "most"
    first = [m.user_id for m in queries().top_members("Highly Engaged", 10).members]
    assert all(user in text for user in first[:5]) and first[5] not in text
    more = make_tracker("more", "more", slots=slots)
    text = only_text(run_action(ActionMoreMembers(), more)[0])
    assert "users 6–10 of 30" in text and all(user in text for user in first[5:10])


def test_low_segment_lists_least_engaged_first(seeded):
    tracker = make_tracker(
        "list_members", "list low engagement users", [entity("segment", "Low Engagement")]
    )
    text = only_text(run_action(ActionListMembers(), tracker)[0])
    assert "users 1–10 of 30 (least engaged first)" in text


def test_breakdown_by_dimension_and_by_value_in_context(seeded):
    tracker = make_tracker(
        "breakdown_segment",
        entities=[entity("segment", "Highly Engaged"), entity("dimension", "device", 30)],
    )
    text = only_text(run_action(ActionBreakdown(), tracker)[0])
    assert "*Highly Engaged* (30 users) by device:" in text
    assert re.search(r"\niOS +20 +66.7%\nAndroid +10 +33.3%\n", text), text
    follow = make_tracker(
        "breakdown_segment",
        "how many of them are on ios?",
        [entity("dimension_value", "ios")],
        slots={"segment": "Highly Engaged", "dimension": "device"},
    )
    text = only_text(run_action(ActionBreakdown(), follow)[0])
    assert text.startswith("Of the 30 *Highly Engaged* users, *20* (66.7%) have device *iOS*.")
    plan = make_tracker(
        "breakdown_segment",
        entities=[entity("dimension_value", "premium")],
        slots={"segment": "Low Engagement"},
    )
    text = only_text(run_action(ActionBreakdown(), plan)[0])
    assert text.startswith("Of the 30 *Low Engagement* users, *0* (0.0%) have plan *premium*.")


def test_run_info_and_quality(seeded, engine):
    with engine.connect() as conn:
        run = conn.execute(select(segmentation_runs)).one()
    text = only_text(run_action(ActionRunInfo(), make_tracker("ask_run_info"))[0])
    assert f"on *{run.created_at:%d %b %Y at %H:%M} UTC* (run #{run.id})" in text
    assert "Model: kmeans, k=3, 90 users" in text
    text = only_text(run_action(ActionQuality(), make_tracker("ask_quality"))[0])
    assert f"Silhouette *{run.metrics['silhouette']:.2f}*" in text
    assert f"Davies–Bouldin *{run.metrics['davies_bouldin']:.2f}*" in text


def test_changes_between_runs(seeded, engine):
    text = only_text(run_action(ActionChanges(), make_tracker("ask_changes"))[0])
    assert "only run so far" in text
    movers = [f"m{i:03d}" for i in range(8)]  # these moderate users start to behave like high ones
    insert_frame(
        engine,
        clickstream,
        [click(u, 0.5 + j % 8, url=f"/z{j % 9}") for u in movers for j in range(40)],
    )
    insert_frame(
        engine, search_queries, [search(u, 0.5 + j % 3) for u in movers for j in range(15)]
    )
    insert_frame(
        engine, article_views, [view(u, 0.5 + j % 5, spent=200) for u in movers for j in range(20)]
    )
    build_segments(engine, ClusterSettings(n_init=3, stability_runs=1))
    change = queries().migration()
    tracker = make_tracker(
        "ask_changes",
        entities=[
            entity("segment", "Moderate Engagement"),
            entity("segment", "Highly Engaged", 30),
        ],
    )
    text = only_text(run_action(ActionChanges(), tracker)[0])
    moved = change.between("Moderate Engagement", "Highly Engaged")
    assert moved >= 8
    assert text.startswith(f"*{moved}* of the 30 users who were *Moderate Engagement* in run #1")
    text = only_text(run_action(ActionChanges(), make_tracker("ask_changes"))[0])
    assert f"*{change.moved()}* users changed segment" in text


def test_follow_ups_reuse_the_last_question(seeded):
    size_then_inform = make_tracker(
        "inform",
        "and the moderate ones?",
        [entity("segment", "Moderate Engagement")],
        slots={"topic": "segment_size"},
    )
    text = only_text(run_action(ActionFollowUp(), size_then_inform)[0])
    assert text.startswith("*Moderate Engagement* has *30 users*")
    user = make_tracker(
        "inform",
        "what about user l003?",
        [entity("user_id", "l003")],
        slots={"topic": "segment_size"},
    )
    assert only_text(run_action(ActionFollowUp(), user)[0]).startswith(
        "User *l003* is in *Low Engagement*."
    )
    after_overview = make_tracker(
        "inform",
        "the high ones",
        [entity("segment", "Highly Engaged")],
        slots={"topic": "overview"},
    )
    assert "Averages against the average user" in only_text(
        run_action(ActionFollowUp(), after_overview)[0]
    )


def test_clarify_offers_the_likeliest_questions(seeded):
    tracker = make_tracker(
        "nlu_fallback",
        "segment stuff for highs",
        [entity("segment", "Highly Engaged")],
        ranking=[
            ("nlu_fallback", 0.6),
            ("ask_segment_size", 0.4),
            ("greet", 0.2),
            ("ask_segment_profile", 0.3),
        ],
    )
    messages, _ = run_action(ActionClarify(), tracker)
    assert "I'm not sure what you mean" in messages[0]["text"]
    assert [b["payload"] for b in messages[0]["buttons"]] == [
        '/ask_segment_size{"segment": "Highly Engaged"}',
        '/ask_segment_profile{"segment": "Highly Engaged"}',
    ]


def test_database_outage_is_reported_then_recovers(request, monkeypatch, tmp_path):
    """The actions' database goes away (connections cut, port refusing) and comes back."""
    url = request.getfixturevalue("mariadb_database")
    parsed = make_url(url)
    proxy = TcpProxy((parsed.host, parsed.port or 3306))
    proxied = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        engine = db.get_engine(proxied)
        import actions.common
        from tests.conftest import _empty_tables
        from tests.factories import load_population, tiered_population

        _empty_tables(proxied)
        load_population(engine, tiered_population(10))
        build_segments(engine, ClusterSettings(n_init=2, stability_runs=1))
        monkeypatch.setenv("DATABASE_URL", proxied)
        monkeypatch.setattr(actions.common, "_queries", None)
        assert "*30 users in 3 segments:*" in only_text(
            run_action(ActionOverview(), make_tracker("ask_overview"))[0]
        )
        proxy.cut()
        text = only_text(run_action(ActionOverview(), make_tracker("ask_overview"))[0])
        assert text.startswith("I can't reach the segment database right now")
        proxy.restore()
        assert "*30 users in 3 segments:*" in only_text(
            run_action(ActionOverview(), make_tracker("ask_overview"))[0]
        )
    finally:
        proxy.close()
        db.dispose_engines()
