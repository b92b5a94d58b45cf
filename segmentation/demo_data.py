"""Synthetic but realistic behaviour data: clickstream, searches, article views and users.

Every user belongs to a latent engagement group (about 50% low, 35% moderate, 15% high). A
user's activity is heavy-tailed (lognormal rate, Poisson counts, about 30 events per user on
average over all sources); engaged users are active on more days and more recently, search
more, read more and pay more. Users are generated in fixed blocks with vectorised numpy and
streamed to disk, so a million users (about 30 million events) take minutes and bounded
memory. The same arguments always give the same bytes.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

GROUPS = ("low", "moderate", "high")
GROUP_SHARES = np.array([0.50, 0.35, 0.15])
# Mean events per user in each group, over all sources and the whole window.
MEAN_EVENTS = np.array([7.0, 32.0, 100.0])
ACTIVITY_SIGMA = 0.9
# Share of a user's events in clickstream / article views / searches, and the chance that a
# user of each group never uses articles or search at all.
SOURCE_SHARES = {"clickstream": 0.65, "article_views": 0.25, "search_queries": 0.10}
NEVER_READS = np.array([0.40, 0.15, 0.05])
NEVER_SEARCHES = np.array([0.60, 0.30, 0.10])
# Days since last activity (mean) and share of the window a user is active over.
RECENCY_DAYS = np.array([9.0, 3.5, 0.8])
SPAN_SHARE = np.array([0.35, 0.7, 0.95])
CLICKS_PER_SESSION = 4.0
PLAN_SHARES = np.array([[0.80, 0.15, 0.05], [0.55, 0.30, 0.15], [0.30, 0.35, 0.35]])
PLANS = np.array(["free", "basic", "premium"], dtype=object)
DEVICES = np.array(["iOS", "Android", "Web"], dtype=object)
DEVICE_SHARES = np.array([0.40, 0.42, 0.18])
COUNTRIES = np.array(
    ["US", "IN", "BR", "GB", "DE", "FR", "ID", "MX", "NG", "JP", "CA", "ES"], dtype=object
)
COUNTRY_SHARES = np.array([0.22, 0.18, 0.11, 0.08, 0.07, 0.06, 0.06, 0.05, 0.05, 0.05, 0.04, 0.03])
REFERRERS = np.array(
    ["direct", "google.com", "facebook.com", "t.co", "newsletter", "bing.com"], dtype=object
)
REFERRER_SHARES = np.array([0.35, 0.30, 0.15, 0.08, 0.08, 0.04])
SECTIONS = ("news", "sport", "tech", "culture", "business", "health", "travel", "science")
N_PAGES = 5000
N_ARTICLES = 20000
ZIPF_EXPONENT = 1.1
SEARCH_WORDS = (
    "election weather football recipe iphone stocks covid vaccine music concert movie review "
    "travel deals hotel flight bitcoin climate energy jobs salary housing rent school exam "
    "marathon tennis olympics series trailer podcast health diet running yoga coffee pizza "
    "vegan garden cars electric battery laptop android games fifa nba festival museum"
).split()
USERS_PER_BLOCK = 20000
DEFAULT_END = datetime(2026, 11, 1)
SECONDS_PER_DAY = 86400
FILES = ("clickstream", "search_queries", "article_views", "users")


def generate_demo_data(
    out_dir, n_users: int, seed: int = 42, days: int = 30, end: Optional[datetime] = None
) -> Dict[str, Path]:
    """Write clickstream.csv, search_queries.csv, article_views.csv and users.csv to `out_dir`.

    Events fall in the `days` days before `end` (default DEFAULT_END, fixed so that output is
    reproducible); naive timestamps are UTC. Returns {table name: path}.
    """
    if n_users < 1:
        raise ValueError("n_users must be at least 1")
    if days < 1:
        raise ValueError("days must be at least 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    end = (end or DEFAULT_END).replace(microsecond=0)
    paths = {name: out / f"{name}.csv" for name in FILES}
    handles = {name: open(path, "w", encoding="utf-8", newline="") for name, path in paths.items()}
    try:
        for block, first in enumerate(range(0, n_users, USERS_PER_BLOCK)):
            count = min(USERS_PER_BLOCK, n_users - first)
            rng = np.random.default_rng([seed, block])
            frames = _block_frames(rng, first, count, days, end)
            for name, frame in frames.items():
                frame.to_csv(handles[name], index=False, header=block == 0, lineterminator="\n")
    finally:
        for handle in handles.values():
            handle.close()
    return paths


def latent_groups(n_users: int, seed: int = 42) -> np.ndarray:
    """Each generated user's latent group index (0 low, 1 moderate, 2 high), for evaluation."""
    groups = []
    for block, first in enumerate(range(0, n_users, USERS_PER_BLOCK)):
        count = min(USERS_PER_BLOCK, n_users - first)
        groups.append(_draw_groups(np.random.default_rng([seed, block]), count))
    return np.concatenate(groups)


def _draw_groups(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.choice(len(GROUPS), size=count, p=GROUP_SHARES)


def _zipf_choice(rng: np.random.Generator, size: int, n_items: int) -> np.ndarray:
    """Item ranks 0..n_items-1 with Zipf-like popularity."""
    weights = 1.0 / np.arange(1, n_items + 1) ** ZIPF_EXPONENT
    return rng.choice(n_items, size=size, p=weights / weights.sum())


def _block_frames(
    rng: np.random.Generator, first: int, count: int, days: int, end: datetime
) -> Dict[str, pd.DataFrame]:
    group = _draw_groups(rng, count)
    ids = np.array([f"u{first + index:07d}" for index in range(count)], dtype=object)
    mean = MEAN_EVENTS[group]
    activity = rng.lognormal(np.log(mean) - ACTIVITY_SIGMA**2 / 2, ACTIVITY_SIGMA)
    reads = rng.random(count) >= NEVER_READS[group]
    searches = rng.random(count) >= NEVER_SEARCHES[group]
    clicks = 1 + rng.poisson(activity * SOURCE_SHARES["clickstream"])
    views = rng.poisson(
        activity * SOURCE_SHARES["article_views"] * reads / (1 - NEVER_READS[group])
    )
    queries = rng.poisson(
        activity * SOURCE_SHARES["search_queries"] * searches / (1 - NEVER_SEARCHES[group])
    )
    recency = np.minimum(rng.exponential(RECENCY_DAYS[group]), days - 1e-3)
    span = np.minimum(days * SPAN_SHARE[group] * rng.uniform(0.5, 1.0, count), days - recency)
    device = rng.choice(DEVICES, size=count, p=DEVICE_SHARES)
    end_s = int(pd.Timestamp(end).value // 10**9)
    window = (end_s, recency, span)
    users = _users(rng, ids, group, device, recency + span, end)
    return {
        "clickstream": _clickstream(rng, first, ids, clicks, device, window),
        "search_queries": _searches(rng, ids, queries, window),
        "article_views": _article_views(rng, ids, views, window),
        "users": users,
    }


def _event_times(
    rng: np.random.Generator, owner: np.ndarray, window: Tuple[int, np.ndarray, np.ndarray]
) -> np.ndarray:
    """Epoch seconds for events of users `owner` (sorted), in each user's active window,
    recent days weighted more, and strictly increasing per user (so no two rows are equal)."""
    end_s, recency, span = window
    back_days = recency[owner] + span[owner] * rng.random(len(owner)) ** 1.5
    seconds = end_s - np.round(back_days * SECONDS_PER_DAY).astype(np.int64)
    seconds = seconds[np.lexsort((seconds, owner))]
    later_in_user = _rank_in_group(owner[::-1])[::-1]
    return seconds - later_in_user


def _rank_in_group(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2... within each run of equal consecutive keys."""
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    lengths = np.diff(np.r_[starts, len(keys)])
    return np.arange(len(keys)) - np.repeat(starts, lengths)


def _as_datetimes(seconds: np.ndarray) -> np.ndarray:
    """'YYYY-MM-DD HH:MM:SS' text for epoch seconds (lookup tables: much faster than strftime)."""
    if not len(seconds):
        return np.array([], dtype=object)
    day, second = np.divmod(seconds, SECONDS_PER_DAY)
    first_day = int(day.min())
    dates = pd.to_datetime(np.arange(first_day, int(day.max()) + 1), unit="D")
    date_text = np.array(dates.strftime("%Y-%m-%d ").tolist(), dtype=object)
    return date_text[day - first_day] + _times_of_day()[second]


def _clickstream(rng, first, ids, clicks, device, window) -> pd.DataFrame:
    end_s, recency, _span = window
    owner = np.repeat(np.arange(len(ids)), clicks)
    sessions = 1 + rng.binomial(clicks - 1, 1 / CLICKS_PER_SESSION)
    session = _rank_in_group(owner) * sessions[owner] // clicks[owner]
    session_key = owner.astype(np.int64) * 100000 + session
    entry = np.r_[True, session_key[1:] != session_key[:-1]]
    entries = np.flatnonzero(entry)
    session_len = np.diff(np.r_[entries, len(owner)])
    time_spent = np.round(rng.lognormal(np.log(35), 1.1, len(owner)), 1)
    gaps = np.ceil(time_spent + rng.exponential(4, len(owner))).astype(np.int64)
    elapsed = np.cumsum(gaps) - gaps
    in_session = elapsed - np.repeat(elapsed[entries], session_len)
    duration = in_session[np.r_[entries[1:], len(owner)] - 1]
    # Sessions start in the user's window, the first one at the user's last activity, and
    # end before `end`.
    session_owner = owner[entries]
    start = end_s - np.round(
        (recency[session_owner] + window[2][session_owner] * rng.random(len(entries)) ** 1.5)
        * SECONDS_PER_DAY
    ).astype(np.int64)
    first_session = np.r_[True, session_owner[1:] != session_owner[:-1]]
    start[first_session] = end_s - np.round(recency[session_owner[first_session]] * 86400)
    start = np.minimum(start, end_s - 1 - duration)
    timestamps = np.repeat(start, session_len) + in_session
    referrer = np.where(
        entry, rng.choice(REFERRERS, size=len(owner), p=REFERRER_SHARES), "internal"
    )
    switch = rng.random(len(owner)) < 0.05
    event_device = np.where(switch, rng.choice(DEVICES, size=len(owner)), device[owner])
    return pd.DataFrame(
        {
            "user_id": ids[owner],
            "timestamp": _as_datetimes(timestamps),
            "url": _page_urls()[_zipf_choice(rng, len(owner), N_PAGES)],
            "referrer": referrer,
            "device": event_device,
            "session_id": (first + owner).astype(np.int64) * 1000 + session,
            "time_spent": time_spent,
        }
    )


def _searches(rng, ids, queries, window) -> pd.DataFrame:
    owner = np.repeat(np.arange(len(ids)), queries)
    words = np.array(SEARCH_WORDS, dtype=object)
    first_word = words[_zipf_choice(rng, len(owner), len(words))]
    second_word = words[rng.integers(0, len(words), len(owner))]
    two_words = rng.random(len(owner)) < 0.4
    text = np.where(two_words, first_word + " " + second_word, first_word)
    return pd.DataFrame(
        {
            "user_id": ids[owner],
            "timestamp": _as_datetimes(_event_times(rng, owner, window)),
            "query": text,
        }
    )


def _article_views(rng, ids, views, window) -> pd.DataFrame:
    owner = np.repeat(np.arange(len(ids)), views)
    article = _zipf_choice(rng, len(owner), N_ARTICLES)
    return pd.DataFrame(
        {
            "user_id": ids[owner],
            "article_id": _article_ids()[article],
            "timestamp": _as_datetimes(_event_times(rng, owner, window)),
            "time_spent": np.round(rng.lognormal(np.log(75), 1.0, len(owner)), 1),
        }
    )


def _users(rng, ids, group, device, active_days, end: datetime) -> pd.DataFrame:
    plan_draw = rng.random(len(ids))
    cumulative = np.cumsum(PLAN_SHARES[group], axis=1)
    plan = PLANS[(plan_draw[:, None] > cumulative).sum(axis=1)]
    account_days = np.ceil(active_days + rng.exponential(120 + 200 * group)).astype(np.int64)
    signup = pd.Timestamp(end.date()) - pd.to_timedelta(account_days, unit="D")
    return pd.DataFrame(
        {
            "user_id": ids,
            "country": rng.choice(COUNTRIES, size=len(ids), p=COUNTRY_SHARES),
            "device": device,
            "plan": plan,
            "signup_date": signup.strftime("%Y-%m-%d"),
        }
    )


_cache: Dict[str, np.ndarray] = {}


def _page_urls() -> np.ndarray:
    if "pages" not in _cache:
        names: List[str] = [
            f"/{SECTIONS[index % len(SECTIONS)]}/story-{index:05d}" for index in range(N_PAGES)
        ]
        _cache["pages"] = np.array(names, dtype=object)
    return _cache["pages"]


def _times_of_day() -> np.ndarray:
    if "times" not in _cache:
        hours, rest = np.divmod(np.arange(SECONDS_PER_DAY), 3600)
        minutes, seconds = np.divmod(rest, 60)
        texts = [f"{h:02d}:{m:02d}:{s:02d}" for h, m, s in zip(hours, minutes, seconds)]
        _cache["times"] = np.array(texts, dtype=object)
    return _cache["times"]


def _article_ids() -> np.ndarray:
    if "articles" not in _cache:
        _cache["articles"] = np.array(
            [f"a{index:06d}" for index in range(N_ARTICLES)], dtype=object
        )
    return _cache["articles"]
