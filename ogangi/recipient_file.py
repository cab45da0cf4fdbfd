"""Writer of the SMS recipient list that sendSMSByFile uploads (spec §7.3, client rule).

Comma-separated, every field double-quoted with embedded quotes doubled, UTF-8 without BOM,
CRLF line ends, no header. Column order is configurable because the docs contradict
themselves (§13 A1): ``"sample"`` (the default) is mobile, from, carrier, encoding, timezone,
text, params...; ``"listed"`` is mobile, from, carrier, text, encoding, timezone, params....

Three entry points: ``write_recipient_file`` for ``SmsRow`` objects,
``write_recipient_file_columns`` for lists of strings with one sender for the whole file (it
converts them and calls the next one), and ``write_recipient_file_arrow`` for Arrow columns, which builds every line in Arrow kernels with
no Python object per row (a 10 000-row chunk from Arrow columns: ~2.7 ms; the bulk pipeline's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ogangi.errors import InvalidParameter

Order = Literal["sample", "listed"]
#: The number itself stays out of the message: errors end up in logs, numbers are personal data.
_MOBILE_RULE = "mobile must be digits only (international form, no '+', spaces or dashes)"


@dataclass(frozen=True, slots=True)
class SmsRow:
    """One recipient; ``params`` fill ``{0}``, ``{1}``, ... in ``text``."""

    mobile: str
    sender: str
    text: str
    params: tuple[str, ...] = ()
    carrier: str = ""
    encoding: str = "UTF-8"
    timezone: str = "UTC"


def write_recipient_file(rows: Iterable[SmsRow], *, order: Order = "sample") -> bytes:
    """The file for ``rows``, refusing any row the provider could not read back as one row."""
    listed = _is_listed(order)
    lines = []
    for number, row in enumerate(rows, start=1):
        fields: tuple[str, ...]
        if listed:
            fields = (row.mobile, row.sender, row.carrier, row.text, row.encoding, row.timezone)
        else:
            fields = (row.mobile, row.sender, row.carrier, row.encoding, row.timezone, row.text)
        fields += row.params
        line = '","'.join(map(_escape, fields))
        if _has_newline(line) or not (row.mobile.isascii() and row.mobile.isdigit()):
            _refuse_row(number, row)
        if not (row.encoding.strip() and row.timezone.strip()):
            _check_filled(row.encoding, row.timezone, prefix=f"row {number}: ")
        lines.append(f'"{line}"\r\n')
    return "".join(lines).encode("utf-8")


def write_recipient_file_columns(
    mobiles: Sequence[str],
    texts: str | Sequence[str],
    *,
    sender: str,
    params: Sequence[Sequence[str]] = (),
    carrier: str = "",
    encoding: str = "UTF-8",
    timezone: str = "UTC",
    order: Order = "sample",
) -> bytes:
    """The same file from columns: one text for all rows or one per row, ``params`` by column.

    Built by ``write_recipient_file_arrow`` (10 000 rows: ~3.4 ms with the conversion, against
    ~4.7 ms for the former string-joining version on the same machine).
    """
    if isinstance(texts, str):
        _check_single_line("text", texts)
        texts = [texts] * len(mobiles)
    return write_recipient_file_arrow(
        pa.array(mobiles, pa.large_string()),
        pa.array(texts, pa.large_string()),
        sender=sender,
        params=[pa.array(column, pa.large_string()) for column in params],
        carrier=carrier,
        encoding=encoding,
        timezone=timezone,
        order=order,
    )


def write_recipient_file_arrow(
    mobiles: pa.Array,
    texts: pa.Array,
    *,
    sender: str,
    params: Sequence[pa.Array] = (),
    carrier: str = "",
    encoding: str = "UTF-8",
    timezone: str = "UTC",
    order: Order = "sample",
) -> bytes:
    """``write_recipient_file_columns`` for Arrow string columns, byte for byte the same file.

    Each line is joined by Arrow kernels; with a CRLF on every line the result's character
    data, end to end, is the file.
    """
    listed = _is_listed(order)
    count = len(mobiles)
    for field, value in (("sender", sender), ("carrier", carrier)):
        _check_single_line(field, value)
    _check_filled(encoding, timezone)
    columns = [("texts", texts), *_named(params)]
    for name, column in columns:
        if len(column) != count:
            raise InvalidParameter(f"{name} has {len(column)} values for {count} mobiles")
    if not count:
        return b""
    mobiles = _large_text(mobiles)
    bad = pc.invert(pc.fill_null(pc.ascii_is_decimal(mobiles), False))
    if pc.any(bad).as_py():
        raise InvalidParameter(f"row {_first(bad)}: {_MOBILE_RULE}")
    escaped = []
    for name, column in columns:
        column = _large_text(column)
        if column.null_count:
            raise InvalidParameter(f"row {_first(column.is_null())}: {name} has no value")
        broken = pc.match_substring_regex(column, r"[\r\n]")
        if pc.any(broken).as_py():
            raise InvalidParameter(f"row {_first(broken)}: {name} contains a line break")
        escaped.append(pc.replace_substring(column, '"', '""'))
    text, tail = escaped[0], escaped[1:]
    fixed = [pa.scalar(_escape(v), pa.large_string()) for v in (sender, carrier)]
    zone = [pa.scalar(_escape(v), pa.large_string()) for v in (encoding, timezone)]
    fields = [mobiles, *fixed, *([text, *zone] if listed else [*zone, text]), *tail]
    quote = pa.scalar('"', pa.large_string())
    inner = pc.binary_join_element_wise(*fields, pa.scalar('","', pa.large_string()))
    lines = pc.binary_join_element_wise(
        quote, inner, pa.scalar('"\r\n', pa.large_string()), pa.scalar("", pa.large_string())
    )
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)
    start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return lines.buffers()[2][start:end].to_pybytes()


def _large_text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.cast(pa.large_string())


def _first(mask: pa.Array) -> int:
    """1-based position of the first true value."""
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0]) + 1


def _escape(value: str) -> str:
    return value.replace('"', '""') if '"' in value else value


def _is_listed(order: Order) -> bool:
    if order not in ("sample", "listed"):
        raise InvalidParameter(f"order must be 'sample' or 'listed', not {order!r}")
    return order == "listed"


def _named(params: Sequence[Sequence[str]]) -> list[tuple[str, Sequence[str]]]:
    return [(f"params[{index}]", column) for index, column in enumerate(params)]


def _refuse_row(number: int, row: SmsRow) -> None:
    if not (row.mobile.isascii() and row.mobile.isdigit()):
        raise InvalidParameter(f"row {number}: {_MOBILE_RULE}")
    for name in ("sender", "carrier", "text", "encoding", "timezone"):
        if _has_newline(getattr(row, name)):
            raise InvalidParameter(f"row {number}: {name} contains a line break")
    raise InvalidParameter(f"row {number}: a parameter contains a line break")


def _check_filled(encoding: str, timezone: str, *, prefix: str = "") -> None:
    """The provider tells column orders apart by these two values (§7.3): never blank."""
    for name, value in (("encoding", encoding), ("timezone", timezone)):
        if not value.strip():
            raise InvalidParameter(f"{prefix}{name} must not be empty")
        _check_single_line(name, value)


def _check_single_line(name: str, value: str) -> None:
    if _has_newline(value):
        raise InvalidParameter(f"{name} contains a line break")


def _has_newline(value: str) -> bool:
    return "\n" in value or "\r" in value
