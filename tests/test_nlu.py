"""NLU quality: the held-out set (intents by the model, entities by the run-time parser) and a
few behaviours the assistant relies on."""

from __future__ import annotations

import json

import pytest

from bot import nlu_eval

# Issue 8's target: 0.95. The held-out set measured 0.9502 (229 of 241) on 2026-12-02 after
# the development-driven changes of that day (51 training sentences, fallback thresholds),
# one sentence above the line. Training is deterministic here (random_seed; two trainings
# of the same data predicted every development sentence alike), so this floor holds the
# target rather than a margin below it.
MIN_INTENT_ACCURACY = 0.95
# Entity F1 of the run-time reading (segmentation.language) on the held-out set, demo data:
# reported by bot.nlu_eval; this floor only catches a large regression.
MIN_ENTITY_F1 = 0.85


@pytest.fixture(scope="session")
def nlu_model():
    """The trained model (trained once if the data changed)."""
    return nlu_eval.trained_model()


@pytest.fixture(scope="session")
def parse(nlu_model):
    """text -> final parse of the trained model, loaded once per session."""
    return nlu_eval.parser(nlu_eval.load_agent(nlu_model))


@pytest.fixture(scope="session")
def read():
    """text -> the run-time parser's reading against the demo data's vocabulary."""
    return nlu_eval.reader()


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


def intent(result):
    return result["intent"]["name"]


def found(reading, entity):
    return [text for kind, text in reading.entities if kind == entity]


# --- the held-out set ------------------------------------------------------------------------


def test_heldout_is_the_default_test_set():
    assert nlu_eval.DEFAULT_DATA.name == "heldout.yml"


def test_heldout_intent_accuracy(heldout):
    _, report = heldout
    assert report["examples"] >= 150
    assert report["intent_accuracy"] >= MIN_INTENT_ACCURACY, report["failures"]


def test_heldout_entity_f1_is_reported_per_type(heldout):
    _, report = heldout
    assert set(report["per_entity"]) == set(nlu_eval.ENTITY_TYPES)
    for row in report["per_entity"].values():
        assert {"precision", "recall", "f1", "tp", "fp", "fn"} <= set(row)
        assert row["tp"] > 0
    assert report["entity_f1"] >= MIN_ENTITY_F1, report["failures"]


def test_nlu_eval_exit_code_matches_thresholds(heldout):
    code, report = heldout
    assert report["passed"] is True
    assert code == 0


# --- the model: intents only -----------------------------------------------------------------


def test_the_model_extracts_no_entities(parse):
    result = parse("how many premium iOS users joined this year in Germany, top 10?")
    assert result["entities"] == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("4521", "inform"),
        ("what about France?", "inform"),
        ("what's u0000042's segment", "lookup_user"),
        ("which segment is user 4521 in and why?", "lookup_user"),
        ("top 10 users by sessions", "list_members"),
        ("average searches of the least engaged users in Brazil", "ask_metric"),
        ("which segment has the fewest clicks", "ask_metric"),
        ("how many premium users in Germany signed up this year?", "ask_segment_size"),
        ("which country has the most highly engaged users", "breakdown_segment"),
        ("is the top segment growing?", "ask_trend"),
        ("which features did the segmentation use?", "ask_data_info"),
    ],
)
def test_question_shapes(parse, text, expected):
    assert intent(parse(text)) == expected


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
def test_out_of_domain_text_is_never_read_as_a_data_question(parse, text):
    """Out of domain, the model gives out_of_scope or falls back, or, where it still gives a
    domain intent (2026-12-02: "the mitochondria..." -> ask_segment_size at 0.73), the
    assistant knows none of the words, and such a message gets a clarification whatever its
    intent (tests/test_action_answer.py), never an answer."""
    from segmentation.language.interpret import understand
    from segmentation.language.vocabulary import Vocabulary

    name = intent(parse(text))
    understanding = understand(text, Vocabulary(nlu_eval.demo_run()), name)
    assert name in {"out_of_scope", "nlu_fallback"} or understanding.read_nothing, name
    assert not understanding.answerable


def test_a_button_payload_carries_a_whole_question(parse):
    payload = '{"measure": "count", "segments": ["Highly Engaged"]}'
    result = parse(f'/inform{{"query": {json.dumps(payload)}}}')
    assert intent(result) == "inform"
    assert [(e["entity"], e["value"]) for e in result["entities"]] == [("query", payload)]


# --- the run-time reading of the data's words ------------------------------------------------


def test_a_list_size_is_a_number_never_a_user_id(read):
    reading = read("top 10 highly engaged users by clicks")
    assert found(reading, "number") == ["10"]
    assert found(reading, "user_id") == []
    assert found(reading, "feature") == ["clicks"]


def test_the_data_s_own_id_format_is_a_user(read):
    assert found(read("what's u0000042's segment"), "user_id") == ["u0000042"]


def test_a_question_of_several_parts_is_read_whole(read):
    reading = read("premium iOS users in the moderate segment who joined this year, how many?")
    assert sorted(found(reading, "value")) == ["ios", "premium"]
    assert found(reading, "segment") == ["moderate"]
    assert found(reading, "date") == ["this year"]
    assert reading.unaccounted == []


def test_a_part_the_data_does_not_have_is_left_unaccounted(read):
    assert read("how many users in the north region?").unaccounted == ["north", "region"]
