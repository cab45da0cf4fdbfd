"""An uploaded recipient file as a table of text cells (§7.3 steps 1-2), before any meaning."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta

from python_calamine import CalamineError, CalamineWorkbook

#: Zip (xlsx, ods) and OLE2 (xls) containers: spreadsheets, whatever the upload's file name.
_SPREADSHEET_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")


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
