"""The synthetic demo data: reproducible, sized as asked, three engagement groups, heavy tails."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from segmentation.cli import main
from segmentation.demo_data import DEFAULT_END, GROUP_SHARES, generate_demo_data, latent_groups
from segmentation.ingest import ingest_csv
from tests.test_ingest_support import table_counts

N_USERS = 20_000
EVENT_FILES = ("clickstream", "search_queries", "article_views")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """{table: DataFrame} of one generated data set, and the latent group of each user."""
    paths = generate_demo_data(tmp_path_factory.mktemp("demo"), N_USERS, seed=7)
    frames = {name: pd.read_csv(path, dtype={"user_id": str}) for name, path in paths.items()}
    return paths, frames, latent_groups(N_USERS, seed=7)


def digest(paths):
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in paths.items()}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    first = generate_demo_data(tmp_path / "a", 3000, seed=1)
    again = generate_demo_data(tmp_path / "b", 3000, seed=1)
    other = generate_demo_data(tmp_path / "c", 3000, seed=2)
    assert sorted(first) == ["article_views", "clickstream", "search_queries", "users"]
    assert digest(first) == digest(again)
    assert all(digest(first)[name] != digest(other)[name] for name in first)


def test_sizes_and_columns(demo):
    _paths, frames, _groups = demo
    users = frames["users"]
    assert len(users) == N_USERS and users["user_id"].is_unique
    assert list(users.columns) == ["user_id", "country", "device", "plan", "signup_date"]
    assert set(users["device"]) == {"iOS", "Android", "Web"}
    assert set(users["plan"]) == {"free", "basic", "premium"}
    events = sum(len(frames[name]) for name in EVENT_FILES)
    assert 25 <= events / N_USERS <= 35
    assert list(frames["clickstream"].columns) == [
        "user_id",
        "timestamp",
        "url",
        "referrer",
        "device",
        "session_id",
        "time_spent",
    ]


def test_group_mix_matches_the_shares(demo):
    _paths, _frames, groups = demo
    shares = np.bincount(groups, minlength=3) / len(groups)
    assert np.allclose(shares, GROUP_SHARES, atol=0.015)


def per_user(frames, groups):
    """Events, days since last event and active days per user, with the latent group."""
    events = pd.concat(
        [frames[name][["user_id", "timestamp"]] for name in EVENT_FILES], ignore_index=True
    )
    events["timestamp"] = pd.to_datetime(events["timestamp"])
    summary = events.groupby("user_id").agg(
        events=("timestamp", "size"),
        last=("timestamp", "max"),
        days=("timestamp", lambda t: t.dt.normalize().nunique()),
    )
    summary["recency"] = (DEFAULT_END - summary["last"]).dt.total_seconds() / 86400
    summary["group"] = pd.Series(groups, index=frames["users"]["user_id"])
    return summary


def test_engaged_groups_are_more_active_recent_and_paying(demo):
    _paths, frames, groups = demo
    by_group = per_user(frames, groups).groupby("group").mean(numeric_only=True)
    assert by_group["events"].is_monotonic_increasing
    assert by_group["days"].is_monotonic_increasing
    assert by_group["recency"].is_monotonic_decreasing
    plans = frames["users"].assign(group=groups).groupby("group")["plan"]
    premium = plans.apply(lambda plan: (plan == "premium").mean())
    assert premium.is_monotonic_increasing


def test_activity_and_durations_are_heavy_tailed(demo):
    _paths, frames, groups = demo
    events = per_user(frames, groups)["events"].sort_values(ascending=False)
    top_tenth = events.iloc[: len(events) // 10].sum() / events.sum()
    assert top_tenth > 0.35
    assert events.max() > 15 * events.median()
    spent = frames["clickstream"]["time_spent"]
    assert spent.min() >= 0 and spent.quantile(0.99) > 8 * spent.median()
    urls = frames["clickstream"]["url"].value_counts()
    assert urls.iloc[0] > 20 * urls.median()  # a few pages are very popular (Zipf)


def test_some_users_are_absent_from_some_sources(demo):
    _paths, frames, _groups = demo
    everyone = set(frames["users"]["user_id"])
    assert set(frames["clickstream"]["user_id"]) == everyone
    for name in ("search_queries", "article_views"):
        present = set(frames[name]["user_id"])
        assert present < everyone and len(present) > N_USERS / 3


def test_events_fall_in_the_window(tmp_path):
    end = datetime(2025, 3, 1)
    paths = generate_demo_data(tmp_path, 2000, seed=3, days=10, end=end)
    for name in EVENT_FILES:
        stamps = pd.to_datetime(pd.read_csv(paths[name])["timestamp"])
        assert stamps.max() < end
        assert stamps.min() >= end - timedelta(days=10, hours=1)


def test_generated_files_load_without_problems(engine, tmp_path):
    paths = generate_demo_data(tmp_path, 1500, seed=5)
    rows = {name: ingest_csv(engine, path, name).rows for name, path in paths.items()}
    counts = table_counts(engine)
    assert all(counts[name] == rows[name] > 0 for name in paths)
    assert rows["users"] == 1500


def test_generate_command(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "out"), "--users", "500", "--seed", "9"]) == 0
    out = capsys.readouterr().out
    assert "wrote 500 users' data" in out and "users.csv" in out and "500 rows" in out
    assert main(["generate", str(tmp_path / "out"), "--users", "0"]) == 2
    with pytest.raises(ValueError):
        generate_demo_data(tmp_path, 0)
