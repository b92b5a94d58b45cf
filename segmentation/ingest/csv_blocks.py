"""Stream a CSV file as blocks of whole records, knowing the physical line of every record.

Blocks are cut at record boundaries (line ends outside quoted fields), so pandas can parse
each block on its own and memory stays bounded by the block size, not the file size. The scan
is vectorised with numpy. Quoting follows RFC 4180: a quoted field starts at the start of a
line or right after a comma, ends right before a comma or the line end, and `""` inside it is a
literal quote. Blank (or whitespace-only) lines are skipped, as pandas does; a UTF-8 BOM and
CRLF line endings are accepted.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np

from segmentation.errors import InputError

NEWLINE, CARRIAGE_RETURN, QUOTE, COMMA = 10, 13, 34, 44
DEFAULT_BLOCK_BYTES = 8 * 2**20
# A record longer than this means an unterminated quote, not data.
MAX_RECORD_BYTES = 64 * 2**20
HEADER_READ_BYTES = 2**16
_WHITESPACE = b" \t\r"
_NONE = np.empty(0, dtype=np.int64)


@dataclass
class Block:
    """Whole CSV records: `data[starts[i]:ends[i]]` is record i (line ending left out)."""

    data: bytes
    starts: np.ndarray
    ends: np.ndarray
    lines: np.ndarray  # physical line number (1-based) where each record starts
    field_counts: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def record_bytes(self, index: int) -> bytes:
        return self.data[self.starts[index] : self.ends[index]]

    def record_hashes(self) -> np.ndarray:
        """A 64-bit hash of each record's text (equal records, equal hashes; this process only)."""
        spans = zip(self.starts.tolist(), self.ends.tolist())
        return np.fromiter(
            (hash(self.data[start:end]) for start, end in spans), dtype=np.int64, count=len(self)
        )

    def only(self, keep: np.ndarray) -> "Block":
        """The same block restricted to the records where `keep` is True (parsed separately)."""
        pieces = [self.record_bytes(index) for index in np.flatnonzero(keep)]
        data = b"\n".join(pieces) + b"\n"
        lengths = np.array([len(piece) for piece in pieces], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64)
        return Block(data, starts, starts + lengths, self.lines[keep], self.field_counts[keep])


def parse_fields(record: bytes, path: Path, line: int) -> List[str]:
    """The fields of one record (the header, or a record shown in a message)."""
    text = decode(record, path, line)
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0] if rows else []


def decode(data: bytes, path: Path, first_line: int) -> str:
    """UTF-8 text, or an InputError naming the line of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        raise InputError(
            f"byte {data[exc.start]:#04x} is not valid UTF-8; save the file as UTF-8",
            path=str(path),
            line=line,
        ) from None


class CsvBlocks:
    """Iterate over a CSV file's data records in blocks; the header is read on construction."""

    def __init__(self, path: Path, block_bytes: int = DEFAULT_BLOCK_BYTES) -> None:
        self.path = Path(path)
        self.block_bytes = block_bytes
        self.header: List[str] = []
        self.header_line = 0
        self._data_offset = 0
        self._first_data_line = 0
        self._read_header()

    def _error(self, message: str, line: Optional[int] = None) -> InputError:
        return InputError(message, path=str(self.path), line=line)

    def _read_header(self) -> None:
        size = HEADER_READ_BYTES
        while True:
            with open(self.path, "rb") as handle:
                head = handle.read(size + 1)
            bom = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
            text = head[bom:]
            final = len(head) <= size
            block, _consumed, _newlines = scan(text, 1, final=final, path=self.path)
            if (block is not None and len(block)) or final or size >= MAX_RECORD_BYTES:
                break
            size *= 4
        if block is None or len(block) == 0:
            if not text.strip(_WHITESPACE + b"\n"):
                raise self._error("the file is empty: expected a header line naming the columns")
            raise self._error("the header line is too long (is a quote never closed?)", line=1)
        self.header_line = int(block.lines[0])
        fields = parse_fields(block.record_bytes(0), self.path, self.header_line)
        self.header = [name.strip() for name in fields]
        header_end = int(block.ends[0])
        data_start = header_end + _line_ending_length(text, header_end)
        self._data_offset = bom + data_start
        self._first_data_line = 1 + text.count(b"\n", 0, data_start)

    def __iter__(self) -> Iterator[Block]:
        with open(self.path, "rb") as handle:
            handle.seek(self._data_offset)
            pending = b""
            first_line = self._first_data_line
            while True:
                chunk = handle.read(self.block_bytes)
                final = not chunk
                buffer = pending + chunk if pending else chunk
                if not buffer:
                    return
                block, consumed, newlines = scan(buffer, first_line, final=final, path=self.path)
                if block is None:
                    if len(buffer) > MAX_RECORD_BYTES:
                        scan(buffer, first_line, final=True, path=self.path)  # names a bad quote
                        raise self._error(
                            f"no line end outside quotes in {len(buffer) // 2**20} MB; "
                            "is a quoted field missing its closing quote?",
                            line=first_line,
                        )
                    pending = buffer
                    continue
                pending = buffer[consumed:]
                first_line += newlines
                if len(block):
                    yield block
                if final:
                    return


def _line_ending_length(data: bytes, end: int) -> int:
    """Bytes of the line ending at `end` (`\\r\\n`, `\\n`, a final `\\r` or nothing)."""
    if data[end : end + 2] == b"\r\n":
        return 2
    if data[end : end + 1] in (b"\n", b"\r"):
        return 1
    return 0


def scan(
    buffer: bytes, first_line: int, final: bool, path: Path
) -> Tuple[Optional[Block], int, int]:
    """Find the whole records at the start of `buffer`.

    Returns (block or None when no record ends in the buffer, bytes consumed, newlines
    consumed). With `final`, the rest of the buffer is the last record.
    """
    octets = np.frombuffer(buffer, dtype=np.uint8)
    newlines = np.flatnonzero(octets == NEWLINE)
    quotes = np.flatnonzero(octets == QUOTE) if b'"' in buffer else _NONE
    if quotes.size:
        record_ends = newlines[(np.searchsorted(quotes, newlines) & 1) == 0]
    else:
        record_ends = newlines
    if final:
        consumed = len(buffer)
        tail_is_record = consumed > (record_ends[-1] + 1 if record_ends.size else 0)
        if tail_is_record:
            record_ends = np.append(record_ends, consumed)
    elif record_ends.size == 0:
        return None, 0, 0
    else:
        consumed = int(record_ends[-1]) + 1
    region = octets[:consumed]
    quotes = quotes[quotes < consumed]
    newlines = newlines[newlines < consumed]

    def line_of(offsets: np.ndarray) -> np.ndarray:
        return first_line + np.searchsorted(newlines, offsets)

    _check_quotes(region, quotes, final, line_of, path)
    if buffer.find(b"\r", 0, consumed) >= 0:
        _check_carriage_returns(region, quotes, line_of, path)

    starts = np.concatenate([[0], record_ends[:-1] + 1]).astype(np.int64)
    ends = record_ends.astype(np.int64)
    nonempty = ends > starts
    ends[nonempty] -= region[ends[nonempty] - 1] == CARRIAGE_RETURN
    commas = np.flatnonzero(region == COMMA)
    if quotes.size:
        commas = commas[(np.searchsorted(quotes, commas) & 1) == 0]
    field_counts = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    keep = ~_blank(buffer, starts, ends, field_counts)
    data = buffer if consumed == len(buffer) else buffer[:consumed]
    block = Block(data, starts[keep], ends[keep], line_of(starts[keep]), field_counts[keep])
    return block, consumed, len(newlines)


def _blank(buffer: bytes, starts: np.ndarray, ends: np.ndarray, fields: np.ndarray) -> np.ndarray:
    """Records that are empty or only whitespace (pandas skips those lines)."""
    blank = ends == starts
    for index in np.flatnonzero((fields == 1) & ~blank):
        blank[index] = not buffer[starts[index] : ends[index]].strip(_WHITESPACE)
    return blank


def _check_quotes(region: np.ndarray, quotes: np.ndarray, final: bool, line_of, path) -> None:
    if not quotes.size:
        return
    opening, closing = quotes[0::2], quotes[1::2]
    before = region[np.maximum(opening - 1, 0)]
    bad_open = opening[(opening > 0) & ~np.isin(before, (COMMA, NEWLINE, QUOTE))]
    after = region[np.minimum(closing + 1, len(region) - 1)]
    at_end = closing == len(region) - 1
    bad_close = closing[~at_end & ~np.isin(after, (COMMA, NEWLINE, CARRIAGE_RETURN, QUOTE))]
    stray = np.sort(np.concatenate([bad_open, bad_close]))
    if stray.size:
        raise InputError(
            "a '\"' inside a field that is not quoted, or text after a closing quote; "
            'quote the whole field and double its quotes ("5\'11""")',
            path=str(path),
            line=int(line_of(stray[:1])[0]),
        )
    if final and quotes.size % 2:
        line = int(line_of(quotes[-1:])[0])
        raise InputError("a quoted field is never closed (missing '\"')", path=str(path), line=line)


def _check_carriage_returns(region: np.ndarray, quotes: np.ndarray, line_of, path) -> None:
    returns = np.flatnonzero(region == CARRIAGE_RETURN)
    if not returns.size:
        return
    following = region[np.minimum(returns + 1, len(region) - 1)]
    lone = returns[(following != NEWLINE) & (returns + 1 < len(region))]
    if quotes.size:
        lone = lone[(np.searchsorted(quotes, lone) & 1) == 0]
    if lone.size:
        raise InputError(
            "a carriage return (CR) without a line feed: old Mac line endings are not "
            "supported; save the file with LF or CRLF line endings",
            path=str(path),
            line=int(line_of(lone[:1])[0]),
        )
