"""A judged list cut into chunk files a slice of rows at a time.

A big list is never described (texts, parameters, parts) all at once: each slice of rows is
described, its rows go to the prepared file, and every chunk completed by its READY rows is
cut; READY rows left over wait for the next slice. Chunks are numbered from 1 in file order,
``chunk_size`` READY rows each (the last one may be shorter), the same numbering
``chunks.assign_chunks`` gives a whole list.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from jobs import chunks
from jobs.recipients import READY, RecipientList, Verdicts, describe

#: Rows described at a time; the first slice is smaller, so the first chunk goes out early.
SLICE_ROWS = 20_000


def slice_bounds(rows: int, chunk_size: int, slice_rows: int | None = None) -> Iterator[int]:
    """Ends of the slices of a list of ``rows`` rows: a first one of a little more than a
    chunk, then ``slice_rows`` (``SLICE_ROWS``) at a time."""
    slice_rows = slice_rows or SLICE_ROWS
    end = min(rows, max(1, chunk_size + chunk_size // 4))
    yield end
    while end < rows:
        end = min(rows, end + max(1, slice_rows))
        yield end


@dataclass
class ChunkCutter:
    """Cuts the READY rows of successive slices into chunk files."""

    chunk_size: int
    sender: str
    timezone: str = "UTC"
    #: READY rows seen in the slices so far.
    ready_so_far: int = 0
    _pending: pd.DataFrame | None = field(default=None, repr=False)

    def cut(
        self, frame: pd.DataFrame, *, last: bool
    ) -> tuple[pd.DataFrame, list[tuple[int, bytes]]]:
        """(the slice's prepared rows, ``chunks.PREPARED_COLUMNS``; the chunks it completes).

        ``frame`` is ``recipients.describe`` of the next rows; ``last`` flushes the short
        chunk at the end of the list.
        """
        ready = (frame["state"] == READY).to_numpy()
        chunk = np.full(len(frame), -1, dtype=np.int64)
        chunk[ready] = (self.ready_so_far + np.arange(int(ready.sum()))) // self.chunk_size + 1
        self.ready_so_far += int(ready.sum())
        numbered = frame.assign(chunk=pd.array(np.where(chunk > 0, chunk, 0), dtype="Int64"))
        numbered.loc[~ready, "chunk"] = pd.NA
        prepared = numbered[list(chunks.PREPARED_COLUMNS)]
        rows = numbered.loc[ready, ["msisdn", "text", "chunk"]]
        if self._pending is not None and len(self._pending):
            rows = pd.concat([self._pending, rows], ignore_index=True)
        done: list[tuple[int, bytes]] = []
        full = len(rows) - len(rows) % self.chunk_size if not last else len(rows)
        for number, part in chunks.chunk_rows(rows.iloc[:full]):
            done.append((number, self._file(part)))
        self._pending = rows.iloc[full:].reset_index(drop=True)
        return prepared, done

    def _file(self, rows: pd.DataFrame) -> bytes:
        return chunks.chunk_file(rows, sender=self.sender, timezone=self.timezone)


class PreparedWriter:
    """The prepared rows of every slice, appended to one parquet file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, prepared: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(prepared, preserve_index=False)
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.path, self._schema)
        else:
            assert self._schema is not None
            table = table.cast(self._schema)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def cut_slice(
    listing: RecipientList,
    verdicts: Verdicts,
    lo: int,
    hi: int,
    cutter: ChunkCutter,
    writer: PreparedWriter,
) -> list[tuple[int, bytes]]:
    """Rows ``lo:hi``: described, written to the prepared file, cut into chunks."""
    frame = describe(
        listing.data.iloc[lo:hi], listing.columns, listing.template, verdicts.slice(lo, hi)
    )
    prepared, done = cutter.cut(frame, last=hi >= len(verdicts))
    writer.write(prepared)
    return done
