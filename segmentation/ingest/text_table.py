"""Read a whole (per-user sized) CSV as text, keeping each record's physical line number."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pandas as pd

from segmentation.errors import InputError
from segmentation.ingest.csv_blocks import DEFAULT_BLOCK_BYTES, CsvBlocks, decode


@dataclass
class TextTable:
    """Well-formed records as text (NaN when empty), and the records that were not."""

    path: Path
    header: List[str]
    header_line: int
    values: pd.DataFrame
    lines: np.ndarray  # physical line of each row of `values`
    ordinals: np.ndarray  # 1-based position of each row among all data records
    records: int  # data records in the file, well-formed or not
    malformed: List[Tuple[int, int, str]] = field(default_factory=list)  # (line, ordinal, why)


def read_text_table(path: Path, block_bytes: int = DEFAULT_BLOCK_BYTES) -> TextTable:
    """Every data record of `path`; records with the wrong number of fields go to `malformed`."""
    blocks = CsvBlocks(Path(path), block_bytes)
    header = blocks.header
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InputError(
            f"the header names these columns twice: {', '.join(repeated)}",
            str(path),
            blocks.header_line,
        )
    frames, lines, ordinals, malformed = [], [], [], []
    records = 0
    for block in blocks:
        ordinal = records + 1 + np.arange(len(block))
        records += len(block)
        wrong = block.field_counts != len(header)
        for index in np.flatnonzero(wrong):
            text = block.record_bytes(index).decode("utf-8", errors="replace")
            shown = text if len(text) <= 80 else text[:80] + "..."
            malformed.append(
                (
                    int(block.lines[index]),
                    int(ordinal[index]),
                    f"expected {len(header)} fields (as in the header), found "
                    f"{int(block.field_counts[index])}: {shown!r}",
                )
            )
        good = block.only(~wrong) if wrong.any() else block
        if len(good):
            frames.append(_parse(good.data, header, path, int(good.lines[0])))
            lines.append(good.lines)
            ordinals.append(ordinal[~wrong])
    if records == 0:
        raise InputError("the file has a header but no data rows", str(path), blocks.header_line)
    values = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=header, dtype=str)
    )
    return TextTable(
        path=Path(path),
        header=header,
        header_line=blocks.header_line,
        values=values,
        lines=np.concatenate(lines) if lines else np.empty(0, dtype=np.int64),
        ordinals=np.concatenate(ordinals) if ordinals else np.empty(0, dtype=np.int64),
        records=records,
        malformed=malformed,
    )


def _parse(data: bytes, header: List[str], path: Path, first_line: int) -> pd.DataFrame:
    try:
        return pd.read_csv(
            io.BytesIO(data),
            header=None,
            names=header,
            index_col=False,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8",
        )
    except UnicodeDecodeError:
        decode(data, path, first_line)
        raise
