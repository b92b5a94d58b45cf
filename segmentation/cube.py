"""Per-run aggregates ("cells") written with the run, so filtered questions stay fast.

For every feature, the users of each (segment, country, device, plan) combination are
summarised as n, sum, min and max; once over all signup dates and once per signup month.
Filtered counts, shares, sums, means, minima and maxima are then sums over a few hundred
rows instead of scans over every user, and they are exact (sums of sums). Medians and user
lists still read the users' rows. A run whose attributes have too many distinct
combinations gets no cells and is answered from the users' rows.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from segmentation.schema import SNAPSHOT_COLUMNS

CATEGORY_COLUMNS = ("country", "device", "plan")
# Above this many attribute combinations the cells stop paying for themselves.
MAX_CELLS = 50_000
MISSING = "<unknown attribute>"  # stands for NULL while grouping (NaN keys don't join)


def attribute_frame(users: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """The users' attributes aligned on the run's users (missing users: all NULL)."""
    frame = users.reindex(index)
    for column in SNAPSHOT_COLUMNS:
        if column not in frame:
            frame[column] = None
    frame["signup_date"] = pd.to_datetime(frame["signup_date"], errors="coerce")
    return frame[list(SNAPSHOT_COLUMNS)]


def cell_frame(
    run_id: int,
    features: pd.DataFrame,
    segments: np.ndarray,
    attributes: pd.DataFrame,
    max_cells: int = MAX_CELLS,
) -> Optional[pd.DataFrame]:
    """segment_cells rows for the run (a frame for bulk_insert), or None when the attributes
    have too many distinct combinations."""
    keys = attributes[list(CATEGORY_COLUMNS)].astype(object)
    keys.insert(0, "segment", segments)
    keys["signup_month"] = attributes["signup_date"].dt.to_period("M").dt.to_timestamp()
    keys = keys.astype(object).where(keys.notna(), MISSING)  # NaN keys don't join back
    grains = {
        False: ["segment", *CATEGORY_COLUMNS],
        True: ["segment", *CATEGORY_COLUMNS, "signup_month"],
    }
    if len(keys.drop_duplicates(grains[True])) > max_cells:
        return None
    parts = [_grain(run_id, by_month, features, keys[cols]) for by_month, cols in grains.items()]
    return pd.concat(parts, ignore_index=True)


def _grain(run_id: int, by_month: bool, features: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    columns = list(keys.columns)
    grouped = pd.concat([keys, features], axis=1).groupby(columns, sort=False)
    sizes = grouped.size().rename("n")
    stats = grouped[list(features.columns)].agg(["sum", "min", "max"])
    stats.columns.names = ["feature", "stat"]
    long = stats.stack(level="feature").join(sizes).reset_index()
    frame = pd.DataFrame(
        {
            "run_id": run_id,
            "by_month": by_month,
            "feature": long["feature"].astype(str),
            "segment": long["segment"].astype(str),
            **{c: _nulls(long[c]) for c in CATEGORY_COLUMNS},
            "signup_month": (
                pd.to_datetime(long["signup_month"].where(long["signup_month"] != MISSING))
                if by_month
                else pd.NaT
            ),
            "n": long["n"].astype(np.int64),
            "total": long["sum"].astype(float),
            "minimum": long["min"].astype(float),
            "maximum": long["max"].astype(float),
        }
    )
    frame["signup_month"] = pd.to_datetime(frame["signup_month"])
    return frame


def _nulls(values: pd.Series) -> pd.Series:
    """The MISSING stand-in back to None (NULL in the database)."""
    return pd.Series(
        [None if v == MISSING else str(v) for v in values], index=values.index, dtype=object
    )
