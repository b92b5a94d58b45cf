"""What action_answer says besides the answer itself: questions back, refusals, messages."""

from __future__ import annotations

import re
from typing import Any, Dict, List

from actions.common import Turn, button_payload, chart_url, export_url
from segmentation import charts
from segmentation.attributes import ATTRIBUTES
from segmentation.config import charts_dir
from segmentation.export_files import ttl_seconds
from segmentation.language.interpret import Understanding
from segmentation.language.vocabulary import Vocabulary
from segmentation.render.document import Chart, Reply
from segmentation.render.markup import mrkdwn, plain
from segmentation.render.phrases import first_upper, population
from segmentation.results import (
    Exported,
    Measured,
    Overview,
    SegmentComparison,
    SegmentProfile,
    Trend,
)

NO_DATABASE = (
    "I can't reach the segment database right now, so I can't give you numbers. Please try "
    "again in a minute."
)
TOO_SLOW = (
    "The segment database is taking too long to answer, so I stopped waiting. Please try again "
    "in a minute, or ask a narrower question."
)
TOO_SLOW_EXPORT = (
    "That export is too big to finish here in time, so I stopped. Ask for a narrower list "
    "(one segment, a country, a plan), or export it from the command line: "
    "python -m segmentation export SEGMENT --where country=XX --out file.csv"
)
FAILED = "Sorry, something went wrong while answering that. Please try asking another way."
SUGGESTIONS = {
    "ask_overview": "Overview of all segments",
    "ask_segment_size": "How many users are in a segment",
    "ask_segment_profile": "What a segment looks like",
    "ask_metric": "One measure across segments",
    "compare_segments": "Compare two segments",
    "lookup_user": "Which segment a user is in",
    "list_members": "List a segment's users",
    "breakdown_segment": "Break users down by country, device or plan",
    "targeting_advice": "How to target a segment",
    "ask_changes": "What changed since the last run",
    "ask_trend": "Segment sizes over runs",
    "ask_run_info": "When the segments were updated",
    "ask_quality": "How good the clustering is",
    "ask_data_info": "What data the segments are built on",
}
AUTO_CHARTS = (Overview, SegmentProfile, SegmentComparison, Trend)


def sentence(text: str) -> str:
    text = text.strip()
    return first_upper(text) + ("" if text.endswith((".", "?", "!")) else ".")


def what_can_be_asked(vocabulary: Vocabulary) -> str:
    """The run's own segments, measures and filters, for replies that can't answer."""
    run = vocabulary.run
    present = [ATTRIBUTES[a].label for a in run.params.get("attributes", []) if a in ATTRIBUTES]
    features = ", ".join(run.feature_label(f) for f in run.features)
    lines = [
        f"The segments are {', '.join(run.segment_names)}.",
        f"I can measure {features}.",
    ]
    if present:
        lines.append(f"I can filter and group by {', '.join(present)}.")
    else:
        lines.append("This data has no users table, so there is no country, device or plan.")
    return " ".join(lines)


def cannot_apply(understanding: Understanding, vocabulary: Vocabulary, turn: Turn):
    """No number: say which part of the question could not be used, and what can."""
    lines = ["I can't answer that exactly, so I won't guess a number:"]
    for problem in understanding.problems:
        lines.append(f"• {sentence(problem)}")
    if understanding.unknown:
        words = ", ".join(f'"{w}"' for w in understanding.unknown)
        lines.append(f"• I couldn't use {words}: nothing in this data or in my questions matches.")
    lines.append(what_can_be_asked(vocabulary))
    return [{"text": "\n".join(lines)}]


def ask(understanding: Understanding, turn: Turn):
    """A question back (which segment? which measure?) with one button per choice."""
    question, queries, titles = understanding.ask
    buttons = [
        {"title": title[:75], "payload": button_payload("inform", query=query.dumps())}
        for title, query in zip(titles, queries)
    ]
    return [{"text": question, "buttons": buttons} if buttons else {"text": question}]


def clarify(understanding: Understanding, turn: Turn, vocabulary: Vocabulary):
    """When neither the NLU nor the words make a question: offer the likeliest ones."""
    likely = [name for name in turn.ranking if name in SUGGESTIONS][:3]
    text = "I'm not sure what you mean."
    if understanding.unknown:
        text += " I don't know " + ", ".join(f'"{w}"' for w in understanding.unknown) + "."
    text += ' Did you want one of these? (Or type "help" for example questions.)'
    buttons = [{"title": SUGGESTIONS[name], "payload": button_payload(name)} for name in likely]
    return [{"text": text, "buttons": buttons}]


def messages(reply: Reply, result: Any, query, turn: Turn) -> List[Dict[str, Any]]:
    """The reply in the channel's markup, then its chart (if asked, or shown by default)."""
    chart = _chart(result, query, turn)
    if turn.terminal:
        out = [{"text": plain(reply, ansi=True)}]
        if chart and query.chart:
            out.append({"text": f"Chart ({chart.title}) saved to {chart.path}"})
        if isinstance(result, Exported):
            out.append({"text": f"CSV saved to {result.path}"})
        return out
    out = [{"text": mrkdwn(reply), "json_message": {"reply": reply.to_json()}}]
    if reply.buttons:
        out[0]["buttons"] = reply.buttons
    if isinstance(result, Exported):
        out.append(_export_message(result, reply))
    if chart:
        file_name = chart.path.rsplit("/", 1)[-1]
        out.append(
            {
                "image": chart.url,
                "json_message": {"chart": {"title": chart.title, "file": file_name}},
            }
        )
    return out


def _chart(result: Any, query, turn: Turn):
    drawable = isinstance(result, AUTO_CHARTS) or (
        isinstance(result, Measured) and query.group_by and len(result.groups) > 1
    )
    wanted = query.chart or (turn.shows_images and isinstance(result, AUTO_CHARTS))
    if not (drawable and wanted):
        return None
    path = charts.chart_for(result, charts_dir())
    return Chart(charts.chart_title(result), str(path), chart_url(path))


def _export_message(result: Exported, reply: Reply) -> Dict[str, Any]:
    """The CSV as the channel takes it: Slack uploads the file into the thread, the web chat
    shows a download link (its name is an unguessable token that expires)."""
    title = export_title(result)
    url = export_url(result.file)
    hours = ttl_seconds() / 3600
    expiry = f"{hours:g} hour{'s' if hours != 1 else ''}"
    return {
        "text": f"Download {title} ({result.rows:,} users; the link works for {expiry}): {url}",
        "json_message": {"export": {"file": result.file, "title": title, "rows": result.rows}},
    }


def export_title(result: Exported) -> str:
    """A readable file name: "highly-engaged-users-in-france-run-12.csv"."""
    who = plain(Reply().text(population(result.query))) if result.query else "users"
    slug = re.sub(r"[^a-z0-9]+", "-", who.lower()).strip("-")[:80] or "users"
    return f"{slug}-run-{result.run.id}.csv"
