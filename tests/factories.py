"""Small, explicit event data for build and query tests (inserted through bulk_insert)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Dict, Iterable, List, Optional

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from segmentation.bulk import bulk_insert
from segmentation.db import begin
from segmentation.schema import (
    article_views,
    clickstream,
    feature_datasets,
    feature_rows,
    search_queries,
    segmentation_runs,
    user_segments,
    users,
)

END = datetime(2026, 11, 20, 12, 0, 0)


def insert_frame(engine, table, rows: List[dict]) -> None:
    if rows:
        with begin(engine) as conn:
            bulk_insert(conn, table, pd.DataFrame(rows))


def click(user: str, days_ago: float, url: str = "/a", spent: Optional[float] = 10.0, **extra):
    return {
        "user_id": user,
        "timestamp": END - timedelta(days=days_ago),
        "url": url,
        "time_spent": spent,
        "file_id": 1,
        **extra,
    }


def search(user: str, days_ago: float, query: str = "news"):
    return {
        "user_id": user,
        "timestamp": END - timedelta(days=days_ago),
        "query": query,
        "file_id": 1,
    }


def view(user: str, days_ago: float, article: str = "a1", spent: Optional[float] = 60.0):
    return {
        "user_id": user,
        "timestamp": END - timedelta(days=days_ago),
        "article_id": article,
        "time_spent": spent,
        "file_id": 1,
    }


def tiered_population(n_per_tier: int = 30, seed: int = 7) -> Dict[str, List[dict]]:
    """Three clearly separated groups: low (l*), moderate (m*), high (h*) activity."""
    rng = np.random.RandomState(seed)
    tiers = {"l": (2, 1, 1, 20.0), "m": (12, 4, 5, 8.0), "h": (45, 15, 20, 1.0)}
    clicks, searches, views = [], [], []
    for prefix, (n_clicks, n_searches, n_views, recency) in tiers.items():
        for i in range(n_per_tier):
            user = f"{prefix}{i:03d}"
            for j in range(n_clicks + rng.randint(0, 2)):
                clicks.append(click(user, recency + j % 7 + rng.rand(), url=f"/p{j % 9}"))
            for j in range(n_searches):
                searches.append(search(user, recency + rng.rand() + j % 3))
            for j in range(n_views):
                views.append(view(user, recency + rng.rand() + j % 5, spent=30.0 + 10 * j))
    return {"clickstream": clicks, "search_queries": searches, "article_views": views}


def load_population(engine, population: Dict[str, Iterable[dict]]) -> None:
    tables = {
        "clickstream": clickstream,
        "search_queries": search_queries,
        "article_views": article_views,
        "users": users,
    }
    for name, rows in population.items():
        insert_frame(engine, tables[name], list(rows))


def tier_users(n_per_tier: int = 30) -> List[dict]:
    """users rows for tiered_population: device, plan and country by a fixed pattern."""
    return [
        {
            "user_id": f"{p}{i:03d}",
            "device": "iOS" if i % 3 else "Android",
            "plan": "premium" if p == "h" else "free",
            "country": "BR" if i % 2 else "US",
            "file_id": 2,
        }
        for p in "lmh"
        for i in range(n_per_tier)
    ]


def seed_tiers(engine, n_per_tier: int = 30):
    """A complete run over three clear tiers and a users table; returns the BuildResult."""
    from segmentation.build import build_segments
    from segmentation.clustering import ClusterSettings

    load_population(engine, tiered_population(n_per_tier))
    insert_frame(engine, users, tier_users(n_per_tier))
    return build_segments(engine, ClusterSettings(n_init=3, stability_runs=1))


def insert_feature_table(engine, name: str, rows: Dict[str, dict], lower=(), file_name="generated"):
    """A per-user feature table as ingest-features would store it: {user_id: {feature: value}}."""
    features = list(next(iter(rows.values())))
    with begin(engine) as conn:
        dataset_id = conn.execute(
            feature_datasets.insert().values(
                name=name,
                file_name=file_name,
                sha256="0" * 64,
                id_column="id",
                features=[{"name": f, "lower_is_better": f in lower} for f in features],
                n_users=len(rows),
                loaded_at=datetime(2026, 11, 1),
            )
        ).inserted_primary_key[0]
        frame = pd.DataFrame(
            {"dataset_id": dataset_id, "user_id": list(rows), "features": list(rows.values())}
        )
        bulk_insert(conn, feature_rows, frame)


def runs_and_row_counts(engine):
    """Every segmentation run (oldest first) and the user_segments rows stored per run id."""
    with engine.connect() as conn:
        runs = conn.execute(select(segmentation_runs).order_by(segmentation_runs.c.id)).all()
        counts = dict(
            conn.execute(
                select(user_segments.c.run_id, func.count()).group_by(user_segments.c.run_id)
            ).all()
        )
    return runs, counts


def run_info(
    names=("Low Engagement", "Moderate Engagement", "Highly Engaged"),
    features=("clicks", "searches", "sessions", "avg_article_time"),
    values=None,
    attributes=("country", "device", "plan", "signup_date"),
    labels=None,
    aliases=None,
    data_as_of=datetime(2026, 10, 31, 23, 0),
    run_id=1,
):
    """An in-memory RunInfo, for tests of the language layer (no database)."""
    from segmentation.features import EVENT_FEATURES
    from segmentation.results import RunInfo

    labels = labels or {f: EVENT_FEATURES[f].label if f in EVENT_FEATURES else f for f in features}
    aliases = aliases or {
        f: list(EVENT_FEATURES[f].aliases) for f in features if f in EVENT_FEATURES
    }
    values = (
        {
            "country": ["BR", "DE", "FR", "US"],
            "device": ["Android", "Web", "iOS"],
            "plan": ["basic", "free", "premium"],
        }
        if values is None
        else values
    )
    params = {
        "features": list(features),
        "labels": labels,
        "aliases": aliases,
        "attributes": list(attributes),
        "values": {k: v for k, v in values.items() if k in attributes},
        "signup_range": ["2024-01-01", "2026-10-30"] if "signup_date" in attributes else None,
        "cells": True,
    }
    return RunInfo(
        id=run_id,
        created_at=datetime(2026, 11, 2, 9, 30),
        finished_at=None,
        source="events",
        algorithm="kmeans",
        k=len(names),
        n_users=1000,
        data_as_of=data_as_of,
        status="complete",
        params=params,
        metrics={"silhouette": 0.31},
        segment_names=tuple(names),
    )
