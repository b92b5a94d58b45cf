"""One block of CSV records -> a typed DataFrame for a table, each bad value named by line."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np
import pandas as pd

from segmentation.errors import InputError
from segmentation.ingest.columns import ColumnPlan
from segmentation.ingest.csv_blocks import Block, decode
from segmentation.ingest.problems import Problems
from segmentation.ingest.values import TimestampFormat, convert_column


@dataclass
class Parsed:
    """The well-formed records of a block and their values, converted for the table."""

    block: Block
    frame: pd.DataFrame

    @property
    def lines(self) -> np.ndarray:
        return self.block.lines


class BlockConverter:
    """Parses blocks with pandas' C parser and converts them as the column plan says."""

    def __init__(
        self, plan: ColumnPlan, header: List[str], timestamps: TimestampFormat, path: Path
    ) -> None:
        self.plan = plan
        self.header = list(header)
        self.timestamps = timestamps
        self.path = path
        sources = set(plan.sources.values())
        self.usecols = [name for name in self.header if name in sources]
        self.fast_dtypes = _fast_dtypes(plan, timestamps)

    def convert(self, block: Block, problems: Problems) -> Parsed:
        """Converted values of `block`'s records; problems go to `problems`."""
        expected = len(self.header)
        wrong = block.field_counts != expected
        if wrong.any():
            for index in np.flatnonzero(wrong):
                count = int(block.field_counts[index])
                problems.add(
                    f"expected {expected} fields (as in the header), found {count}: "
                    f"{_preview(block.record_bytes(index))}",
                    line=int(block.lines[index]),
                )
            block = block.only(~wrong)
        if not len(block):
            return Parsed(block, pd.DataFrame({name: [] for name in self.plan.sources}))
        raw = self._read(block)
        if len(raw) != len(block):
            raise InputError(
                f"pandas read {len(raw)} records where {len(block)} were expected; "
                "the file's quoting is unusual",
                path=str(self.path),
                line=int(block.lines[0]),
            )
        columns: Dict[str, pd.Series] = {}
        longest = int((block.ends - block.starts).max())
        for spec in self.plan.specs:
            source = self.plan.sources[spec.name]
            values, issues = convert_column(spec, raw[source], self.timestamps, longest)
            for issue in issues:
                for index in np.flatnonzero(issue.mask):
                    if problems.full:
                        break
                    problems.add(
                        issue.describe(raw[source].iloc[index]),
                        line=int(block.lines[index]),
                        column=source,
                    )
            columns[spec.name] = values.reset_index(drop=True)
        return Parsed(block, pd.DataFrame(columns))

    def _read(self, block: Block) -> pd.DataFrame:
        try:
            return self._read_csv(block, self.fast_dtypes)
        except UnicodeDecodeError:
            decode(block.data, self.path, int(block.lines[0]))
            raise
        except ValueError:
            # A number column holds text somewhere: read it as text to name the bad values.
            return self._read_csv(block, str)

    def _read_csv(self, block: Block, dtype) -> pd.DataFrame:
        return pd.read_csv(
            io.BytesIO(block.data),
            header=None,
            names=self.header,
            usecols=self.usecols,
            index_col=False,
            dtype=dtype,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=True,
            encoding="utf-8",
            engine="c",
        )


def _fast_dtypes(plan: ColumnPlan, timestamps: TimestampFormat) -> Dict[str, type]:
    """Read a source column as float when every table column it fills is numeric."""
    numeric: Dict[str, bool] = {}
    for spec in plan.specs:
        source = plan.sources[spec.name]
        is_number = spec.kind == "duration" or (spec.kind == "timestamp" and timestamps.is_epoch)
        numeric[source] = numeric.get(source, True) and is_number
    return {source: (float if is_number else str) for source, is_number in numeric.items()}


def _preview(record: bytes, limit: int = 80) -> str:
    text = record.decode("utf-8", errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")
