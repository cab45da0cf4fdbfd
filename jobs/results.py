"""The results file: one line per input row, what happened to it, readable by a person.

Columns (DESIGN.md, a public interface): ``row, input, msisdn, state, reason, message_id,
provider_status, segments, chunk``. Missing columns (a dry run has no message ids) are empty.

The file is written for Excel as much as for programs:
- UTF-8 **with a BOM** (without it Excel reads UTF-8 as the local code page and mangles
  accents); RFC 4180 quoting, CRLF line ends. ``read_results`` reads it back.
- **CSV injection** is neutralized in every text cell: a cell starting with ``=``, ``+``,
  ``-``, ``@``, tab or carriage return gets a leading ``'`` so a spreadsheet shows it as text
  instead of running it as a formula. This includes legitimate data such as an ``input`` of
  ``+1 305-555-0103`` (Excel would otherwise compute ``1-305-555-103``): the file shows
  ``'+1 305-555-0103``. A cell that is a plain integer (``-6710228708174720670``, a provider
  message id) is left alone: it cannot be a formula. ``msisdn`` is digits only.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

__all__ = ["RESULT_COLUMNS", "neutralize", "read_results", "results_table", "write_results"]

RESULT_COLUMNS = ("row", "input", "msisdn", "state", "reason", "message_id", "provider_status",
                  "segments", "chunk")
_INTEGER_COLUMNS = ("row", "segments", "chunk")
_BOM = b"\xef\xbb\xbf"
_FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r"]
_PLAIN_INTEGER_RE = r"^[+-]?[0-9]+$"
_OPTIONS = pacsv.WriteOptions(include_header=True, quoting_header="none", eol="\r\n")


def neutralize(values: pa.Array) -> pa.Array:
    """Prefix ``'`` to cells a spreadsheet would take for a formula (see the module docstring)."""
    first = pc.utf8_slice_codeunits(values, 0, 1)
    risky = pc.fill_null(pc.is_in(first, value_set=pa.array(_FORMULA_STARTS, first.type)), False)
    if not pc.any(risky).as_py():
        return values
    # Only the flagged cells pay for the regex that spares plain integers.
    where = np.flatnonzero(risky.to_numpy(zero_copy_only=False))
    plain = pc.match_substring_regex(values.take(pa.array(where)), _PLAIN_INTEGER_RE)
    mask = np.zeros(len(values), dtype=bool)
    mask[where[~plain.to_numpy(zero_copy_only=False)]] = True
    if not mask.any():
        return values
    quoted = pc.binary_join_element_wise(pa.scalar("'", values.type), values,
                                         pa.scalar("", values.type))
    return pc.if_else(pa.array(mask), quoted, values)


def results_table(frame: pd.DataFrame) -> pa.Table:
    """The results columns of ``frame`` (a prepared or finished job), neutralized, as Arrow."""
    n = len(frame)
    columns: dict[str, pa.Array] = {}
    for name in RESULT_COLUMNS:
        if name in _INTEGER_COLUMNS:
            if name in frame:
                columns[name] = pa.array(pd.array(frame[name], dtype="Int64"), pa.int64())
            else:
                columns[name] = pa.nulls(n, pa.int64())
            continue
        if name in frame:
            values = _text_column(frame[name])
            columns[name] = values if name == "msisdn" else neutralize(values)
        else:
            columns[name] = pa.nulls(n, pa.string())
    return pa.table(columns)


def _text_column(column: pd.Series) -> pa.Array:
    """Any column (Arrow strings, categorical, objects) as one large_string array."""
    values = pa.array(column)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values if values.type == pa.large_string() else values.cast(pa.large_string())


class ResultsWriter:
    """The results file written slice by slice (a big job never holds all its rows at once);
    the same bytes ``write_results`` gives for the whole frame."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._writer: pacsv.CSVWriter | None = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        table = results_table(frame)
        if self._writer is None:
            self._sink.write(_BOM)
            self._writer = pacsv.CSVWriter(self._sink, table.schema, write_options=_OPTIONS)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def write_results(frame: pd.DataFrame, dest: str | Path | BinaryIO) -> int:
    """Write the results CSV; a path is replaced atomically. Returns the number of rows."""
    table = results_table(frame)
    options = _OPTIONS
    if not isinstance(dest, (str, Path)):
        dest.write(_BOM)
        pacsv.write_csv(table, dest, options)
        return table.num_rows
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_BOM)
            pacsv.write_csv(table, fh, options)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; results are for people
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return table.num_rows


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_results(path: str | Path, *, restore: bool = False) -> pd.DataFrame:
    """Read a results file back (BOM and quoting handled; every column as text but ``row``,
    ``segments`` and ``chunk``). ``restore`` strips the injection guard's leading ``'``.
    """
    text_columns = {c: pa.string() for c in RESULT_COLUMNS if c not in _INTEGER_COLUMNS}
    int_columns = {c: pa.int64() for c in _INTEGER_COLUMNS}
    table = pacsv.read_csv(
        str(path),
        read_options=pacsv.ReadOptions(encoding="utf-8"),
        convert_options=pacsv.ConvertOptions(
            column_types={**text_columns, **int_columns}, strings_can_be_null=True,
            null_values=[""], quoted_strings_can_be_null=False),
    )
    if table.column_names and table.column_names[0].startswith("\ufeff"):
        table = table.rename_columns([table.column_names[0][1:], *table.column_names[1:]])
    frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow"),
                                          pa.int64(): pd.Int64Dtype()}.get)
    if restore:
        for name in text_columns:
            if name in frame:
                col = frame[name]
                guarded = col.str.match(r"^'[=+\-@\t\r]").fillna(False).astype(bool)
                frame.loc[guarded, name] = col[guarded].str.slice(1)
    return frame
