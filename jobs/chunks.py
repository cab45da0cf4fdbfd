"""Send-pipeline stages on data: chunking, chunk files, provider replies -> per-row outcomes,
and the merge that gives every input row its final state.

Final states (DESIGN.md): SENT, REJECTED, DUPLICATE, SUPPRESSED, FAILED, UNKNOWN.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from jobs.recipients import READY
from ogangi.models import ACCEPTED_STATUSES
from ogangi.recipient_file import write_recipient_file_columns
from ogangi.xml import MessageColumns

SENT = "SENT"
FAILED = "FAILED"
UNKNOWN = "UNKNOWN"
FINAL_STATES = ("SENT", "REJECTED", "DUPLICATE", "SUPPRESSED", "FAILED", "UNKNOWN")
#: Columns a chunk's outcome file holds, positionally aligned with the chunk's rows.
OUTCOME_COLUMNS = ("msisdn", "state", "reason", "message_id", "provider_status")
#: Columns of the prepared frame the job keeps for the results (texts are in the chunk files).
PREPARED_COLUMNS = ("row", "input", "msisdn", "state", "reason", "segments", "chunk")

_LINE_BREAKS = re.compile(r"\r\n|\r|\n")


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


def chunk_file(rows: pd.DataFrame, *, sender: str, timezone: str = "UTC") -> bytes:
    """The sendSMSByFile upload for ``rows``: rendered texts, one line each (spec §7.3).

    Texts are sent rendered (no parameter columns), so what we counted in segments is exactly
    what the provider sends. A line break inside a text would end the CSV row for the
    provider's parser, so it travels as a space.
    """
    texts = [_LINE_BREAKS.sub(" ", t) for t in rows["text"].astype(str).tolist()]
    return write_recipient_file_columns(
        rows["msisdn"].astype(str).tolist(), texts, sender=sender, timezone=timezone
    )


def chunk_msisdns(content: bytes) -> list[str]:
    """The numbers of a chunk file, in order (its first column)."""
    table = pacsv.read_csv(
        io.BytesIO(content),
        read_options=pacsv.ReadOptions(autogenerate_column_names=True),
        convert_options=pacsv.ConvertOptions(column_types={"f0": pa.string()}),
    )
    return [str(v) for v in table.column(0).to_pylist()]


def outcomes_from_reply(msisdns: Sequence[str], reply: MessageColumns) -> pd.DataFrame:
    """Match the reply's messages to the chunk's rows by number (unique after dedupe).

    A row the reply does not mention may or may not have been sent: it is UNKNOWN, never SENT.
    """
    dtype = "string[pyarrow]"
    found = pd.DataFrame(
        {
            "message_id": pd.array(reply.id, dtype=dtype),
            "provider_status": pd.array(reply.status, dtype=dtype),
            "description": pd.array(reply.status_description, dtype=dtype),
        },
        index=pd.Index(reply.to, dtype=dtype),
    )
    found = found[~found.index.duplicated()]
    matched = found.reindex(pd.Index(list(msisdns), dtype=dtype))
    status = matched["provider_status"]
    accepted = status.isin(list(ACCEPTED_STATUSES)).to_numpy()
    missing = status.isna().to_numpy()
    state = np.where(accepted, SENT, np.where(missing, UNKNOWN, FAILED))
    description = matched["description"].where(matched["description"].fillna("") != "", status)
    reason = np.where(
        accepted,
        np.array(None, dtype=object),
        np.where(missing, "the provider's reply does not mention this number", description),
    )
    return _outcomes(
        msisdns,
        state.tolist(),
        reason.tolist(),
        matched["message_id"].tolist(),
        status.tolist(),
    )


def uniform_outcomes(msisdns: Sequence[str], state: str, reason: str) -> pd.DataFrame:
    """The same verdict for every row of a chunk (provider ERROR, ambiguous call, job failed)."""
    n = len(msisdns)
    return _outcomes(msisdns, [state] * n, [reason] * n, [None] * n, [None] * n)


def _outcomes(
    msisdns: Sequence[str],
    states: Sequence[str],
    reasons: Sequence[str | None],
    ids: Sequence[str | None],
    statuses: Sequence[str | None],
) -> pd.DataFrame:
    dtype = "string[pyarrow]"
    return pd.DataFrame(
        {
            "msisdn": pd.array(list(msisdns), dtype=dtype),
            "state": pd.array(list(states), dtype=dtype),
            "reason": pd.array(list(reasons), dtype=dtype),
            "message_id": pd.array(list(ids), dtype=dtype),
            "provider_status": pd.array(list(statuses), dtype=dtype),
        }
    )


def outcome_counts(outcomes: pd.DataFrame) -> dict[str, int]:
    counts = outcomes["state"].value_counts()
    return {state.lower(): int(counts.get(state, 0)) for state in (SENT, FAILED, UNKNOWN)}


def merge_outcomes(prepared: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Final results: READY rows take their chunk's outcome; a READY row with none is UNKNOWN."""
    result = _editable(prepared)
    result["message_id"] = pd.array([None] * len(result), dtype="string[pyarrow]")
    result["provider_status"] = pd.array([None] * len(result), dtype="string[pyarrow]")
    ready = (result["state"] == READY).to_numpy()
    if ready.any():
        lookup = outcomes.drop_duplicates("msisdn").set_index("msisdn")
        keys = result.loc[ready, "msisdn"]
        matched = lookup.reindex(keys.to_numpy())
        state = matched["state"].fillna(UNKNOWN).to_numpy()
        reason = matched["reason"].to_numpy(dtype=object)
        missing = matched["state"].isna().to_numpy()
        reason[missing] = "no outcome was recorded for this row"
        result.loc[ready, "state"] = state
        result.loc[ready, "reason"] = reason
        result.loc[ready, "message_id"] = matched["message_id"].to_numpy(dtype=object)
        result.loc[ready, "provider_status"] = matched["provider_status"].to_numpy(dtype=object)
    return result


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
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return sink.getvalue()


def from_parquet(data: bytes) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(data)).to_pandas(types_mapper=_arrow_types)


def _arrow_types(dtype: pa.DataType) -> object:
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return pd.StringDtype("pyarrow")
    if pa.types.is_integer(dtype):
        return pd.Int64Dtype()
    return None
