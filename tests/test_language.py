"""Reading questions against a run's own vocabulary (segmentation.language), no database.

Runs here are built in memory (tests/factories.run_info): any names, any k, any features.
"""

from datetime import date

import pytest

from segmentation.language.dates import find_dates
from segmentation.language.interpret import understand
from segmentation.language.text import tokenize
from segmentation.language.vocabulary import Vocabulary
from tests.factories import run_info

APPS = run_info(
    names=("Dormant", "Casual", "Regular", "Power Users"),
    features=("Average Screen Time", "Average Spent on App (INR)", "Ratings",
              "New Password Request", "Last Visited Minutes"),
    attributes=(),
    values={},
    run_id=2,
)  # fmt: skip


def read(text, run=None, intent=None, previous=None, users=()):
    vocabulary = Vocabulary(run or run_info())
    return understand(
        text, vocabulary, intent, previous, lambda ids: [i for i in ids if i in users]
    )


def assert_refused(text, part, run=None):
    """`text` gets no answer, and a problem that starts with `part` says why."""
    understood = read(text, run)
    assert not understood.answerable, text
    assert any(p.startswith(part) for p in understood.problems), (text, understood.problems)


def mentions(text, run=None):
    vocabulary = Vocabulary(run or run_info())
    return [
        (m.said, [(e.kind, e.key) for e in m.entries]) for m in vocabulary.mentions(tokenize(text))
    ]


# --- vocabulary ------------------------------------------------------------------------------
def test_the_runs_own_names_come_first_and_tier_words_follow_the_rank():
    assert read("number of users in the casual group", APPS).query.segments == ("Casual",)
    understood = read("how many highly engaged users are there", APPS)
    assert understood.query.segments == ("Power Users",)
    assert '"highly engaged" is the most engaged segment, Power Users' in understood.notes
    assert read("the least engaged users", APPS).query.segments == ("Dormant",)
    ask = read("what do the moderate users look like", APPS).ask
    assert ask[2] == ["Casual", "Regular"]  # k = 4 has two middle segments: ask which


def test_features_answer_to_parts_of_their_column_names():
    assert read("average ratings of power users", APPS).query.features == ("Ratings",)
    understood = read("which segment resets passwords the most", APPS)
    assert understood.query.features == ("New Password Request",)
    assert understood.query.rank == "most" and understood.unknown == []
    assert 'I read "resets passwords" as New Password Request' in understood.notes
    spend = read("how much do power users spend on the app", APPS)
    assert spend.query.features == ("Average Spent on App (INR)",)


def test_near_misses_are_matched_and_said():
    understood = read("how many higly engaged users in Brazl?")
    assert understood.query.segments == ("Highly Engaged",)
    assert understood.query.filters[0].values == ("BR",)
    assert 'I read "Brazl" as Brazil (BR)' in understood.notes


def test_countries_by_name_code_and_adjective_and_codes_only_in_capitals():
    for text in ("users in Germany", "users in DE", "German users", "users in deu"):
        found = mentions(text)
        assert ("value", "DE") in [e for _, entries in found for e in entries] or text.endswith(
            "deu"
        ), text
    assert mentions("show us the users in the segment") == []  # "us" is a word, not US
    assert mentions("users per segment") == []  # "per" is a word, not Peru's PER
    assert ("value", "US") in [e for _, entries in mentions("users in the US") for e in entries]


def test_a_country_the_data_does_not_have_is_known_but_refused():
    understood = read("how many users are in Japan?")
    assert understood.problems and "Japan (JP)" in understood.problems[0]
    assert "BR, DE, FR, US" in understood.problems[0]


def test_numeric_codes_need_their_attribute_name():
    globo = run_info(values={"country": ["1", "10", "11"], "device": ["1", "3", "4"]})
    understood = read("how many highly engaged users are in country 10?", globo)
    assert understood.query.filters[0].attribute == "country"
    assert understood.query.filters[0].values == ("10",)
    assert read("top 10 users", globo).query.filters == ()
    # A user called "10" too: after "country" the number is the country, elsewhere the user.
    understood = read("how many highly engaged users are in country 10?", globo, users=("10",))
    assert understood.query.measure != "user" and understood.query.filters[0].values == ("10",)
    assert read("which segment is 10 in?", globo, users=("10",)).query.user_id == "10"


# --- dates -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, start, end",
    [
        ("joined this year", date(2026, 1, 1), date(2027, 1, 1)),
        ("signed up last month", date(2026, 9, 1), date(2026, 10, 1)),
        ("in March", date(2026, 3, 1), date(2026, 4, 1)),
        ("in December", date(2025, 12, 1), date(2026, 1, 1)),  # the latest December
        ("between March and May 2025", date(2025, 3, 1), date(2025, 6, 1)),
        ("in the last 30 days", date(2026, 10, 2), date(2026, 11, 1)),
        ("since June 2025", date(2025, 6, 1), None),
        ("before 2025", None, date(2025, 1, 1)),
        ("in Q1 2026", date(2026, 1, 1), date(2026, 4, 1)),
    ],
)
def test_dates_are_relative_to_the_datas_last_day(text, start, end):
    ((_, _, found),) = find_dates(tokenize(text), date(2026, 10, 31))
    assert (found.start, found.end) == (start, end)


def test_a_date_is_a_signup_date_and_activity_windows_are_refused():
    query = read("how many highly engaged users joined this year?").query
    assert query.filters[0].attribute == "signup_date"
    assert query.filters[0].start == date(2026, 1, 1)
    understood = read("how many users were active in the last 30 days?")
    assert "can't limit activity" in understood.problems[0]
    no_dates = read("how many users joined this year?", APPS)
    assert "this data has no signup date" in no_dates.problems[0]


# --- interpretation --------------------------------------------------------------------------
def test_several_filters_a_segment_and_a_measure_in_one_question():
    query = read("premium iOS users in the moderate segment, how many?").query
    assert (query.measure, query.segments) == ("count", ("Moderate Engagement",))
    assert {(f.attribute, f.values) for f in query.filters} == {
        ("plan", ("premium",)),
        ("device", ("iOS",)),
    }


@pytest.mark.parametrize(
    "text, measure, rank",
    [
        ("which segment has the lowest number of clicks", "mean", "least"),
        ("which segment has the fewest sessions", "mean", "least"),
        ("which segment searches the most", "mean", "most"),
        ("which country has the most highly engaged users", "count", "most"),
        ("which plan has the highest share of highly engaged users", "share", "most"),
    ],
)
def test_directions_are_honoured(text, measure, rank):
    query = read(text, intent="ask_metric").query
    assert (query.measure, query.rank) == (measure, rank)


def test_unknown_words_and_values_are_never_dropped():
    assert read("how many users are in the north region?").unknown == ["north", "region"]
    assert read("users with more than 5 clicks").unknown == ["5"]
    problem = read("average clicks of platinum plan users").problems[0]
    assert problem == 'no plan matches "platinum"; the plans are basic, free, premium'
    assert read("how many users renewed their subscription?").unknown == ["renewed"]


def test_negation_keeps_the_unknown_and_says_so():
    query = read("how many users are not in Germany?").query
    assert query.filters[0].exclude and query.filters[0].values == ("DE",)
    understood = read("users outside the least engaged segment")
    assert understood.query.segments == ("Moderate Engagement", "Highly Engaged")


def test_follow_ups_replace_the_same_kind_and_add_another_and_say_which():
    first = read("how many highly engaged users are in Brazil?").query
    second = read("and in France?", intent="inform", previous=first)
    assert second.query.segments == ("Highly Engaged",)
    assert [f.values for f in second.query.filters] == [("FR",)]
    assert second.notes == ['"France" instead of "Brazil"']
    third = read("what about Android?", intent="inform", previous=second.query)
    assert [f.values for f in third.query.filters] == [("FR",), ("Android",)]
    assert third.notes == ['"Android" added to "France" from before']
    fourth = read("and the median clicks?", intent="inform", previous=third.query)
    assert (fourth.query.measure, fourth.query.features) == ("median", ("clicks",))


def test_a_value_of_the_grouped_attribute_picks_that_group():
    first = read("break down highly engaged users by device", intent="breakdown_segment").query
    assert first.group_by == ("device",)
    second = read("how many of them are on iOS?", intent="inform", previous=first).query
    assert second.group_by != ("device",) and [f.values for f in second.filters] == [("iOS",)]


def test_about_the_segments_is_the_overview_and_about_one_is_its_profile():
    assert read("tell me about the segments", intent="ask_overview").query.measure == "overview"
    about = read("tell me about the moderate segment", intent="ask_segment_profile").query
    assert about.measure == "profile" and about.segments == ("Moderate Engagement",)


def test_user_ids_in_the_datas_own_format():
    query = read("what's u0000042's segment", users={"u0000042"}).query
    assert (query.measure, query.user_id) == ("user", "u0000042")
    understood = read("which segment is user zz42 in?", intent="lookup_user")
    assert understood.problems == ["user zz42 is not in run #1 of 02 Nov 2026 09:30 UTC"]
    assert read("top 10 users", users={"10"}).query.measure == "list"


def test_a_list_size_is_never_taken_for_a_user_id():
    # "the 7 ... users": the words between the number and "users" don't make it a user id,
    # even in a run that has a user called "7" (a list's default size is 10)
    query = read("who are the 7 least active premium users", users={"7"}).query
    assert (query.measure, query.limit, query.user_id, query.order) == ("list", 7, None, "least")
    query = read("show me 7 users", users={"7"}).query
    assert (query.measure, query.limit) == ("list", 7)
    # a user id stays a user id
    assert read("which segment is user 7 in", users={"7"}).query.user_id == "7"


def test_missing_parts_are_asked_with_the_runs_own_choices():
    ask = read("average of the casual users", APPS).ask
    assert ask[0] == "Which measure?" and ask[2][0] == "Average Screen Time"
    ask = read("describe the segment", APPS, intent="ask_segment_profile").ask
    assert ask[2] == ["Dormant", "Casual", "Regular", "Power Users"]


def test_articles_alone_are_article_views_not_time_on_them():
    run = run_info(features=("clicks", "article_views", "avg_article_time", "total_article_time"))
    fewest = read("which segment reads the fewest articles", run).query
    assert (fewest.features, fewest.rank) == (("article_views",), "least")
    assert read("which segment has the most time on articles", run).query.features == (
        "avg_article_time",
    )


def test_a_bound_is_never_a_user_id_and_is_not_dropped():
    # numeric user ids (Globo's are) must not turn "over 40" into a lookup of user 40; the
    # bound is a part nothing can apply, so the question is not answered as if it weren't there
    users = {"40", "30", "25", "34"}
    for text in (
        "describe the least engaged users who are over 40",
        "how many users aged over 30 are highly engaged",
        "what do power users aged 25 to 34 look like",
    ):
        understood = read(text, users=users)
        assert understood.query.user_id is None, text
        assert not understood.answerable and understood.unknown, text
    assert read("which segment is user 40 in", users=users).query.user_id == "40"
    assert read("segment of 40", users=users).query.user_id == "40"


def test_a_condition_on_a_value_is_said_not_dropped():
    # "how many ... have more than average clicks" must not become the segment's mean clicks
    for text, said in (
        ("how many highly engaged users have more than average clicks", "more than average"),
        ("how many users searched over 3 times", "over 3 times"),
        ("low engagement users with clicks below the median", "below the median"),
    ):
        assert_refused(text, f'"{said}"')
    assert read("how many highly engaged users are there").answerable


def test_a_comparison_that_names_its_statistic_is_that_statistic_per_segment():
    # the comparison table holds averages: "median ... vs ..." must not become it
    median = read("median ratings for dormant vs regular users", APPS).query
    assert (median.measure, median.features) == ("median", ("Ratings",))
    assert (median.segments, median.group_by) == (("Dormant", "Regular"), ("segment",))
    sizes = read("how many casual vs regular users", APPS).query
    assert (sizes.measure, sizes.segments, sizes.group_by) == (
        "count",
        ("Casual", "Regular"),
        ("segment",),
    )
    on = read("compare dormant and regular on ratings", APPS).query
    assert (on.measure, on.features) == ("compare", ("Ratings",))
    assert read("casual vs dormant", APPS).query.measure == "compare"
    ask = read("describe power users by median", APPS).ask
    assert ask[0] == "Which measure?"  # a profile holds averages: the median of which one?
    assert read("median of casual vs regular", APPS).query.measure == "median"


def test_users_are_counted_never_what_they_did():
    # "how many searches" right after the count word is searches per user
    query = read("how many searches per low engagement user").query
    assert (query.measure, query.features, query.segments) == (
        "mean",
        ("searches",),
        ("Low Engagement",),
    )
    assert read("how many clicks by segment").query.measure == "mean"
    # elsewhere it is a condition on the value, or a share of a total: said, never dropped
    for text, said in (
        ("how many highly engaged users searched", "searched"),
        ("how many users have clicks", "clicks"),
        ("what share of clicks come from highly engaged users", "clicks"),
    ):
        assert_refused(text, f'"{said}": I count')
    assert read("how many highly engaged users").answerable


def test_a_short_word_is_not_read_as_a_longer_one():
    understood = read("how many clicks do highly engaged users make")
    assert understood.notes == [] and understood.answerable
    assert read("avg clikcs of higly engaged users").query.features == ("clicks",)


def test_values_set_side_by_side_are_one_group_each():
    # "android vs ios" compares devices: never the two devices pooled, never two segments
    query = read("average clicks of highly engaged users on android vs ios").query
    assert (query.measure, query.group_by, query.segments) == (
        "mean",
        ("device",),
        ("Highly Engaged",),
    )
    assert [f.values for f in query.filters] == [("Android", "iOS")]
    query = read("compare android and ios users").query
    assert (query.measure, query.group_by, query.segments) == ("count", ("device", "segment"), ())
    assert read("median clicks android versus web").query.group_by == ("device",)
    # two segments on one device stay a comparison of segments
    assert read("compare low and high users on android").query.measure == "compare"


def test_a_grouping_word_is_not_a_country_code_and_top_countries_rank_them():
    query = read("top 3 countries by highly engaged users").query
    assert (query.measure, query.group_by, query.rank, query.filters) == (
        "count",
        ("country",),
        "most",
        (),
    )
    understood = read("how many users in country BY")  # in capitals it is the code
    assert any("Belarus (BY)" in problem for problem in understood.problems)


def test_a_second_feature_is_never_dropped():
    # averages of several features for one segment: its profile on those features
    query = read("average clicks and searches of highly engaged users").query
    assert (query.measure, query.features) == ("profile", ("clicks", "searches"))
    # a statistic or a ranking is of one feature: the others are said
    for text, said in (
        ("what is the average number of clicks per session", '"per session": I can\'t divide'),
        ("top 5 users by clicks and searches", '"searches": I give one measure at a time'),
        ("median clicks and searches by device", '"searches": I give one measure at a time'),
    ):
        assert_refused(text, said)
    assert read("average time per click").answerable  # one feature whose name has "per"


def test_which_segment_as_a_follow_up_ranks_every_segment():
    first = read("average clicks of highly engaged users in Brazil").query
    ranked = read("which segment has the most?", intent="inform", previous=first).query
    assert (ranked.segments, ranked.group_by, ranked.rank) == ((), ("segment",), "most")
    assert [f.values for f in ranked.filters] == [("BR",)] and ranked.features == ("clicks",)
    understood = read("and not in Brazil", intent="inform", previous=first)
    assert understood.notes == ['"not Brazil" instead of "Brazil"']
    assert understood.query.filters[0].exclude
    assert read("top 3 countries by highly engaged users").query.top == 3
    assert read("which country has the most users").query.top is None
    assert read("top 3 users").query.top is None  # a list of users has its own size


def test_a_follow_up_direction_or_statistic_on_an_ungrouped_question():
    first = read("average clicks of highly engaged users in Brazil").query
    ranked = read("and the most?", intent="inform", previous=first).query
    assert (ranked.measure, ranked.segments, ranked.group_by, ranked.rank) == (
        "mean",
        (),
        ("segment",),
        "most",
    )
    compared = read("compare low and high users on clicks").query
    median = read("and the median?", intent="inform", previous=compared).query
    assert (median.measure, median.group_by) == ("median", ("segment",))
    assert median.segments == ("Low Engagement", "Highly Engaged")
    highest = read("max clicks of highly engaged users").query
    assert read("and the lowest?", intent="inform", previous=highest).query.measure == "min"


def test_a_superlative_with_nothing_to_rank_is_said():
    understood = read("and the most?", intent="ask_overview")
    assert not understood.answerable
    assert understood.problems[0].startswith('"most": I can\'t tell what to rank')
    assert read("tell me more about highly engaged users").answerable  # a comparative


def test_a_feature_takes_the_unknown_words_of_its_own_name():
    social = run_info(
        names=("Ghosts", "Browsers", "Chatters", "Creators", "Influencers"),
        features=("Daily_Usage_Time (minutes)", "Posts_Per_Day", "Likes_Received_Per_Day"),
        attributes=(),
        values={},
    )
    understood = read("which group posts the least per day", social)
    assert understood.answerable and understood.query.features == ("Posts_Per_Day",)
    assert (understood.query.group_by, understood.query.rank) == (("segment",), "least")
    assert understood.notes == ['I read "posts ... day" as Posts_Per_Day']
