"""Checks for per-user feature tables: column types by majority, bad rows, swapped columns."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from segmentation.errors import ConfigError
from segmentation.schema import feature_rows

NUMBER, TEXT, EMPTY = "number", "text", "empty"
MAX_ID_LENGTH = feature_rows.c.user_id.type.length


@dataclass
class RowProblem:
    """Why one row cannot be loaded."""

    reason: str  # short category, e.g. "swapped columns"
    message: str
    column: Optional[str] = None


def column_kinds(text: pd.DataFrame, numbers: pd.DataFrame) -> Dict[str, str]:
    """Each column's majority type over its non-empty values: number, text or empty."""
    kinds = {}
    for name in text.columns:
        present = int(text[name].notna().sum())
        if present == 0:
            kinds[name] = EMPTY
        else:
            kinds[name] = NUMBER if numbers[name].notna().sum() * 2 > present else TEXT
    return kinds


def as_numbers(text: pd.DataFrame) -> pd.DataFrame:
    """Finite numbers where the text is one, NaN elsewhere."""
    numbers = text.apply(lambda column: pd.to_numeric(column, errors="coerce"))
    return numbers.astype(float).where(np.isfinite(numbers.astype(float)))


def choose_features(
    header: Sequence[str],
    kinds: Dict[str, str],
    id_column: Optional[str],
    features: Optional[Sequence[str]],
    lower_is_better: Sequence[str],
    examples: Dict[str, List[str]],
) -> List[str]:
    """The feature columns: the ones asked for (checked), or every numeric column but the id."""
    others = [name for name in header if name != id_column]
    numeric = [name for name in others if kinds[name] == NUMBER]
    if features is None:
        chosen = numeric
    else:
        chosen = list(dict.fromkeys(features))
        unknown = [name for name in chosen if name not in header]
        if unknown:
            raise ConfigError(
                f"no column {', '.join(map(repr, unknown))} in the file; its columns are: "
                f"{', '.join(header)}"
            )
        if id_column in chosen:
            raise ConfigError(f"'{id_column}' is the id column; it cannot also be a feature")
        not_numeric = [name for name in chosen if kinds[name] != NUMBER]
        if not_numeric:
            described = "; ".join(
                f"'{name}' holds {kinds[name]} (e.g. {', '.join(map(repr, examples[name]))})"
                for name in not_numeric
            )
            raise ConfigError(
                f"features must be numeric: {described}. Numeric columns: "
                f"{', '.join(numeric) or 'none'}"
            )
    if not chosen:
        raise ConfigError(
            f"no numeric feature columns found (columns: {', '.join(header)}); "
            "name them with --features"
        )
    stray = [name for name in lower_is_better if name not in chosen]
    if stray:
        raise ConfigError(
            f"--lower names {', '.join(map(repr, stray))}, which is not among the features: "
            f"{', '.join(chosen)}"
        )
    return chosen


def examples_of(text: pd.DataFrame, limit: int = 3) -> Dict[str, List[str]]:
    """A few distinct values of each column, for messages."""
    return {
        name: text[name].dropna().drop_duplicates().head(limit).tolist() for name in text.columns
    }


def swapped_pairs(
    text: pd.DataFrame, numbers: pd.DataFrame, kinds: Dict[str, str]
) -> Dict[int, List[Tuple[str, str]]]:
    """Rows where a numeric column holds text while a text column holds a number.

    Returns {row position: [(numeric column, text column), ...]}.
    """
    numeric_cols = [name for name, kind in kinds.items() if kind == NUMBER]
    text_cols = [name for name, kind in kinds.items() if kind == TEXT]
    if not numeric_cols or not text_cols:
        return {}
    text_in_numeric = text[numeric_cols].notna() & numbers[numeric_cols].isna()
    number_in_text = numbers[text_cols].notna()
    suspects = np.flatnonzero(text_in_numeric.any(axis=1) & number_in_text.any(axis=1))
    pairs: Dict[int, List[Tuple[str, str]]] = {}
    for row in suspects:
        holding_text = [c for c in numeric_cols if text_in_numeric.iat[row, numeric_cols.index(c)]]
        holding_numbers = [c for c in text_cols if number_in_text.iat[row, text_cols.index(c)]]
        pairs[int(row)] = list(zip(holding_text, holding_numbers))
    return pairs


def describe_swap(text: pd.DataFrame, row: int, pair: Tuple[str, str]) -> str:
    first, second = pair
    return (
        f"columns '{first}' and '{second}' look swapped "
        f"({first}={text[first].iat[row]!r}, {second}={text[second].iat[row]!r})"
    )


def row_problems(
    text: pd.DataFrame,
    numbers: pd.DataFrame,
    ids: pd.Series,
    features: Sequence[str],
    swaps: Dict[int, List[Tuple[str, str]]],
) -> Dict[int, List[RowProblem]]:
    """{row position: problems} for ids and feature values (duplicate ids are checked later)."""
    problems: Dict[int, List[RowProblem]] = defaultdict(list)
    for row in np.flatnonzero(ids.isna().to_numpy()):
        problems[int(row)].append(RowProblem("missing id", "missing user id"))
    too_long = ids.str.len() > MAX_ID_LENGTH
    for row in np.flatnonzero(too_long.fillna(False).to_numpy()):
        problems[int(row)].append(
            RowProblem("id too long", f"user id longer than {MAX_ID_LENGTH} characters")
        )
    for name in features:
        missing = text[name].isna().to_numpy()
        for row in np.flatnonzero(missing):
            problems[int(row)].append(RowProblem("missing value", "missing value", name))
        bad = ~missing & numbers[name].isna().to_numpy()
        for row in np.flatnonzero(bad):
            swap = [pair for pair in swaps.get(int(row), []) if pair[0] == name]
            if swap:
                other = swap[0][1]
                message = (
                    f"{text[name].iat[row]!r} is not a number; it looks swapped with column "
                    f"'{other}' ({text[other].iat[row]!r})"
                )
                problem = RowProblem("swapped columns", message, name)
            else:
                value = text[name].iat[row]
                problem = RowProblem("not a number", f"{value!r} is not a (finite) number", name)
            problems[int(row)].append(problem)
    return problems


def duplicate_ids(
    ids: pd.Series, usable: np.ndarray, lines: np.ndarray
) -> Dict[int, List[RowProblem]]:
    """Later copies of an id among usable rows: {row: [problem naming the first copy's line]}."""
    problems: Dict[int, List[RowProblem]] = {}
    candidates = ids[usable]
    repeated = candidates.duplicated(keep="first")
    if not repeated.any():
        return problems
    first_line = dict(zip(candidates[~repeated], lines[usable][~repeated.to_numpy()]))
    for position in candidates.index[repeated]:
        user = ids.iat[position]
        problems[int(position)] = [
            RowProblem(
                "duplicate id",
                f"user id {user!r} is also on line {first_line[user]} (one row per user)",
            )
        ]
    return problems
