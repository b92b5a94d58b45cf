"""The grammar's own words: how people ask for a measure, a direction, a grouping, a run.

These are plain English words about asking questions, never the data's vocabulary: segment
names, features and attribute values come from the run and the data (`vocabulary`). Phrases
are matched on word stems, so "averages", "averaged" and "average" are one word here.
"""

from __future__ import annotations

from typing import Dict, Tuple

# Measures of users. "number of <feature>" is that feature (its mean per user), see parse.
MEASURES: Dict[str, Tuple[str, ...]] = {
    "count": (
        "how many", "number of users", "number of people", "number of customers",
        "count", "counts", "headcount", "head count", "how big", "how large", "size",
        "sizes", "total number", "number of accounts", "how much of", "tally",
    ),
    "share": (
        "percent", "percentage", "%", "share", "proportion", "fraction", "portion",
        "what part", "rate", "ratio", "pct",
    ),
    "mean": ("average", "avg", "mean", "on average", "typical", "typically", "per user"),
    "median": ("median", "middle value", "midpoint"),
    "min": ("minimum", "min", "smallest value", "lowest value"),
    "max": ("maximum", "max", "largest value", "highest value", "peak"),
    "sum": ("sum", "sum of", "in total", "combined", "altogether", "overall total", "total"),
}  # fmt: skip

# Kinds of answer beyond a single measure.
SHAPES: Dict[str, Tuple[str, ...]] = {
    "list": (
        "list", "list of", "who are", "who is", "which users", "which customers",
        "show me the users", "ids", "user ids", "names", "members", "give me the users",
        "show the users", "show users", "examples of", "sample of",
    ),
    "profile": (
        "look like", "looks like", "describe", "description", "profile", "characteristics",
        "characterise", "characterize", "what are they like", "tell me about", "traits",
        "persona", "details of", "about the",
    ),
    "compare": (
        "compare", "comparison", "vs", "versus", "difference", "differences", "differ",
        "against", "compared to", "compared with", "side by side", "contrast",
    ),
    "advice": (
        "target", "targeting", "campaign", "advice", "recommend", "recommendation",
        "should we", "strategy", "re-engage", "reengage", "win back", "retain", "nudge",
        "upsell", "what to do",
    ),
    "export": (
        "export", "csv", "download", "spreadsheet", "excel", "file", "dump", "send me the list",
        "whole list", "full list",
    ),
    "chart": ("chart", "plot", "graph", "visual", "visualise", "visualize", "picture", "draw"),
    "changes": (
        "changed", "change", "changes", "moved", "move", "migrated", "migration", "switched",
        "shifted", "went from", "flow", "flows", "transitions", "since the last run",
    ),
    "trend": (
        "over time", "trend", "trends", "grown", "growing", "grow", "shrinking", "shrunk",
        "history", "every run", "all runs", "each run", "over the runs", "over the last runs",
        "evolution", "evolved",
    ),
    "run_info": (
        "when", "updated", "last updated", "built", "refreshed", "last run", "latest run",
        "how old", "date of the run", "based on",
    ),
    "quality": (
        "quality", "silhouette", "how good", "reliable", "accurate", "accuracy",
        "well separated", "separation", "trust", "confidence", "robust", "stable",
        "stability",
    ),
    "data_info": (
        "which features", "what features", "features", "what data", "which data",
        "what attributes", "which attributes", "what can i ask", "what can you filter",
        "do we have", "what values", "which values", "available",
    ),
    "overview": ("overview", "summary", "summarise", "summarize", "split", "breakdown of users"),
}  # fmt: skip

DIRECTIONS: Dict[str, Tuple[str, ...]] = {
    "most": (
        "most", "highest", "top", "largest", "biggest", "greatest", "best", "more",
        "maximum", "max", "heaviest", "strongest", "leading",
    ),
    "least": (
        "least", "lowest", "fewest", "bottom", "smallest", "worst", "less", "fewer",
        "minimum", "min", "weakest", "lightest",
    ),
}  # fmt: skip

# "by device", "per country", "for each segment", "across plans".
GROUPING = (
    "by",
    "per",
    "for each",
    "each",
    "across",
    "in each",
    "split by",
    "broken down by",
    "break down by",
    "breakdown by",
    "grouped by",
    "every",
    "for every",
    "by each",
)
WHICH = ("which", "what")
SEGMENT_NOUNS = (
    "segment",
    "segments",
    "group",
    "groups",
    "cluster",
    "clusters",
    "tier",
    "tiers",
    "bucket",
    "buckets",
    "cohort",
    "cohorts",
    "category",
    "categories",
)
USER_NOUNS = (
    "user",
    "users",
    "customer",
    "customers",
    "people",
    "person",
    "member",
    "members",
    "account",
    "accounts",
    "subscriber",
    "subscribers",
    "client",
    "clients",
    "visitor",
    "visitors",
    "reader",
    "readers",
    "folks",
    "ppl",
    "ones",
    "audience",
    "base",
    "userbase",
)

# Tiers: the least, the middle and the most engaged segment of a run, whatever its names.
# The standard names are tier words too, for runs with custom names.
TIERS: Dict[str, Tuple[str, ...]] = {
    "low": (
        "low engagement", "low engaged", "lowly engaged", "least engaged", "least active",
        "lowest tier", "bottom tier", "low tier", "lowest segment", "bottom segment",
        "disengaged", "inactive", "dormant", "casual", "light", "at risk", "at-risk",
        "churning", "lapsed", "low", "unengaged", "passive",
    ),
    "moderate": (
        "moderate engagement", "moderately engaged", "moderate", "medium", "mid", "middle",
        "middle tier", "mid tier", "average engagement", "moderately active", "in between",
        "intermediate",
    ),
    "high": (
        "highly engaged", "high engagement", "most engaged", "most active", "top tier",
        "highest tier", "highest segment", "top segment", "high tier", "power", "heavy",
        "super", "very active", "highly active", "loyal", "champions", "high", "engaged",
        "active", "best",
    ),
}  # fmt: skip
# Tier words that are also direction words: tiers only when next to a user/segment noun.
AMBIGUOUS_TIERS = ("low", "high", "best", "active", "engaged", "light", "middle", "mid")

RUNS: Dict[str, Tuple[str, ...]] = {
    "previous": (
        "previous run",
        "prior run",
        "earlier run",
        "last time",
        "run before",
        "before the last run",
        "previous segmentation",
        "in the previous",
    ),
    "all": ("every run", "all runs", "each run", "over time", "across runs", "over the runs"),
}
RUN_NOUNS = ("run", "runs", "build", "segmentation")

# The signup date: a date in the question is a signup date only next to one of these.
SIGNUP_WORDS = (
    "signed up",
    "sign up",
    "signup",
    "signups",
    "sign-up",
    "joined",
    "join",
    "registered",
    "registration",
    "new users",
    "new customers",
    "created",
    "onboarded",
    "acquired",
    "cohort",
)
# Activity words: "active in the last 30 days" asks for an activity window (not signup).
ACTIVITY_WORDS = (
    "active",
    "activity",
    "visited",
    "clicked",
    "searched",
    "used",
    "logged",
    "seen",
    "engaged",
    "read",
    "opened",
    "bought",
    "purchased",
)

NEGATIONS = ("not", "except", "excluding", "without", "other than", "outside", "non", "apart from")
FOLLOW_UPS = (
    "and",
    "what about",
    "how about",
    "same for",
    "same but",
    "now",
    "instead",
    "also",
    "too",
    "then",
    "only",
    "just",
)
