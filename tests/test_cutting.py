"""A judged list cut a slice at a time gives the same chunks and prepared rows as a whole list."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from jobs import chunks
from jobs.cutting import ChunkCutter, PreparedWriter, cut_slice, slice_bounds
from jobs.recipients import (
    READY,
    RecipientList,
    build_frame,
    has_sendable_row,
    judge,
    open_list,
)


def messy_list(tmp_path: Path, rows: int = 57) -> RecipientList:
    """Valid numbers, repeats across the whole list, bad cells: every verdict, in any slice."""
    lines = ["phone,name"]
    for i in range(rows):
        if i % 7 == 3:
            lines.append(f"not a number {i},N{i}")
        elif i % 5 == 4:
            lines.append(f"1305555{(i // 10) % 3:04d},Again{i}")  # repeats an earlier number
        else:
            lines.append(f"1305555{i:04d},Name{i}")
    path = tmp_path / "list.csv"
    path.write_text("\n".join(lines) + "\n")
    return open_list(path, "Hi {0}", region="US")


def cut_all(
    listing: RecipientList, tmp_path: Path, chunk_size: int, slice_rows: int
) -> tuple[pd.DataFrame, list[tuple[int, bytes]]]:
    verdicts = judge(listing.data, listing.columns, listing.template, region="US")
    cutter = ChunkCutter(chunk_size, sender="55500")
    writer = PreparedWriter(tmp_path / f"prepared-{chunk_size}-{slice_rows}.parquet")
    cut: list[tuple[int, bytes]] = []
    lo = 0
    for hi in slice_bounds(len(verdicts), chunk_size, slice_rows):
        cut.extend(cut_slice(listing, verdicts, lo, hi, cutter, writer))
        lo = hi
    writer.close()
    return chunks.from_parquet(writer.path.read_bytes()), cut


@pytest.mark.parametrize(("chunk_size", "slice_rows"), [(4, 5), (4, 1), (10, 100), (3, 7)])
def test_slices_give_the_chunks_and_rows_of_the_whole_list(
    tmp_path: Path, chunk_size: int, slice_rows: int
) -> None:
    """Chunks straddling slices, duplicates of rows in earlier slices: same result as whole."""
    listing = messy_list(tmp_path)
    whole = chunks.assign_chunks(
        build_frame(listing.data, listing.columns, listing.template, region="US"), chunk_size
    )
    expected = [
        (number, chunks.chunk_file(rows, sender="55500"))
        for number, rows in chunks.chunk_rows(whole)
    ]
    prepared, cut = cut_all(listing, tmp_path, chunk_size, slice_rows)
    assert cut == expected
    assert [n for n, _ in cut] == list(range(1, len(expected) + 1))
    columns = list(chunks.PREPARED_COLUMNS)
    assert prepared["row"].tolist() == whole["row"].tolist()
    for name in ("msisdn", "state", "reason", "chunk", "segments"):
        assert prepared[name].astype(object).tolist() == whole[name].astype(object).tolist(), name
    assert list(prepared.columns) == columns


def test_a_repeat_in_a_later_slice_names_the_row_that_is_sent(tmp_path: Path) -> None:
    """The first row of a number wins even when its repeat is judged far later."""
    listing = messy_list(tmp_path)
    prepared, _ = cut_all(listing, tmp_path, chunk_size=4, slice_rows=2)
    duplicates = prepared[prepared["state"] == "DUPLICATE"]
    assert len(duplicates) > 0
    for reason, msisdn in zip(duplicates["reason"], duplicates["msisdn"], strict=True):
        original = int(reason.removeprefix("duplicate of row "))
        first = prepared[prepared["row"] == original].iloc[0]
        assert (first["msisdn"], first["state"]) == (msisdn, READY)


def test_slices_start_with_a_little_more_than_a_chunk() -> None:
    """The first chunk is cut after chunk_size * 1.25 rows, not after a whole slice."""
    assert list(slice_bounds(100, 8, 30)) == [10, 40, 70, 100]
    assert list(slice_bounds(5, 8, 30)) == [5]


def test_a_list_with_a_sendable_row_far_down_is_sendable(tmp_path: Path) -> None:
    """Only the 2,500th row is a number: found after judging a growing head of the list."""
    lines = ["phone"] + ["n/a"] * 2_499 + ["13055550101"]
    path = tmp_path / "late.csv"
    path.write_text("\n".join(lines) + "\n")
    assert has_sendable_row(open_list(path, "Hi", region="US"))


def test_a_list_of_bad_numbers_is_not_sendable(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("phone\nn/a\n12\n")
    assert not has_sendable_row(open_list(path, "Hi", region="US"))
