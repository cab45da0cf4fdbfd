"""Send-pipeline stages on data: chunking, chunk files, provider replies -> per-row outcomes,
and the merge that gives every input row its final state.

Final states (DESIGN.md): SENT, REJECTED, DUPLICATE, SUPPRESSED, FAILED, UNKNOWN.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from jobs.recipients import READY
from ogangi.models import ACCEPTED_STATUSES
from ogangi.recipient_file import write_recipient_file_arrow
from ogangi.xml import MessageColumns, string_array

SENT = "SENT"
FAILED = "FAILED"
UNKNOWN = "UNKNOWN"
FINAL_STATES = ("SENT", "REJECTED", "DUPLICATE", "SUPPRESSED", "FAILED", "UNKNOWN")
#: Columns a chunk's outcome file holds, positionally aligned with the chunk's rows.
OUTCOME_COLUMNS = ("msisdn", "state", "reason", "message_id", "provider_status")
#: Columns of the prepared frame the job keeps for the results (texts are in the chunk files).
PREPARED_COLUMNS = ("row", "input", "msisdn", "state", "reason", "segments", "chunk")

_LINE_BREAKS = r"\r\n|\r|\n"


def assign_chunks(frame: pd.DataFrame, chunk_size: int) -> pd.DataFrame:
    """Number the READY rows' chunks 1, 2, ... in file order; other rows get no chunk."""
    ready = (frame["state"] == READY).to_numpy()
    chunk = np.full(len(frame), -1, dtype=np.int64)
    chunk[ready] = np.arange(int(ready.sum()), dtype=np.int64) // chunk_size + 1
    out = frame.copy()
    out["chunk"] = pd.array(np.where(chunk > 0, chunk, 0), dtype="Int64")
    out.loc[~ready, "chunk"] = pd.NA
    return out


def chunk_count(frame: pd.DataFrame) -> int:
    chunks = frame["chunk"].dropna()
    return int(chunks.max()) if len(chunks) else 0


def chunk_rows(frame: pd.DataFrame) -> Iterator[tuple[int, pd.DataFrame]]:
    """(chunk number, its rows' numbers and texts), in order. READY rows are numbered in file
    order, so each chunk is a run of them: sliced by position, no grouping copies."""
    ready = frame.loc[frame["chunk"].notna(), ["msisdn", "text", "chunk"]]
    numbers = ready["chunk"].to_numpy(dtype=np.int64)
    if not len(numbers):
        return
    starts = np.flatnonzero(np.r_[True, numbers[1:] != numbers[:-1]])
    for start, end in zip(starts, [*starts[1:], len(numbers)], strict=True):
        yield int(numbers[start]), ready.iloc[start:end]


def chunk_file(rows: pd.DataFrame, *, sender: str, timezone: str = "UTC") -> bytes:
    """The sendSMSByFile upload for ``rows``: rendered texts, one line each (spec §7.3).

    Texts are sent rendered (no parameter columns), so what we counted in segments is exactly
    what the provider sends. A line break inside a text would end the CSV row for the
    provider's parser, so it travels as a space.
    """
    texts = pc.replace_substring_regex(_arrow(rows["text"]), _LINE_BREAKS, " ")
    return write_recipient_file_arrow(
        _arrow(rows["msisdn"]), texts, sender=sender, timezone=timezone
    )


def chunk_msisdns(content: bytes) -> pa.Array:
    """The numbers of a chunk file, in order (its first column), as an Arrow ``string`` array.

    Kept in Arrow: ``outcomes_from_reply`` compares them with the reply's numbers in C.
    """
    table = pacsv.read_csv(
        pa.py_buffer(content),
        read_options=pacsv.ReadOptions(autogenerate_column_names=True, use_threads=False),
        convert_options=pacsv.ConvertOptions(
            column_types={"f0": pa.string()}, include_columns=["f0"]
        ),
    )
    return string_array(table.column(0))


def outcomes_from_reply(msisdns: pa.Array | Sequence[str], reply: MessageColumns) -> pd.DataFrame:
    """Match the reply's messages to the chunk's rows by number (unique after dedupe).

    The provider answers in file order, so the usual reply lines up as it is and is read as
    columns; any other reply is matched number by number. A row the reply does not mention
    may or may not have been sent: it is UNKNOWN, never SENT. Arrow throughout: no Python
    object per row (10 000 rows: ~0.5 ms).
    """
    numbers = string_array(msisdns)
    if not reply.to.equals(numbers):
        reply = _realigned(numbers, reply)
    status, description = reply.status, reply.status_description
    accepted = pc.fill_null(pc.is_in(status, value_set=_ACCEPTED), False)
    said = pc.if_else(pc.equal(pc.fill_null(description, ""), ""), status, description)
    if status.null_count:
        missing = pc.is_null(status)
        state = pc.if_else(accepted, SENT, pc.if_else(missing, UNKNOWN, FAILED))
        said = pc.if_else(missing, _NOT_MENTIONED, said)
    else:
        state = pc.if_else(accepted, SENT, FAILED)
    return _frame(
        msisdn=numbers,
        state=state,
        reason=pc.if_else(accepted, _NO_TEXT, said),
        message_id=reply.id,
        provider_status=status,
    )


_ACCEPTED = pa.array(sorted(ACCEPTED_STATUSES), pa.string())
_NO_TEXT = pa.scalar(None, pa.string())
_NOT_MENTIONED = "the provider's reply does not mention this number"


def _realigned(numbers: pa.Array, reply: MessageColumns) -> MessageColumns:
    """The reply's fields in the chunk's row order (null where a number is not in it; the
    first message of a number wins)."""
    found = pc.index_in(numbers, value_set=reply.to)
    return MessageColumns(
        id=reply.id.take(found),
        to=numbers,
        status=reply.status.take(found),
        status_description=reply.status_description.take(found),
    )


def _frame(**columns: pa.Array) -> pd.DataFrame:
    return pd.DataFrame(
        {name: pd.arrays.ArrowStringArray(values) for name, values in columns.items()}
    )


def uniform_outcomes(msisdns: pa.Array | Sequence[str], state: str, reason: str) -> pd.DataFrame:
    """The same verdict for every row of a chunk (provider ERROR, ambiguous call, job failed)."""
    numbers = string_array(msisdns)
    n = len(numbers)
    nothing = pa.nulls(n, pa.string())
    return _frame(
        msisdn=numbers,
        state=pa.repeat(pa.scalar(state, pa.string()), n),
        reason=pa.repeat(pa.scalar(reason, pa.string()), n),
        message_id=nothing,
        provider_status=nothing,
    )


def outcome_counts(outcomes: pd.DataFrame) -> dict[str, int]:
    counts = outcomes["state"].value_counts()
    return {state.lower(): int(counts.get(state, 0)) for state in (SENT, FAILED, UNKNOWN)}


def merge_outcomes(prepared: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Final results: READY rows take their chunk's outcome; a READY row with none is UNKNOWN.

    The outcome files, read in chunk order, list the READY rows in file order; when they all
    exist the outcomes line up with those rows and are laid in place (no join). Otherwise
    each READY row looks its number up.
    """
    result = _editable(prepared)
    ready = pc.equal(_arrow(result["state"]), READY)
    ready = pc.fill_null(ready, False)
    wanted = _arrow(result["msisdn"]).filter(ready)
    got = {name: _arrow(outcomes[name]) for name in OUTCOME_COLUMNS}
    if not got["msisdn"].equals(wanted):
        got = _lookup(wanted, got)
    unknown = pc.is_null(got["state"])
    got["reason"] = pc.if_else(unknown, "no outcome was recorded for this row", got["reason"])
    got["state"] = pc.fill_null(got["state"], UNKNOWN)
    nothing = pa.nulls(len(result), pa.string())
    for name, base in (
        ("state", _arrow(result["state"])),
        ("reason", _arrow(result["reason"])),
        ("message_id", nothing),
        ("provider_status", nothing),
    ):
        merged = pc.replace_with_mask(base, ready, got[name]) if len(wanted) else base
        result[name] = pd.arrays.ArrowStringArray(merged)
    return result


def _arrow(column: pd.Series) -> pa.Array:
    """The column as one Arrow ``string`` array (zero-copy for Arrow-backed text)."""
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
        values = pa.array(column.array)
    else:
        values = pa.array(column.astype("string[pyarrow]").array)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.string())


def _lookup(wanted: pa.Array, got: dict[str, pa.Array]) -> dict[str, pa.Array]:
    """Outcomes for ``wanted`` numbers by value (first outcome of a number wins)."""
    index = pc.index_in(wanted, value_set=got["msisdn"])
    return {name: pc.take(values, index) for name, values in got.items()}


def mark_unsent(frame: pd.DataFrame, reason: str) -> pd.DataFrame:
    """READY rows of a job that failed before sending: FAILED, with why."""
    out = _editable(frame)
    ready = out["state"] == READY
    out.loc[ready, "state"] = FAILED
    out.loc[ready, "reason"] = reason
    return out


def _editable(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose state/reason take any text (the prepared frame may hold categoricals)."""
    out = frame.copy()
    for column in ("state", "reason"):
        out[column] = out[column].astype("string[pyarrow]")
    return out


def final_counts(results: pd.DataFrame) -> dict[str, int]:
    counts = results["state"].value_counts()
    return {state.lower(): int(counts.get(state, 0)) for state in FINAL_STATES}


def to_parquet(frame: pd.DataFrame) -> bytes:
    """The frame as a parquet file (read back whole by ``from_parquet``/``parquet_slices``).

    Converted on the calling thread (``from_pandas`` otherwise starts a thread pool per call:
    ~1 ms, more than the conversion of Arrow-backed columns), and written without
    dictionaries or statistics: numbers and message ids are unique, nothing filters on
    statistics, and the file comes out smaller anyway. A 10 000-row outcome file: ~0.9 ms
    instead of ~2.4 ms.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
    sink = io.BytesIO()
    pq.write_table(
        table, sink, row_group_size=100_000, use_dictionary=False, write_statistics=False
    )
    return sink.getvalue()


def parquet_slices(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """A parquet file's rows, ``rows`` at a time, as frames like ``from_parquet`` gives.

    Read from disk a column chunk at a time (no pre-buffering): only the slice is in memory.
    """
    source = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    for batch in source.iter_batches(batch_size=rows):
        yield pa.Table.from_batches([batch]).to_pandas(types_mapper=_arrow_types)


def from_parquet(data: bytes) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(data)).to_pandas(types_mapper=_arrow_types)


def _arrow_types(dtype: pa.DataType) -> object:
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return pd.StringDtype("pyarrow")
    if pa.types.is_integer(dtype):
        return pd.Int64Dtype()
    return None
