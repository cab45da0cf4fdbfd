"""Message texts: ``{k}`` placeholders, GSM-7 vs UCS-2, and how many SMS parts a text costs.

Placeholders are the vendor's: ``{0}`` is the first parameter column, ``{1}`` the next, and so
on; anything else in braces is literal text. A template is checked against the file's columns
before anything is sent.

Encoding (3GPP TS 23.038): a text whose every character is in the GSM 03.38 basic table or its
extension table goes as GSM-7, where extension characters (``^ { } \\ [ ~ ] | €`` and form feed)
take two septets; any other character makes the whole text UCS-2, counted in UTF-16 code units
(an emoji is two). One part holds 160 septets / 70 units; a longer text is split into parts of
153 / 67 (the rest carries the concatenation header), and a two-septet character or a surrogate
pair is never split across parts.

Speed: texts of one template differ only in their parameters, so lengths are computed per
parameter column (per distinct value) and added to the template's own, not per rendered text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "GSM7",
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "UCS2",
    "Template",
    "TemplateError",
    "TextMeasure",
    "encoding_of",
    "segments_of",
]

GSM7 = "GSM-7"
UCS2 = "UCS-2"
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "\f^{}\\[~]|€"
#: (single message, per part of a concatenated message)
GSM7_LIMITS = (160, 153)
UCS2_LIMITS = (70, 67)

_BASIC = frozenset(GSM7_BASIC)
_EXTENSION = frozenset(GSM7_EXTENSION)
_PLACEHOLDER_RE = re.compile(r"\{(\d+)\}")


def _re2_class(chars: str) -> str:
    escaped = "".join(
        f"\\x{{{ord(c):x}}}" if not c.isalnum() or not c.isascii() else c for c in chars)
    return escaped


_NOT_GSM_RE = f"[^{_re2_class(GSM7_BASIC + GSM7_EXTENSION)}]"
_EXTENSION_RE = f"[{_re2_class(GSM7_EXTENSION)}]"
_ASTRAL_RE = r"[\x{10000}-\x{10FFFF}]"
#: Texts are Arrow large_string, what pandas' Arrow-backed strings hold.
_STR = pa.large_string()


class TemplateError(ValueError):
    """The message text cannot be used with this file; the text says why."""


# --- one text ---------------------------------------------------------------------------------


def encoding_of(text: str) -> str:
    """GSM-7 when every character is in the GSM 03.38 tables, else UCS-2."""
    return GSM7 if all(c in _BASIC or c in _EXTENSION for c in text) else UCS2


def segments_of(text: str) -> int:
    """SMS parts for one text, exactly (a double-width character never straddles two parts)."""
    if encoding_of(text) == GSM7:
        costs = [2 if c in _EXTENSION else 1 for c in text]
        single, part = GSM7_LIMITS
    else:
        costs = [2 if ord(c) > 0xFFFF else 1 for c in text]
        single, part = UCS2_LIMITS
    if sum(costs) <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part:
            parts, used = parts + 1, 0
        used += cost
    return parts


# --- templates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextMeasure:
    """Per row: encoding name and SMS parts (numpy arrays, same order as the rows)."""

    gsm: np.ndarray  # bool
    segments: np.ndarray  # int32

    def encodings(self) -> np.ndarray:
        return np.where(self.gsm, GSM7, UCS2)


@dataclass(frozen=True)
class Template:
    """A message text split into literal pieces and parameter indices."""

    text: str
    pieces: tuple[str | int, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        if not text or not text.strip():
            raise TemplateError("the message text is empty")
        pieces: list[str | int] = []
        last = 0
        for match in _PLACEHOLDER_RE.finditer(text):
            if match.start() > last:
                pieces.append(text[last : match.start()])
            pieces.append(int(match.group(1)))
            last = match.end()
        if last < len(text):
            pieces.append(text[last:])
        return cls(text=text, pieces=tuple(pieces))

    @property
    def used(self) -> tuple[int, ...]:
        """Parameter indices the text refers to, ascending."""
        return tuple(sorted({p for p in self.pieces if isinstance(p, int)}))

    @property
    def literal(self) -> str:
        return "".join(p for p in self.pieces if isinstance(p, str))

    def validate(self, columns: Sequence[str]) -> None:
        """Every ``{k}`` must name a parameter column; ``columns`` are their names, in order."""
        missing = [k for k in self.used if k >= len(columns)]
        if not missing:
            return
        uses = ", ".join(f"{{{k}}}" for k in missing)
        if not columns:
            raise TemplateError(
                f"the text uses {uses} but the file has no parameter columns (only the phone "
                "column)")
        available = ", ".join(f"{{{i}}} = {name}" for i, name in enumerate(columns))
        plural = "column" if len(columns) == 1 else "columns"
        raise TemplateError(
            f"the text uses {uses} but the file has {len(columns)} parameter {plural}: "
            f"{available}")

    def render(self, params: Sequence[pa.Array], length: int | None = None) -> pa.Array:
        """One text per row; a missing value renders as nothing.

        ``length`` (rows) is only needed when there are no parameter columns.
        """
        length = len(params[0]) if params else (length or 0)
        if not self.used:
            return pa.repeat(pa.scalar(self.text, _STR), length)
        parts: list[pa.Array | pa.ChunkedArray | pa.Scalar] = []
        for piece in self.pieces:
            if isinstance(piece, int):
                parts.append(pc.fill_null(_large(params[piece]), pa.scalar("", _STR)))
            else:
                parts.append(pa.scalar(piece, _STR))
        if len(parts) == 1:
            return parts[0]  # type: ignore[return-value]
        return pc.binary_join_element_wise(*parts, pa.scalar("", _STR))

    def measure(
        self, params: Sequence[pa.Array], rendered: pa.Array | None = None,
        length: int | None = None,
    ) -> TextMeasure:
        """Encoding and parts per row, from the template's and each column's own lengths.

        ``rendered`` (the output of ``render``) is only read for the few rows whose part count
        depends on where a double-width character falls.
        """
        if params:
            length = len(params[0])
        elif rendered is not None:
            length = len(rendered)
        length = length or 0
        literal = self.literal
        gsm = np.full(length, encoding_of(literal) == GSM7)
        # int32: a cell holds at most a few thousand characters (Limits.max_cell_chars)
        septets = np.full(length, sum(2 if c in _EXTENSION else 1 for c in literal), np.int32)
        units = np.full(length, sum(2 if ord(c) > 0xFFFF else 1 for c in literal), np.int32)
        wide = np.full(length, any(c in _EXTENSION or ord(c) > 0xFFFF for c in literal))
        for k in self.used:
            times = sum(1 for p in self.pieces if p == k)
            col = _column_lengths(params[k])
            gsm &= col.gsm
            septets += times * col.septets
            units += times * col.units
            wide |= col.wide
        size = np.where(gsm, septets, units)
        segments = np.ones(length, dtype=np.int32)
        # Most texts fit one part: only the long ones need the division.
        long_rows = np.flatnonzero(size > np.where(gsm, GSM7_LIMITS[0], UCS2_LIMITS[0]))
        if len(long_rows):
            part = np.where(gsm[long_rows], GSM7_LIMITS[1], UCS2_LIMITS[1])
            n = size[long_rows]
            segments[long_rows] = -(-n // part)
            # ceil(n / part) is exact unless a double-width character can fall on a boundary.
            unsure = long_rows[wide[long_rows] & (-(-n // part) != -(-n // (part - 1)))]
            if len(unsure):
                texts = rendered if rendered is not None else self.render(params, length)
                for i in unsure:
                    segments[i] = segments_of(texts[int(i)].as_py())  # few rows, see above
        return TextMeasure(gsm=gsm, segments=segments)


@dataclass(frozen=True)
class _Lengths:
    gsm: np.ndarray
    septets: np.ndarray
    units: np.ndarray
    wide: np.ndarray


def _column_lengths(values: pa.Array | pa.ChunkedArray) -> _Lengths:
    """Per row of one parameter column: GSM-encodable?, septets, UTF-16 units, double-width?

    Computed per distinct value (names repeat a lot) and spread back by index.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = pc.fill_null(_large(values), pa.scalar("", _STR))
    plain = _plain_ascii(values)
    if plain is not None:
        return plain
    encoded = pc.dictionary_encode(values)
    distinct, index = encoded.dictionary, encoded.indices.to_numpy(zero_copy_only=False)
    chars = pc.utf8_length(distinct).to_numpy(zero_copy_only=False).astype(np.int32)
    bad = pc.match_substring_regex(distinct, _NOT_GSM_RE).to_numpy(zero_copy_only=False)
    ext = pc.count_substring_regex(distinct, _EXTENSION_RE).to_numpy(zero_copy_only=False)
    astral = pc.count_substring_regex(distinct, _ASTRAL_RE).to_numpy(zero_copy_only=False)
    gsm = ~bad.astype(bool)
    return _Lengths(
        gsm=gsm[index],
        septets=(chars + ext).astype(np.int32)[index],
        units=(chars + astral).astype(np.int32)[index],
        wide=((ext > 0) | (astral > 0))[index],
    )


# ASCII bytes that are GSM-7 basic characters (one septet each); the rest of ASCII is either
# an extension character or not in GSM-7 at all (` and most control characters).
_ASCII_BASIC = np.zeros(256, dtype=bool)
for _c in GSM7_BASIC:
    if ord(_c) < 128:
        _ASCII_BASIC[ord(_c)] = True


def _plain_ascii(values: pa.Array) -> _Lengths | None:
    """The common case in one pass over the bytes: every value ASCII GSM-7 basic text.

    Then a value's length in septets and in UTF-16 units is its byte length.
    """
    data = values.buffers()[2]
    if data is None:
        return None
    raw = np.frombuffer(data, dtype=np.uint8)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[
        values.offset : values.offset + len(values) + 1]
    used = raw[offsets[0] : offsets[-1]]
    if len(used) and not _ASCII_BASIC[used].all():
        return None
    lengths = np.diff(offsets).astype(np.int32)
    ones = np.ones(len(values), dtype=bool)
    return _Lengths(gsm=ones, septets=lengths, units=lengths, wide=~ones)


def _large(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    return values if values.type == _STR else values.cast(_STR)
