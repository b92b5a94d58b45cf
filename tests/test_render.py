"""One Reply, each channel's markup: Slack mrkdwn and blocks, HTML, plain text and ANSI."""

from datetime import date

from segmentation.query import Filter, Query
from segmentation.render.document import Chart, Reply, spans
from segmentation.render.markup import mrkdwn, plain, slack_blocks, to_html
from segmentation.render.phrases import filters_phrase, population, stat_phrase, weak_separation
from tests.factories import run_info


def sample() -> Reply:
    reply = Reply().text("*Highly Engaged* users in _Germany_: *41* <of> 1,313 & more")
    reply.table(["segment", "users"], [["Highly Engaged", "41"], ["<b>x</b>", "2"]])
    reply.add(
        Chart("Segment sizes", "/tmp/charts/run1-sizes.png", "http://h/charts/run1-sizes.png")
    )
    return reply.text("From run #1 of 02 Nov 2026 09:30 UTC.", "source")


def test_spans_read_bold_and_italic_marks():
    assert spans("*41* users in _Germany_ of snake_case") == [
        ("41", "b"),
        (" users in ", ""),
        ("Germany", "i"),
        (" of snake_case", ""),
    ]


def test_mrkdwn_keeps_slack_marks_and_code_tables():
    text = mrkdwn(sample())
    lines = text.splitlines()
    assert lines[0] == "*Highly Engaged* users in _Germany_: *41* <of> 1,313 & more"
    assert lines[1] == "```" and lines[2].startswith("segment") and "```" in lines
    assert lines[-1] == "_From run #1 of 02 Nov 2026 09:30 UTC._"


def test_plain_and_ansi_never_show_raw_marks():
    text = plain(sample())
    assert "*" not in text and "_Germany_" not in text
    assert text.splitlines()[0] == "Highly Engaged users in Germany: 41 <of> 1,313 & more"
    assert "Chart (Segment sizes): /tmp/charts/run1-sizes.png" in text
    ansi = plain(sample(), ansi=True)
    assert ansi.startswith("\033[1mHighly Engaged\033[0m users in Germany: \033[1m41\033[0m")
    assert "\033[2mFrom run #1" in ansi


def test_html_escapes_every_value():
    html = to_html(sample())
    assert "<b>Highly Engaged</b>" in html and "<i>Germany</i>" in html
    assert "&lt;of&gt; 1,313 &amp; more" in html
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in html and "<b>x</b>" not in html.replace(
        "<b>Highly Engaged</b>", ""
    ).replace("<b>41</b>", "")
    assert '<img src="http://h/charts/run1-sizes.png" alt="Segment sizes">' in html


def test_slack_blocks_escape_and_put_the_run_in_context():
    blocks = slack_blocks(sample())
    assert (
        blocks[0]["text"]["text"]
        == "*Highly Engaged* users in _Germany_: *41* &lt;of&gt; 1,313 &amp; more"
    )
    assert blocks[1]["text"]["text"].startswith("```\nsegment")
    assert "&lt;b&gt;x&lt;/b&gt;" in blocks[1]["text"]["text"]
    assert blocks[-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "From run #1 of 02 Nov 2026 09:30 UTC."}],
    }


def test_a_reply_travels_as_json_with_its_chart_title():
    data = sample().to_json()
    again = Reply.from_json(data, charts_dir="/srv/charts")
    assert mrkdwn(again) == mrkdwn(sample())
    assert again.charts[0].title == "Segment sizes"
    assert again.charts[0].path == "/srv/charts/run1-sizes.png"


def test_populations_are_said_in_a_fixed_order():
    query = Query(
        "count",
        segments=("Highly Engaged",),
        filters=(
            Filter("plan", ("premium",)),
            Filter("device", ("iOS",)),
            Filter("country", ("DE",)),
            Filter("signup_date", start=date(2026, 1, 1), end=date(2027, 1, 1)),
        ),
    )  # fmt: skip
    assert population(query) == (
        "*Highly Engaged* users in Germany (DE) on iOS on the premium plan who signed up in 2026"
    )
    assert filters_phrase([Filter("country", ("DE", "FR"), exclude=True)]) == (
        "outside Germany (DE) or France (FR)"
    )
    assert population(Query("count", segments=("Power Users",))) == "*Power Users*"
    assert stat_phrase("mean", "Average Screen Time") == "Average Screen Time"
    assert stat_phrase("median", "clicks") == "median clicks"


def test_a_weakly_separated_run_carries_a_caveat_naming_what_separates_it():
    run = run_info()
    assert weak_separation(run) is None
    weak = run.__class__(
        **{
            **run.__dict__,
            "metrics": {
                "silhouette": 0.08,
                "separation": {"clicks": 0.61, "searches": 0.02, "sessions": 0.4},
            },
        }
    )
    assert weak_separation(weak) == (
        "Note: these segments are weakly separated (silhouette 0.08); they differ mainly in "
        "clicks and sessions, so treat differences between them with care."
    )
