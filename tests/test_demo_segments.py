"""On demo data, whose true engagement group is known, segment ranks follow the true groups."""

import pandas as pd
from scipy.stats import spearmanr
from sqlalchemy import select

from segmentation.build import build_segments
from segmentation.clustering import ClusterSettings
from segmentation.demo_data import generate_demo_data, latent_groups
from segmentation.ingest import ingest_csv
from segmentation.schema import user_segments

USERS = 3000


def test_segment_ranks_follow_the_true_groups(engine, tmp_path):
    for table, path in generate_demo_data(tmp_path, USERS, seed=7).items():
        ingest_csv(engine, path, table)
    result = build_segments(engine, ClusterSettings(n_init=3, stability_runs=1))
    with engine.connect() as conn:
        rows = conn.execute(
            select(user_segments.c.user_id, user_segments.c.cluster).where(
                user_segments.c.run_id == result.run_id
            )
        ).all()
    rank = pd.Series(dict(rows))
    truth = pd.Series(latent_groups(USERS, seed=7), index=[f"u{i:07d}" for i in range(USERS)])
    truth = truth.reindex(rank.index)
    mean_truth = truth.groupby(rank).mean()
    assert mean_truth.is_monotonic_increasing and mean_truth.iloc[-1] - mean_truth.iloc[0] > 0.8
    assert spearmanr(truth, rank).statistic > 0.5
