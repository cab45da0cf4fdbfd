"""What each row of an SMS recipient list means (§7.3 steps 3-7): valid, or which BAD_* status.

The sandbox's hot path: a benchmark pushes hundreds of thousands of rows per second through
it. Two readings give the same answer:

- ``uniform_columns`` (``parse_uniform`` for a table of lists): the shape the pipeline's chunks
  have (all rows valid, one sender, carrier, encoding and time zone) is recognised on Arrow
  columns, with no Python object per row;
- ``parse_rows``: any other file, row by row, with every per-value decision cached.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

import pyarrow.compute as pc

from ogangi.sandbox.columns import Column, constant, decimal_range, strings
from ogangi.sandbox.tables import FileRejected, read_columns, read_table

SENT_TO_CARRIER = "SENT_TO_CARRIER"
BAD_TO = "BAD_TO"
BAD_FROM = "BAD_FROM"
BAD_CARRIER = "BAD_CARRIER/FROM"
BAD_ENCODING = "BAD_ENCODING"
BAD_TIMEZONE = "BAD_TIMEZONE"
NOT_SENT = "NOT_SENT"

STATUS_DESCRIPTIONS = {
    SENT_TO_CARRIER: "Sent to Carrier",
    BAD_TO: "Invalid destination number",
    BAD_FROM: "Invalid sender",
    BAD_CARRIER: "Unknown carrier",
    BAD_ENCODING: "Unknown encoding or column layout",
    BAD_TIMEZONE: "Unknown time zone",
    NOT_SENT: "Incomplete row: fewer than 6 fields",
}

#: §7.3 step 5 (compared upper-case; empty means the UTF-8 default).
CHARSETS = frozenset({"UTF-8", "UTF8", "ISO-8859-1", "US-ASCII", "UCS-2", "UTF-16", "GSM", ""})
DEFAULT_ENCODING = "UTF-8"

#: One row: (status or None when valid, to, from, carrier, text, encoding, timezone).
#: ``text`` is rendered; a valid row's blank encoding reads UTF-8.
Row = tuple[str | None, str, str, str, str, str, str]

_PLACEHOLDER = re.compile(r"\{(\d+)\}")
_DIGIT = re.compile(r"\d")
_ZONE_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)+")
_MAX_CACHED = 4096

K = TypeVar("K")
V = TypeVar("V")


class _Memo(dict[K, V]):
    """A bounded cache whose misses are computed: a hit costs one C-level dict lookup."""

    def __init__(self, compute: Callable[[K], V]) -> None:
        super().__init__()
        self._compute = compute

    def __missing__(self, key: K) -> V:
        value = self._compute(key)
        if len(self) < _MAX_CACHED:
            self[key] = value
        return value


@cache
def _known_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _zone(name: str) -> tuple[bool, zoneinfo.ZoneInfo | None]:
    looks = name in _known_zone_names() or bool(_ZONE_SHAPE.fullmatch(name))
    if not looks:
        return False, None
    try:
        return True, zoneinfo.ZoneInfo(name)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
        return True, None


#: name -> (looks like a time zone id, the zone if it resolves).
ZONES: _Memo[str, tuple[bool, zoneinfo.ZoneInfo | None]] = _Memo(_zone)
#: field value -> is it one of ``CHARSETS``.
IS_CHARSET: _Memo[str, bool] = _Memo(lambda value: value.upper() in CHARSETS)


def lookup_zone(name: str) -> tuple[bool, zoneinfo.ZoneInfo | None]:
    """(looks like a time zone id, the zone if it resolves)."""
    return ZONES[name]


def _format_string(key: tuple[str, int]) -> str | None:
    """``template`` as a ``str.format`` string for ``count`` params; None if nothing to fill."""
    template, count = key
    pieces: list[str] = []
    last = 0
    used = False
    for match in _PLACEHOLDER.finditer(template):
        pieces.append(literal(template[last : match.start()]))
        index = int(match.group(1))
        if index < count:
            pieces.append(f"{{{index}}}")
            used = True
        else:
            pieces.append(literal(match.group(0)))
        last = match.end()
    pieces.append(literal(template[last:]))
    return "".join(pieces) if used else None


def literal(text: str) -> str:
    """``text`` protected from ``str.format``."""
    return text.replace("{", "{{").replace("}", "}}")


_FORMATS: _Memo[tuple[str, int], str | None] = _Memo(_format_string)


def render(template: str, params: Sequence[str]) -> str:
    """§7.3 step 7: ``{k}`` becomes optional column k; an index without a column stays literal."""
    if not params or "{" not in template:
        return template
    fmt = _FORMATS[(template, len(params))]
    return template if fmt is None else fmt.format(*params)


@dataclass(frozen=True)
class UniformRows:
    """All rows valid and sharing sender, carrier, encoding and time zone, kept as columns."""

    mobiles: Column
    texts: Column
    sender: str
    carrier: str
    encoding: str
    timezone: str

    def __len__(self) -> int:
        return len(self.mobiles)


def parse_recipient_file(
    data: bytes, *, carriers: Collection[str] | None, max_rows: int
) -> UniformRows | list[Row]:
    """The non-blank data rows in file order; raises ``FileRejected`` if none is usable."""
    columns = read_columns(data)
    if columns is not None:
        uniform = uniform_columns(columns, carriers=carriers, max_rows=max_rows)
        if uniform is not None:
            return uniform
    table = read_table(data)
    if columns is None:  # e.g. a spreadsheet: its table may still be uniform
        uniform = parse_uniform(table, carriers=carriers, max_rows=max_rows)
        if uniform is not None:
            return uniform
    rows = parse_rows(table, carriers=carriers, max_rows=max_rows)
    if not any(row[0] is None for row in rows):
        raise FileRejected(
            "the file has no usable recipient row" if rows else "the file has no rows"
        )
    return rows


def parse_uniform(
    table: list[list[str]], *, carriers: Collection[str] | None, max_rows: int
) -> UniformRows | None:
    """``parse_rows``'s answer for a uniform file, or None if the file is not one."""
    if not table or not all(table):  # a blank line is a general-path file
        return None
    if _is_header(table[0][0]):
        table = table[1:]
    widths = set(map(len, table))
    if len(widths) != 1 or widths.pop() < 6:
        return None
    columns = [strings(column) for column in zip(*table, strict=True)]
    return _uniform(columns, carriers=carriers, max_rows=max_rows)


def uniform_columns(
    columns: Sequence[Column], *, carriers: Collection[str] | None, max_rows: int
) -> UniformRows | None:
    """``parse_uniform`` on the columns of a file without blank rows (header row included)."""
    if not columns or len(columns[0]) == 0:
        return None
    if _is_header(columns[0][0].as_py()):
        columns = [column.slice(1) for column in columns]
    if len(columns) < 6 or len(columns[0]) == 0:
        return None
    return _uniform(columns, carriers=carriers, max_rows=max_rows)


def _is_header(first_field: str) -> bool:
    """§7.3 step 3: the first line is a header when its first field has no digit."""
    return not _DIGIT.search(first_field.strip())


def _uniform(
    columns: Sequence[Column], *, carriers: Collection[str] | None, max_rows: int
) -> UniformRows | None:
    """The data rows' columns (at least 6, at least one row) as ``UniformRows``, if they are."""
    mobiles = columns[0]
    if len(mobiles) > max_rows:
        raise FileRejected(f"the file has more than {max_rows} rows")
    if not decimal_range(mobiles, 8, 15):
        return None
    fixed = [_single(columns[i]) for i in (1, 2, 3, 4)]
    sender, carrier, field4, field5 = fixed
    if sender is None or carrier is None or field5 is None:
        return None
    if field4 is not None and IS_CHARSET[field4] and ZONES[field5][0]:
        encoding, tz, text_column = field4, field5, columns[5]
    else:
        field6 = _single(columns[5])
        # Rows the row-by-row reading would take in sample order must not hide in here.
        if field6 is None or not IS_CHARSET[field5] or ZONES[field5][0] or not ZONES[field6][0]:
            return None
        encoding, tz, text_column = field5, field6, columns[3]
    if not (sender.isalnum() and sender.isascii()) or ZONES[tz][1] is None:
        return None
    if carriers is not None and carrier not in carriers:
        return None
    return UniformRows(
        mobiles=mobiles,
        texts=_render_column(text_column, columns[6:]),
        sender=sender,
        carrier=carrier,
        encoding=encoding or DEFAULT_ENCODING,
        timezone=tz,
    )


def _single(column: Column) -> str | None:
    """The column's one (stripped) value, or None when rows differ."""
    value = constant(column)
    return None if value is None else value.strip()


def _render_column(templates: Column, params: Sequence[Column]) -> Column:
    """§7.3 step 7 over whole columns: one template is cut into literal pieces and params."""
    if not params:
        return templates
    template = constant(templates)
    if template is None:
        columns = [column.to_pylist() for column in params]
        return strings(list(map(render, templates.to_pylist(), zip(*columns, strict=True))))
    if "{" not in template:
        return templates
    pieces: list[str | Column] = []
    last = 0
    for match in _PLACEHOLDER.finditer(template):
        index = int(match.group(1))
        if index < len(params):
            pieces += [template[last : match.start()], params[index]]
            last = match.end()
    if not pieces:
        return templates
    pieces.append(template[last:])
    return pc.binary_join_element_wise(*pieces, "")


def parse_rows(
    table: list[list[str]], *, carriers: Collection[str] | None, max_rows: int
) -> list[Row]:
    """§7.3 steps 3-7 row by row; raises ``FileRejected`` above ``max_rows`` data rows."""
    carrier_set = None if carriers is None else frozenset(carriers)
    zones = ZONES
    is_charset = IS_CHARSET
    out: list[Row] = []
    append = out.append
    header_possible = True
    for row in table:
        if not row:
            continue
        mobile = row[0].strip()
        if not mobile and not any(f.strip() for f in row):
            continue
        if header_possible:
            header_possible = False
            if not _DIGIT.search(mobile):
                continue
        if len(out) >= max_rows:
            raise FileRejected(f"the file has more than {max_rows} rows")
        mobile_ok = 8 <= len(mobile) <= 15 and mobile.isdigit() and mobile.isascii()
        width = len(row)
        if width < 6:
            padded = [*row, "", "", "", "", ""]
            status = NOT_SENT if mobile_ok else BAD_TO
            append((status, mobile, padded[1], padded[2], padded[5], padded[3], padded[4]))
            continue
        sender = row[1].strip()
        carrier = row[2].strip()
        field4 = row[3].strip()
        field5 = row[4].strip()
        # Sample order (encoding, timezone, text) first: it is what the client writes (§7.3).
        zone = zones[field5]
        if is_charset[field4] and zone[0]:
            encoding, tz, text = field4, field5, row[5]
        else:
            field6 = row[5].strip()
            zone = zones[field6]
            if is_charset[field5] and zone[0]:
                text, encoding, tz = row[3], field5, field6
            else:
                encoding, tz, text = field4, field5, row[5]
                zone = (False, None)
        if width > 6 and "{" in text:
            text = render(text, row[6:])
        if not mobile_ok:
            status = BAD_TO
        elif not (sender.isalnum() and sender.isascii()):
            status = BAD_FROM
        elif carrier_set is not None and carrier not in carrier_set:
            status = BAD_CARRIER
        elif not zone[0]:
            status = BAD_ENCODING
        elif zone[1] is None:
            status = BAD_TIMEZONE
        else:
            append((None, mobile, sender, carrier, text, encoding or DEFAULT_ENCODING, tz))
            continue
        append((status, mobile, sender, carrier, text, encoding, tz))
    return out
