"""Fast bulk inserts: LOAD DATA LOCAL INFILE on MySQL/MariaDB, executemany elsewhere.

Both paths take the same pandas DataFrame and run inside the caller's transaction, so a
failure part-way rolls everything back.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from typing import Iterable, List

import numpy as np
import pandas as pd
from sqlalchemy import JSON, Date, Table
from sqlalchemy.engine import Connection

from segmentation.db import is_mysql

MYSQL_NULL = "\\N"
_NEEDS_ESCAPING = re.compile("[\\\\\t\n\r\x00]")


def _escape_text(values: pd.Series) -> pd.Series:
    """Escape a text column for LOAD DATA's default FIELDS ESCAPED BY '\\\\'."""
    missing = values.isna()
    text = values.astype(str)
    # One C-speed search instead of five replace passes when nothing needs escaping.
    if _NEEDS_ESCAPING.search("".join(text.tolist())):
        text = (
            text.str.replace("\\", "\\\\", regex=False)
            .str.replace("\t", "\\t", regex=False)
            .str.replace("\n", "\\n", regex=False)
            .str.replace("\r", "\\r", regex=False)
            .str.replace("\x00", "\\0", regex=False)
        )
    return text.mask(missing, MYSQL_NULL) if missing.any() else text


def _datetime_text(values: pd.Series, unit: str) -> pd.Series:
    """'YYYY-MM-DD[ HH:MM:SS]' text by numpy (much faster than strftime); NULL for NaT."""
    raw = values.dt.tz_localize(None) if values.dt.tz is not None else values
    raw = raw.to_numpy(dtype=f"datetime64[{unit}]")
    text = np.datetime_as_string(raw, unit=unit)
    if unit == "s":  # 'YYYY-MM-DDTHH:MM:SS' -> 'YYYY-MM-DD HH:MM:SS'
        text.view(np.uint32).reshape(len(text), -1)[:, 10] = ord(" ")
    text = text.astype(object)
    text[np.isnat(raw)] = MYSQL_NULL
    return pd.Series(text, index=values.index)


def _mysql_column_text(values: pd.Series, column_type) -> pd.Series:
    if isinstance(column_type, JSON):
        encoded = values.map(lambda value: None if value is None else json.dumps(value))
        return _escape_text(encoded)
    if pd.api.types.is_datetime64_any_dtype(values):
        return _datetime_text(values, "D" if isinstance(column_type, Date) else "s")
    if pd.api.types.is_bool_dtype(values):
        return values.astype(int).astype(str)
    if pd.api.types.is_integer_dtype(values) and not pd.api.types.is_extension_array_dtype(values):
        return values.astype(str)
    if pd.api.types.is_float_dtype(values):
        # repr keeps full precision; NaN and inf become NULL.
        finite = np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        return values.map(repr).where(finite, MYSQL_NULL)
    return _escape_text(values)


def to_tsv_lines(frame: pd.DataFrame, table: Table) -> List[str]:
    """Rows as LOAD DATA lines (tab-separated, escaped, \\N for NULL)."""
    if frame.empty:
        return []
    columns = [
        _mysql_column_text(frame[name], table.c[name].type).tolist() for name in frame.columns
    ]
    return ["\t".join(fields) for fields in zip(*columns)]


def _load_data_infile(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    fd, path = tempfile.mkstemp(prefix=f"load_{table.name}_", suffix=".tsv")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write("\n".join(to_tsv_lines(frame, table)))
            handle.write("\n")
        columns = ", ".join(f"`{name}`" for name in frame.columns)
        conn.exec_driver_sql(
            f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table.name}` CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            f"({columns})",
            (path,),
        )
    finally:
        os.unlink(path)


def _python_value(value):
    if value is None:
        return None
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime()
    if value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _records(frame: pd.DataFrame) -> Iterable[tuple]:
    objects = frame.astype(object).where(frame.notna(), None)
    for row in objects.itertuples(index=False, name=None):
        yield tuple(_python_value(value) for value in row)


def _executemany(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    columns = list(frame.columns)
    statement = table.insert()
    rows = [dict(zip(columns, record, strict=True)) for record in _records(frame)]
    conn.execute(statement, rows)


def bulk_insert(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Insert every row of `frame` (columns named as in `table`); returns the row count."""
    unknown = set(frame.columns) - set(table.columns.keys())
    if unknown:
        raise ValueError(f"columns not in table {table.name}: {sorted(unknown)}")
    if frame.empty:
        return 0
    if is_mysql(conn):
        _load_data_infile(conn, table, frame)
    else:
        _executemany(conn, table, frame)
    return len(frame)
