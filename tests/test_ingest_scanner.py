"""The block scanner: record boundaries and physical line numbers, whatever the block size."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from segmentation.errors import InputError
from segmentation.ingest.csv_blocks import CsvBlocks, decode

TRICKY = (
    "\n"
    "id,text,n\r\n"
    "1,plain,10\r\n"
    "\r\n"
    '2,"quoted, with comma",20\n'
    '3,"two\nlines and ""quotes""",30\n'
    "   \n"
    '4,"",40\n'
    "5,last,50"
)


def records(path, block_bytes):
    """(line, field count, record text) of every data record."""
    reader = CsvBlocks(path, block_bytes=block_bytes)
    found = []
    for block in reader:
        for index in range(len(block)):
            text = block.record_bytes(index).decode()
            found.append((int(block.lines[index]), int(block.field_counts[index]), text))
    return reader.header, reader.header_line, found


def start_lines_by_csv_module(text):
    """Physical start line of each non-blank record, per Python's csv module."""
    reader = csv.reader(io.StringIO(text, newline=""))
    starts, start = [], 1
    for row in reader:
        if len(row) > 1 or (row and row[0].strip()):
            starts.append(start)
        start = reader.line_num + 1
    return starts


@pytest.mark.parametrize("block_bytes", [1, 5, 17, 64, 2**20])
def test_records_and_lines_do_not_depend_on_block_size(tmp_path, block_bytes):
    path = tmp_path / "tricky.csv"
    path.write_bytes(b"\xef\xbb\xbf" + TRICKY.encode())
    header, header_line, found = records(path, block_bytes)
    assert (header, header_line) == (["id", "text", "n"], 2)
    assert found == [
        (3, 3, "1,plain,10"),
        (5, 3, '2,"quoted, with comma",20'),
        (6, 3, '3,"two\nlines and ""quotes""",30'),
        (9, 3, '4,"",40'),
        (10, 3, "5,last,50"),
    ]
    assert start_lines_by_csv_module(TRICKY)[1:] == [line for line, _n, _text in found]


def test_identical_records_hash_alike_and_only_keeps_a_subset(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,x\n2,y\n1,x\n1,x \n")
    block = next(iter(CsvBlocks(path)))
    hashes = block.record_hashes()
    assert hashes[0] == hashes[2] and len(set(hashes.tolist())) == 3
    subset = block.only(np.array([False, True, False, True]))
    assert [subset.record_bytes(i) for i in range(len(subset))] == [b"2,y", b"1,x "]
    assert subset.lines.tolist() == [3, 5]


@pytest.mark.parametrize(
    "content, line, message",
    [
        (b'a,b\n1,2\n3,4\n\n5,x"y\n', 5, "inside a field that is not quoted"),
        (b'a,b\n1,2\n3,"4\n5,6\n', 3, "never closed"),
        (b"a,b\n1,2\r3,4\n", 2, "carriage return"),
    ],
)
def test_structural_problems_name_the_line(tmp_path, content, line, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        list(CsvBlocks(path, block_bytes=3))
    assert caught.value.line == line and message in caught.value.message


def test_decode_names_the_line_of_a_bad_byte(tmp_path):
    with pytest.raises(InputError) as caught:
        decode(b"1,2\n3,4\n5,\xff\n", tmp_path / "x.csv", first_line=10)
    assert caught.value.line == 12 and "byte 0xff is not valid UTF-8" in caught.value.message


def test_empty_and_blank_files(tmp_path):
    for content in (b"", b"\n\n  \r\n"):
        path = tmp_path / "empty.csv"
        path.write_bytes(content)
        with pytest.raises(InputError, match="the file is empty"):
            CsvBlocks(path)


def test_record_hashes_grow_past_a_low_estimate_and_find_repeats(tmp_path):
    from segmentation.ingest.row_rules import RecordHashes

    path = tmp_path / "r.csv"
    long_rows = [f"{i},{'x' * 200}" for i in range(5)]
    short_rows = [f"{i},y" for i in range(300)] + ["7,y", "3,y"]
    path.write_text("a,b\n" + "\n".join(long_rows + short_rows) + "\n")
    store = RecordHashes(path.stat().st_size)
    for block in CsvBlocks(path, block_bytes=600):  # the first block has the long rows
        store.add(block)
    repeated = store.repeated()
    assert len(repeated) == 2
