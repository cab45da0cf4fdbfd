"""An uploaded recipient file as a table of text cells (§7.3 steps 1-2), before any meaning.

Two readers give the same cells:

- ``read_table``: any upload (spreadsheet, CSV, ``;`` text), as Python lists, with ``csv``;
- ``read_columns``: a text file written the canonical way (every field quoted, or none, one
  line ending throughout, no blank line), as Arrow columns. It parses with Arrow's CSV reader,
  then proves the reading: the columns written back in the file's own style must give the
  upload byte for byte. ``csv.reader`` reads such a canonical encoding back to exactly those
  cells, so whenever ``read_columns`` answers, ``read_table`` would have said the same.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from python_calamine import CalamineError, CalamineWorkbook

from ogangi.sandbox.columns import Column, joined_bytes

#: Zip (xlsx, ods) and OLE2 (xls) containers: spreadsheets, whatever the upload's file name.
_SPREADSHEET_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
_BOM = b"\xef\xbb\xbf"
#: Wider files are left to ``read_table`` (Arrow would guess the extra columns' types).
_MAX_COLUMNS = 256
_CONVERT = pacsv.ConvertOptions(
    column_types={f"f{i}": pa.string() for i in range(_MAX_COLUMNS)},
    strings_can_be_null=False,
    quoted_strings_can_be_null=False,
)


class FileRejected(Exception):
    """The whole upload is unusable: the call answers ERROR with this reason."""


def read_table(data: bytes) -> list[list[str]]:
    """A spreadsheet's first sheet as text cells, else UTF-8 (BOM stripped) CSV or ``;`` text."""
    if data.startswith(_SPREADSHEET_MAGIC):
        return _read_spreadsheet(data)
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"the file is neither a spreadsheet nor UTF-8 text ({exc.reason})"
        ) from None
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=sniff_delimiter(content))
    try:
        return list(reader)
    except csv.Error as exc:
        raise FileRejected(f"unreadable CSV at line {reader.line_num}: {exc}") from None


def read_columns(data: bytes) -> list[Column] | None:
    """``read_table(data)`` as columns of equal length, or None if the upload is not a text
    file in canonical form (then ``read_table`` is the reader, and the judge of errors)."""
    if data.startswith(_SPREADSHEET_MAGIC):
        return None
    data = data.removeprefix(_BOM)
    newline = data.find(b"\n")
    try:
        first_line = (data if newline < 0 else data[:newline]).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not first_line.strip():  # a blank first line: read_table's job
        return None
    eol = "\r\n" if newline > 0 and data[newline - 1] == 0x0D else "\n"
    quoted = data.startswith(b'"')
    if not quoted and b'"' in data:
        return None
    delimiter = sniff_delimiter(first_line)
    # Arrow needs a line end to see the first row; csv.reader reads the same rows either way.
    expected = data if data.endswith(eol.encode()) else data + eol.encode()
    try:
        table = pacsv.read_csv(
            pa.py_buffer(expected),
            read_options=pacsv.ReadOptions(
                autogenerate_column_names=True, use_threads=False, block_size=len(expected) + 1
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, quote_char='"', double_quote=True, newlines_in_values=True
            ),
            convert_options=_CONVERT,
        )
    except (pa.ArrowInvalid, ValueError):
        return None
    if not 0 < table.num_columns <= _MAX_COLUMNS or table.num_rows == 0:
        return None
    columns = [column.combine_chunks() for column in table.columns]
    if any(column.type != pa.string() or column.null_count for column in columns):
        return None
    limit = csv.field_size_limit()
    if len(data) >= limit and any(
        pc.max(pc.binary_length(column)).as_py() >= limit for column in columns
    ):
        return None  # csv.reader refuses such a field: let it say so
    quotes = int(np.count_nonzero(np.frombuffer(expected, dtype=np.uint8) == 0x22))
    written = _written_back(columns, delimiter, eol, quoted=quoted, quotes=quotes)
    return columns if written.equals(pa.py_buffer(expected)) else None


def _written_back(
    columns: list[Column], delimiter: str, eol: str, *, quoted: bool, quotes: int
) -> pa.Buffer:
    """The file these columns make in one style: every field quoted, or none.

    ``quotes`` (how many the upload has) tells whether any field holds a quote to double.
    """
    if quoted:
        if quotes != 2 * len(columns) * len(columns[0]):
            columns = [pc.replace_substring(column, '"', '""') for column in columns]
        inner = pc.binary_join_element_wise(*columns, f'"{delimiter}"')
        lines = pc.binary_join_element_wise('"', inner, f'"{eol}', "")
    else:
        inner = pc.binary_join_element_wise(*columns, delimiter)
        lines = pc.binary_join_element_wise(inner, eol, "")
    return joined_bytes(lines)


def sniff_delimiter(content: str) -> str:
    """``;`` if the first non-empty line has one outside quotes and no ``,``; else ``,``."""
    start = 0
    while start < len(content):
        end = content.find("\n", start)
        end = len(content) if end < 0 else end
        line = content[start:end]
        start = end + 1
        if not line.strip():
            continue
        quoted = False
        semicolons = commas = 0
        for char in line:
            if char == '"':
                quoted = not quoted
            elif not quoted:
                semicolons += char == ";"
                commas += char == ","
        return ";" if semicolons and not commas else ","
    return ","


def _read_spreadsheet(data: bytes) -> list[list[str]]:
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        cells = workbook.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except (CalamineError, ValueError, IndexError) as exc:
        raise FileRejected(f"unreadable spreadsheet: {exc}") from None
    return [[cell_text(cell) for cell in row] for row in cells]


def cell_text(cell: object) -> str:
    """A cell as the text the user typed: ``13055550101.0`` is the number ``13055550101``."""
    if isinstance(cell, str):
        return cell
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float):
        return str(int(cell)) if cell.is_integer() else repr(cell)
    if isinstance(cell, datetime | date | time):
        return cell.isoformat()
    if isinstance(cell, timedelta):
        return str(cell)
    return "" if cell is None else str(cell)
