"""NLU quality: the held-out set and a few behaviours the custom actions rely on."""

from __future__ import annotations

import json

import pytest

from bot import nlu_eval

MIN_INTENT_ACCURACY = 0.95
MIN_ENTITY_F1 = 0.95


@pytest.fixture(scope="session")
def nlu_model():
    """The trained model (trained once if the data changed)."""
    return nlu_eval.trained_model()


@pytest.fixture(scope="session")
def parse(nlu_model):
    """text -> final parse of the trained model, loaded once per session."""
    return nlu_eval.parser(nlu_eval.load_agent(nlu_model))


@pytest.fixture(scope="session")
def heldout(nlu_model, tmp_path_factory):
    """bot.nlu_eval run as from the command line: (exit code, JSON report)."""
    report = tmp_path_factory.mktemp("nlu") / "heldout.json"
    code = nlu_eval.main(
        [
            "--model",
            str(nlu_model),
            "--report",
            str(report),
            "--min-intent-accuracy",
            str(MIN_INTENT_ACCURACY),
            "--min-entity-f1",
            str(MIN_ENTITY_F1),
        ]
    )
    return code, json.loads(report.read_text())


def segments(result):
    """Segment values in text order."""
    found = sorted((e["start"], e["value"]) for e in result["entities"] if e["entity"] == "segment")
    return [value for _, value in found]


def values(result, entity):
    return {str(e["value"]) for e in result["entities"] if e["entity"] == entity}


def test_heldout_intent_accuracy(heldout):
    _, report = heldout
    assert report["examples"] >= 150
    assert report["intent_accuracy"] >= MIN_INTENT_ACCURACY, report["failures"]


def test_heldout_entity_f1(heldout):
    _, report = heldout
    assert report["entity_f1"] >= MIN_ENTITY_F1, report["failures"]


def test_nlu_eval_exit_code_matches_thresholds(heldout):
    code, report = heldout
    assert report["passed"] is True
    assert code == 0


@pytest.mark.parametrize(
    "text, segment",
    [
        ("how many higly engaged users are there?", "Highly Engaged"),
        ("describe the moderat segment", "Moderate Engagement"),
        ("list low engagment users", "Low Engagement"),
        ("what do moderatly engaged users look like", "Moderate Engagement"),
        ("how many power users do we have", "Highly Engaged"),
        ("size of the at-risk group", "Low Engagement"),
        ("describe the medium segment", "Moderate Engagement"),
    ],
)
def test_synonyms_and_typos_map_to_the_canonical_segment(parse, text, segment):
    assert segments(parse(text)) == [segment]


def test_two_segments_come_in_text_order(parse):
    result = parse("how many users moved from moderate to highly engaged?")
    assert result["intent"]["name"] == "ask_changes"
    assert segments(result) == ["Moderate Engagement", "Highly Engaged"]
    result = parse("compare power users with casual ones")
    assert result["intent"]["name"] == "compare_segments"
    assert segments(result) == ["Highly Engaged", "Low Engagement"]


@pytest.mark.parametrize(
    "text, number",
    [
        ("top 10 highly engaged users", "10"),
        ("show me the top 25 power users", "25"),
        ("top 5 low engagement users please", "5"),
        ("first five moderate users", "5"),
    ],
)
def test_top_n_is_a_number_never_a_user_id(parse, text, number):
    result = parse(text)
    assert result["intent"]["name"] == "list_members"
    assert values(result, "user_id") == set()
    assert values(result, "number") == {number}


@pytest.mark.parametrize(
    "text, user_id",
    [
        ("which segment is user #4521 in?", "4521"),
        ("look up customer 00017", "00017"),
        ("check id u_123", "u_123"),
        ("user id 993", "993"),
    ],
)
def test_user_ids_are_extracted_by_the_regex(parse, text, user_id):
    result = parse(text)
    assert result["intent"]["name"] == "lookup_user"
    assert values(result, "user_id") == {user_id}
    assert values(result, "number") == set()


def test_a_bare_id_is_an_inform_with_a_user_id(parse):
    result = parse("4521")
    assert result["intent"]["name"] == "inform"
    assert values(result, "user_id") == {"4521"}


def test_metric_synonyms(parse):
    assert values(parse("average reading time of power users"), "metric") == {"avg_article_time"}
    assert values(parse("total time on articles for low users"), "metric") == {"total_article_time"}


@pytest.mark.parametrize(
    "text",
    [
        "asdf qwer zxcv",
        "what's the weather in Paris tomorrow?",
        "tell me a joke about penguins",
        "book a flight to Rome",
        "the mitochondria is the powerhouse of the cell",
    ],
)
def test_out_of_domain_text_gets_no_confident_domain_intent(parse, text):
    assert parse(text)["intent"]["name"] in {"out_of_scope", "nlu_fallback"}


def test_button_payloads_parse(parse):
    result = parse('/ask_segment_size{"segment": "Highly Engaged"}')
    assert result["intent"]["name"] == "ask_segment_size"
    assert values(result, "segment") == {"Highly Engaged"}
