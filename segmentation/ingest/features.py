"""Load a per-user feature table (one row per user, numeric behaviour columns) by name."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from segmentation.bulk import bulk_insert
from segmentation.db import begin
from segmentation.errors import ConfigError, InputError
from segmentation.ingest.events import file_sha256
from segmentation.ingest.feature_checks import (
    EMPTY,
    RowProblem,
    as_numbers,
    choose_features,
    column_kinds,
    describe_swap,
    duplicate_ids,
    examples_of,
    row_problems,
    swapped_pairs,
)
from segmentation.ingest.problems import Problems
from segmentation.ingest.text_table import TextTable, read_text_table
from segmentation.schema import feature_datasets, feature_rows

NO_ID_COLUMN = "none"
MAX_LISTED = 1000  # skipped rows and warnings listed one by one in the report


@dataclass
class FeatureTableResult:
    """What `load_feature_table` stored."""

    dataset_id: int
    name: str
    n_users: int
    features: List[Dict[str, Any]]
    report: Dict[str, Any]

    def summary(self) -> str:
        """A short report for people."""
        lower = [f["name"] for f in self.features if f["lower_is_better"]]
        lines = [
            f"feature table '{self.name}' (#{self.dataset_id}): {self.n_users:,} users, "
            f"{len(self.features)} features: {', '.join(f['name'] for f in self.features)}",
            f"  lower is better: {', '.join(lower) if lower else 'none'}",
        ]
        skipped = self.report["rows_skipped"]
        if skipped:
            reasons = ", ".join(f"{n} {why}" for why, n in self.report["skipped_by_reason"].items())
            lines.append(f"  skipped {skipped:,} bad rows ({reasons}):")
            lines += [
                f"    line {row['line']}: {row['reason']}" for row in self.report["skipped"][:10]
            ]
            if skipped > 10:
                lines.append(f"    ... {skipped - 10:,} more in the stored report")
        lines += [f"  warning: {warning}" for warning in self.report["warnings"][:10]]
        return "\n".join(lines)


def load_feature_table(
    engine: Engine,
    path: Union[str, Path],
    name: str,
    id_column: Optional[str],
    features: Optional[Sequence[str]] = None,
    lower_is_better: Sequence[str] = (),
    skip_bad_rows: bool = False,
    id_offset: int = 1,
) -> FeatureTableResult:
    """Store the CSV `path` as feature table `name` (replacing one of that name), all or nothing.

    `id_column` names the user id column; None (or "none") numbers the rows instead, the first
    data row getting `id_offset`. `features` defaults to every numeric column but the id;
    `lower_is_better` lists features where a lower value means more engaged. Bad rows fail the
    load, or with `skip_bad_rows` are left out and listed in the report.
    """
    path = Path(path)
    if not name or len(name) > feature_datasets.c.name.type.length:
        raise ConfigError("the feature table name must be 1 to 128 characters")
    if not path.is_file():
        raise InputError("no such file", path=str(path))
    table = read_text_table(path)
    id_column = _id_column(table, id_column)
    text = table.values.drop(columns=[id_column]) if id_column else table.values
    numbers = as_numbers(text)
    kinds = column_kinds(text, numbers)
    chosen = choose_features(
        table.header, kinds, id_column, features, lower_is_better, examples_of(text)
    )
    ids = _user_ids(table, id_column, id_offset)
    swaps = swapped_pairs(text, numbers, kinds)
    problems = row_problems(text, numbers, ids, chosen, swaps)
    problems.update(duplicate_ids(ids, _rows_without(problems, len(text)), table.lines))
    if (problems or table.malformed) and not skip_bad_rows:
        _raise_all(table, problems)
    keep = _rows_without(problems, len(text))
    if not keep.any():
        raise InputError("no usable rows: every row has a problem", str(path))
    report = _report(table, text, ids, chosen, kinds, problems, swaps, keep)
    feature_list = [
        {"name": column, "column": column, "lower_is_better": column in set(lower_is_better)}
        for column in chosen
    ]
    values = numbers.loc[keep, chosen]
    rows = pd.DataFrame(
        {
            "user_id": ids[keep].to_numpy(),
            "features": [dict(zip(chosen, row)) for row in values.itertuples(index=False)],
        }
    )
    with begin(engine) as conn:
        dataset_id = _replace_dataset(conn, name, table, id_column, feature_list, report)
        rows.insert(0, "dataset_id", dataset_id)
        bulk_insert(conn, feature_rows, rows)
    return FeatureTableResult(dataset_id, name, len(rows), feature_list, report)


def _rows_without(problems: Dict[int, List[RowProblem]], count: int) -> np.ndarray:
    """A mask of the rows that have no problem."""
    mask = np.ones(count, dtype=bool)
    mask[list(problems)] = False
    return mask


def _id_column(table: TextTable, id_column: Optional[str]) -> Optional[str]:
    if id_column is None or (id_column.lower() == NO_ID_COLUMN and id_column not in table.header):
        return None
    if id_column not in table.header:
        raise ConfigError(
            f"no id column '{id_column}' in {table.path}; its columns are: "
            f"{', '.join(table.header)} (use --id-column none to number the rows instead)"
        )
    return id_column


def _user_ids(table: TextTable, id_column: Optional[str], id_offset: int) -> pd.Series:
    if id_column is None:
        return pd.Series((table.ordinals - 1 + id_offset).astype(str), dtype=object)
    return table.values[id_column].str.strip().replace("", np.nan)


def _raise_all(table: TextTable, problems: Dict[int, List[RowProblem]]) -> None:
    found = Problems(table.path)
    for line, _ordinal, message in table.malformed:
        found.add(message, line=line)
    for row, row_problems_ in problems.items():
        for problem in row_problems_:
            found.add(problem.message, line=int(table.lines[row]), column=problem.column)
    found.raise_if_any()


def _report(
    table: TextTable,
    text: pd.DataFrame,
    ids: pd.Series,
    chosen: List[str],
    kinds: Dict[str, str],
    problems: Dict[int, List[RowProblem]],
    swaps: Dict[int, List[tuple]],
    keep: np.ndarray,
) -> Dict[str, Any]:
    skipped = [
        {"line": line, "user_id": None, "reason": message, "category": "wrong number of fields"}
        for line, _ordinal, message in table.malformed
    ]
    for row, found in problems.items():
        skipped.append(
            {
                "line": int(table.lines[row]),
                "user_id": None if pd.isna(ids.iat[row]) else str(ids.iat[row]),
                "reason": "; ".join(
                    (f"column '{p.column}': " if p.column else "") + p.message for p in found
                ),
                "category": found[0].reason,
            }
        )
    skipped.sort(key=lambda entry: entry["line"])
    swapped = Counter(pair for pairs in swaps.values() for pair in pairs)
    warnings = [
        f"line {int(table.lines[row])}: {describe_swap(text, row, pair)} (row loaded: "
        "the columns are not features)"
        for row, pairs in swaps.items()
        if keep[row]
        for pair in pairs
    ]
    warnings += [
        f"column '{name}' is empty in every row" for name, k in kinds.items() if k == EMPTY
    ]
    return {
        "rows_read": table.records,
        "rows_loaded": int(keep.sum()),
        "rows_skipped": len(skipped),
        "skipped_by_reason": dict(Counter(entry["category"] for entry in skipped)),
        "skipped": skipped[:MAX_LISTED],
        "swapped_columns": [
            {"columns": list(pair), "rows": count} for pair, count in swapped.most_common()
        ],
        "column_types": kinds,
        "ignored_columns": [c for c in text.columns if c not in chosen],
        "warnings": warnings[:MAX_LISTED],
    }


def _replace_dataset(
    conn: Connection,
    name: str,
    table: TextTable,
    id_column: Optional[str],
    feature_list: List[Dict[str, Any]],
    report: Dict[str, Any],
) -> int:
    existing = conn.execute(
        select(feature_datasets.c.id).where(feature_datasets.c.name == name)
    ).scalar()
    if existing is not None:
        conn.execute(feature_rows.delete().where(feature_rows.c.dataset_id == existing))
        conn.execute(feature_datasets.delete().where(feature_datasets.c.id == existing))
    result = conn.execute(
        feature_datasets.insert().values(
            name=name,
            file_name=str(table.path.resolve())[-512:],
            sha256=file_sha256(table.path),
            id_column=id_column or NO_ID_COLUMN,
            features=feature_list,
            n_users=int(report["rows_loaded"]),
            report=report,
            loaded_at=datetime.utcnow().replace(microsecond=0),
        )
    )
    return int(result.inserted_primary_key[0])
