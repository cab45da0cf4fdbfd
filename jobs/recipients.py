"""A recipient file + a message text -> one line per data row, each with a final verdict.

    prepare_recipients(path, text, region=...)  ->  PreparedRecipients(frame, summary, source)

Stages, each a plain function on data:
    read_table             any file -> text cells (jobs.readers)
    locate_columns         header or not, which column holds the phone, which are parameters
    jobs.phones.normalize  raw phone text -> E.164 digits, or a reason
    assign_states          READY / REJECTED / SUPPRESSED / DUPLICATE (first row wins)
    Template.render/measure  texts, GSM-7 or UCS-2, SMS parts

Rules a user can rely on:
- Every data row of the file appears exactly once, in file order. ``row`` counts data rows
  from 1 as a spreadsheet user does (header excluded); empty rows before the header and after
  the last row are not rows of the list, an empty row between two rows is one (``EMPTY``).
- The phone column is the first column (the vendor's rule) unless a header names one
  (``phone``, ``mobile``, ``celular``, ``teléfono``, ...; case and accents ignored) or the
  caller says which. Every other column is a parameter: ``{0}``, ``{1}``, ... in file order.
- Parameter values are trimmed of surrounding blanks. ``params`` holds them per row as
  ``{"0": "Ana", "1": "42"}`` (the keys are the placeholder numbers).
- One SMS per number: the first sendable row of a number wins, later rows are ``DUPLICATE``
  ("duplicate of row 3") even when their parameters differ. A number on the suppression list
  is ``SUPPRESSED`` on every row that has it.
- ``encoding`` and ``segments`` describe what would be billed, so they are set on READY rows
  only; ``text`` is rendered for every row (what that row's parameters give).
"""

from __future__ import annotations

import itertools
import os
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from jobs import phones
from jobs.limits import DEFAULT_LIMITS, Limits
from jobs.readers import RecipientFileError, Table, arrow_strings, column_letter, read_table
from jobs.text import GSM7, UCS2, Template, TemplateError, TextMeasure

__all__ = [
    "COLUMNS",
    "DUPLICATE",
    "EMPTY_TEXT",
    "READY",
    "REJECTED",
    "SUPPRESSED",
    "Columns",
    "PreparedRecipients",
    "RecipientList",
    "SourceInfo",
    "Summary",
    "Verdicts",
    "assign_states",
    "build_frame",
    "describe",
    "has_sendable_row",
    "judge",
    "locate_columns",
    "open_list",
    "prepare_recipients",
    "read_suppression",
]

READY = "READY"
REJECTED = "REJECTED"
DUPLICATE = "DUPLICATE"
SUPPRESSED = "SUPPRESSED"
STATES = (READY, REJECTED, DUPLICATE, SUPPRESSED)
#: Reason of a row whose rendered text is blank (a text of only ``{0}``, and no value).
EMPTY_TEXT = "EMPTY_TEXT"
#: Columns of ``PreparedRecipients.frame``, in order.
COLUMNS = ("row", "input", "msisdn", "state", "reason", "text", "params", "encoding", "segments")

# Header words that name the phone column; weak ones only count when no strong one is present.
_STRONG = frozenset({
    "phone", "phones", "telephone", "tel", "tlf", "telf", "telefono", "telefone", "fono",
    "mobile", "mobil", "movil", "cell", "cellphone", "cellular", "celular", "cel", "msisdn",
    "whatsapp", "sms", "gsm", "handy", "portable", "telefonomovil", "phonenumber",
    "mobilenumber", "cellnumber", "numerocelular", "numerotelefono",
})
_WEAK = frozenset({"number", "numero", "num", "nro", "no", "contact", "contacto", "to", "destino"})
_WORD_RE = re.compile(r"[a-z0-9]+")
_DIGIT_RE = re.compile(r"\d")


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """What a person wants to know before sending: counts by verdict, encodings, parts."""

    rows: int
    ready: int
    rejected: int
    rejected_by_reason: Mapping[str, int]
    duplicates: int
    suppressed: int
    #: READY rows per encoding (GSM-7, UCS-2).
    encodings: Mapping[str, int]
    #: SMS parts over READY rows: what the send would cost.
    segments: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "ready": self.ready, "rejected": self.rejected,
            "rejected_by_reason": dict(self.rejected_by_reason), "duplicates": self.duplicates,
            "suppressed": self.suppressed, "encodings": dict(self.encodings),
            "segments": self.segments,
        }


@dataclass(frozen=True)
class SourceInfo:
    """How the file was understood, so the summary can say it."""

    path: Path
    format: str
    sheet: str | None
    encoding: str | None
    delimiter: str | None
    header: bool
    #: The phone column: its header (or letter when there is no header).
    phone_column: str
    #: Parameter columns in placeholder order: ``parameters[0]`` is ``{0}``.
    parameters: tuple[str, ...]
    #: Row number in the file (spreadsheet row) of data row 1; data row r is file row
    #: ``r + first_file_row - 1``.
    first_file_row: int
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "format": self.format, "sheet": self.sheet,
            "encoding": self.encoding, "delimiter": self.delimiter, "header": self.header,
            "phone_column": self.phone_column, "parameters": list(self.parameters),
            "first_file_row": self.first_file_row, "notes": list(self.notes),
        }


@dataclass(frozen=True)
class PreparedRecipients:
    #: One line per data row, columns ``COLUMNS``; Arrow-backed.
    frame: pd.DataFrame
    summary: Summary
    source: SourceInfo
    template: Template

    def ready(self) -> pd.DataFrame:
        """The rows to send, in file order."""
        return self.frame[self.frame["state"] == READY]

    def check_sendable(self) -> None:
        """Raise when not one row can be sent: a send of such a file is a mistake."""
        if self.summary.ready:
            return
        s = self.summary
        if not s.rows:
            raise RecipientFileError(self.source.path, "has no data rows")
        parts = [f"{n} {reason}" for reason, n in s.rejected_by_reason.items()]
        if s.duplicates:
            parts.append(f"{s.duplicates} DUPLICATE")
        if s.suppressed:
            parts.append(f"{s.suppressed} SUPPRESSED")
        raise RecipientFileError(
            self.source.path, f"no row can be sent: {', '.join(parts)} of {s.rows} rows")


# --- columns ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Columns:
    """Where things are in a table: header or not, the phone column, the parameter columns."""

    header: bool
    phone: str  # table column (letter)
    parameters: tuple[str, ...]  # table columns (letters), placeholder order
    names: Mapping[str, str]  # letter -> display name (header text, or the letter)


def locate_columns(
    frame: pd.DataFrame, *, phone_column: str | int | None = None, header: bool | None = None,
    path: str | Path = "file",
) -> Columns:
    """Decide header, phone column and parameters (rules in the module docstring).

    ``phone_column``: a 1-based column number (1 = column A), a header name, or a column
    letter. ``header``: None detects it; a first row is a header when a cell names a phone
    column, or when its phone cell holds text without a single digit.
    """
    letters = list(frame.columns)
    if not letters:
        raise RecipientFileError(path, "has no columns")
    first = {c: frame[c].iloc[0] if len(frame) else None for c in letters}
    first = {c: (None if v is None or v is pd.NA else str(v).strip() or None)
             for c, v in first.items()}

    by_name: str | None = None
    if isinstance(phone_column, str) and not phone_column.strip().isdigit():
        by_name = _match_name(phone_column, first)
        if by_name is not None and header is None:
            header = True
    if header is None:
        candidate = _choose_phone(letters, first, phone_column, by_name, path,
                                  assume_header=True)
        header = _looks_like_header(first, frame[candidate])
    phone = _choose_phone(letters, first, phone_column, by_name if header else None, path,
                          assume_header=header)
    names = {c: (first[c] or c) if header else c for c in letters}
    return Columns(header=header, phone=phone,
                   parameters=tuple(c for c in letters if c != phone), names=names)


def _choose_phone(
    letters: list[str], first: Mapping[str, str | None], phone_column: str | int | None,
    by_name: str | None, path: str | Path, *, assume_header: bool,
) -> str:
    if phone_column is not None:
        if by_name is not None:
            return by_name
        letter = _as_letter(phone_column)
        if letter is None:
            names = ", ".join(repr(v) for v in first.values() if v) or "none"
            raise RecipientFileError(
                path, f"no column named {phone_column!r} (headers: {names})")
        if letter not in letters:
            raise RecipientFileError(
                path, f"phone column {letter} is empty; the data is in columns "
                f"{letters[0]} to {letters[-1]}")
        return letter
    if assume_header:
        for words in (_STRONG, _WEAK):
            for letter in letters:
                if first[letter] and _header_words(first[letter]) & words:  # type: ignore[arg-type]
                    return letter
    return letters[0]


def _as_letter(spec: str | int) -> str | None:
    if isinstance(spec, int) or spec.strip().isdigit():
        number = int(spec)
        return column_letter(number - 1) if number >= 1 else None
    text = spec.strip().upper()
    return text if re.fullmatch(r"[A-Z]{1,3}", text) else None


def _match_name(wanted: str, first: Mapping[str, str | None]) -> str | None:
    key = _fold(wanted)
    for letter, value in first.items():
        if value is not None and _fold(value) == key:
            return letter
    return None


def _looks_like_header(first: Mapping[str, str | None], phone: pd.Series) -> bool:
    """A phone-column word in the first row, or a first phone cell without a digit above
    rows that have digits (a list of names in column A is not a header plus data)."""
    if any(v and _header_words(v) & _STRONG for v in first.values()):
        return True
    cell = phone.iloc[0] if len(phone) else None
    if cell is None or cell is pd.NA or not str(cell).strip() or _DIGIT_RE.search(str(cell)):
        return False
    below = phone.iloc[1:51].dropna().astype(str)
    return bool(below.str.contains(r"\d", regex=True).any())


def _fold(text: str) -> str:
    """Case, accents and punctuation out: 'Teléfono Móvil' -> 'telefono movil'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_WORD_RE.findall(plain))


def _header_words(text: str) -> set[str]:
    folded = _fold(text)
    return set(folded.split()) | {folded.replace(" ", "")}


# --- states -----------------------------------------------------------------------------------


def assign_states(
    rows: np.ndarray, msisdn: pa.Array, reason: pa.Array, *,
    suppressed: Collection[str] = (), empty_text: np.ndarray | None = None,
) -> tuple[np.ndarray, pa.Array]:
    """Verdict per row: REJECTED (phone reason, or EMPTY_TEXT), SUPPRESSED, DUPLICATE, READY.

    ``rows`` are the data row numbers; a DUPLICATE's reason names the row that is sent.
    Returns (state codes: indexes into ``STATES``, as int8; reasons as Arrow strings).
    """
    n = len(rows)
    states = np.zeros(n, dtype=np.int8)  # READY
    reasons = reason
    bad_phone = reason.is_valid().to_numpy(zero_copy_only=False)
    states[bad_phone] = _CODE[REJECTED]
    if empty_text is not None:
        no_text = empty_text & ~bad_phone
        if no_text.any():
            states[no_text] = _CODE[REJECTED]
            reasons = pc.if_else(pa.array(no_text), pa.scalar(EMPTY_TEXT, reasons.type), reasons)
    candidates = states == _CODE[READY]
    if suppressed:
        listed = pc.is_in(msisdn, value_set=_value_set(suppressed, msisdn.type))
        hit = pc.fill_null(listed, False).to_numpy(zero_copy_only=False) & candidates
        states[hit] = _CODE[SUPPRESSED]
        candidates &= ~hit
    where = np.flatnonzero(candidates)
    if len(where):
        repeat, first = _repeats(_keys(msisdn, where))
        if len(repeat):
            dup_rows = where[repeat]
            states[dup_rows] = _CODE[DUPLICATE]
            original = pa.array(rows[where[first]]).cast(reasons.type)
            texts = pc.binary_join_element_wise(
                pa.scalar("duplicate of row ", reasons.type), original,
                pa.scalar("", reasons.type))
            mask = np.zeros(n, dtype=bool)
            mask[dup_rows] = True
            reasons = pc.replace_with_mask(reasons, pa.array(mask), texts)
    return states, reasons


_CODE = {state: np.int8(i) for i, state in enumerate(STATES)}
#: Phone normalization runs in this many slices at once for lists of _PARALLEL_FROM rows or more.
_PARALLEL = max(2, min(4, os.cpu_count() or 2))
_PARALLEL_FROM = 50_000
_SLICE_ROWS = 100_000


def _keys(msisdn: pa.Array, where: np.ndarray) -> np.ndarray:
    """msisdn[where] as integers equal exactly when the numbers are: the numbers themselves
    (E.164 has at most 15 digits), or codes of the strings when some are not digits."""
    if not pa.types.is_integer(msisdn.type):
        try:
            msisdn = pc.cast(msisdn, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            picked = msisdn.take(pa.array(where))
            return pc.dictionary_encode(picked).indices.to_numpy(zero_copy_only=False)
    return pc.fill_null(msisdn, 0).to_numpy(zero_copy_only=False)[where]


def _repeats(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions of keys seen before, in order; the position of each one's first sighting).

    By a stable sort rather than a hash table: a hash of 1M distinct numbers costs ~90 MB of
    temporaries, the sort ~35 MB (positions as int32), at the same speed.
    """
    m = len(keys)
    index = np.int32 if m < 2**31 else np.int64
    order = np.argsort(keys, kind="stable").astype(index, copy=False)
    ordered = keys[order]
    del keys
    repeat = np.empty(m, dtype=bool)
    repeat[0] = False
    np.equal(ordered[1:], ordered[:-1], out=repeat[1:])
    del ordered
    if not repeat.any():
        return np.empty(0, dtype=index), np.empty(0, dtype=index)
    # Each element's group starts at the last non-repeat at or before it; a stable sort puts
    # the earliest position first in every group.
    start = np.where(repeat, 0, np.arange(m, dtype=index))
    np.maximum.accumulate(start, out=start)
    at = order[repeat]
    first = order[start[repeat]]
    sequence = np.argsort(at, kind="stable")
    return at[sequence], first[sequence]


def _value_set(numbers: Collection[str], kind: pa.DataType) -> pa.Array:
    """Suppressed numbers typed as the msisdn column (digits as int64 when it is)."""
    if pa.types.is_integer(kind):
        return pa.array([int(n) for n in numbers if n.isdigit() and len(n) <= 18], kind)
    return pa.array(list(numbers), kind)


def _compact(msisdn: pa.Array) -> pa.Array:
    """E.164 digits as int64 (8 bytes a row instead of ~19 for the text), or the text as it is
    when some value is not plain digits."""
    try:
        return pc.cast(msisdn, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return msisdn


def _msisdn_text(msisdn: pa.Array) -> pa.Array:
    return msisdn if not pa.types.is_integer(msisdn.type) else pc.cast(msisdn, pa.large_string())


# --- suppression ------------------------------------------------------------------------------


def read_suppression(
    path: str | Path, *, region: str, limits: Limits = DEFAULT_LIMITS
) -> frozenset[str]:
    """A file of numbers not to send to (opt-outs), normalized as recipients are.

    Same formats and column rules as a recipient list; invalid lines are ignored (they cannot
    match a valid recipient anyway).
    """
    table = read_table(path, limits=limits)
    if table.frame.empty:
        return frozenset()
    columns = locate_columns(table.frame, path=path)
    data = table.frame.iloc[1:] if columns.header else table.frame
    normalized = phones.normalize(data[columns.phone].reset_index(drop=True), region)
    return frozenset(normalized["msisdn"].dropna().astype(str))


def _suppression_set(values: Iterable[str]) -> frozenset[str]:
    """Caller-given numbers are already E.164 (a Redis set of msisdns): only '+' is dropped."""
    return frozenset(str(v).strip().lstrip("+") for v in values if str(v).strip())


# --- the stage --------------------------------------------------------------------------------


def prepare_recipients(
    path: str | Path,
    text: str,
    *,
    region: str,
    phone_column: str | int | None = None,
    header: bool | None = None,
    sheet: str | int | None = None,
    suppression: Iterable[str] = (),
    suppression_file: str | Path | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> PreparedRecipients:
    """Read, normalize, deduplicate, suppress, render and measure one recipient file.

    Raises ``RecipientFileError`` (one type, a message for a person) when the file cannot be
    read, has no data rows, or the text uses a placeholder the file has no column for. A file
    whose rows are all rejected is *not* an error here (a dry run still reports it); call
    ``check_sendable()`` before sending.
    """
    listing = open_list(path, text, region=region, phone_column=phone_column, header=header,
                        sheet=sheet, limits=limits)
    blocked = _suppression_set(suppression)
    if suppression_file is not None:
        blocked |= read_suppression(suppression_file, region=region, limits=limits)
    frame = build_frame(listing.data, listing.columns, listing.template, region=region,
                        suppressed=blocked)
    return PreparedRecipients(frame=frame, summary=summarize(frame), source=listing.source,
                              template=listing.template)


@dataclass(frozen=True)
class RecipientList:
    """A recipient file read and understood, before any row is judged."""

    #: The data rows (header excluded), text cells; index = file row.
    data: pd.DataFrame
    columns: Columns
    template: Template
    source: SourceInfo
    region: str


def open_list(
    path: str | Path,
    text: str,
    *,
    region: str,
    phone_column: str | int | None = None,
    header: bool | None = None,
    sheet: str | int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> RecipientList:
    """Read the file, find its columns, and check the text against them (the errors a user
    hears before any row is judged)."""
    path = Path(path)
    if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise RecipientFileError(
            path, f"unknown region {region!r}: use a two-letter country code such as US")
    try:
        template = Template.parse(text)
    except TemplateError as exc:
        raise RecipientFileError(path, str(exc)) from exc
    table = read_table(path, limits=limits, sheet=sheet)
    if table.frame.empty:
        raise RecipientFileError(path, "has no rows: the file is empty")
    columns = locate_columns(table.frame, phone_column=phone_column, header=header, path=path)
    data = table.frame.iloc[1:] if columns.header else table.frame
    if data.empty:
        raise RecipientFileError(path, "has a header row but no data rows")
    source = _source_info(table, columns, data)
    try:
        template.validate(source.parameters)
    except TemplateError as exc:
        raise RecipientFileError(path, str(exc)) from exc
    return RecipientList(data=data, columns=columns, template=template, source=source,
                         region=region)


def has_sendable_row(listing: RecipientList, *, first: int = 1_000) -> bool:
    """Whether any row would be READY (suppression aside), judging a growing head of the list:
    the usual list answers after its first rows, a hopeless one after all of them."""
    n, k = len(listing.data), first
    while True:
        head = listing.data.iloc[:k]
        verdicts = judge(head, listing.columns, listing.template, region=listing.region)
        if (verdicts.states == _CODE[READY]).any():
            return True
        if k >= n:
            return False
        k *= 10


def build_frame(
    data: pd.DataFrame, columns: Columns, template: Template, *, region: str,
    suppressed: Collection[str] = frozenset(),
) -> pd.DataFrame:
    """The per-row table (``COLUMNS``) from the data rows of a table.

    The texts are rendered on a thread of their own while ``judge`` normalizes the phones on
    its threads: both spend their time in kernels that release the GIL (1M rows: ~0.3 s less
    than one after the other).
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="smspipe-render") as pool:
        rendering = pool.submit(_texts, data, columns, template)
        verdicts = judge(data, columns, template, region=region, suppressed=suppressed)
        texts = rendering.result()
    return describe(data, columns, template, verdicts, texts=texts)


@dataclass(frozen=True)
class Verdicts:
    """Every row's verdict, without its texts: what a whole list needs held at once."""

    #: Data row numbers, from 1.
    rows: np.ndarray
    #: E.164 digits (int64 when all are plain digits), null where the phone is rejected.
    msisdn: pa.Array
    #: Why a row is not READY (null when it is).
    reason: pa.Array
    #: Index into ``STATES`` per row (int8).
    states: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def slice(self, lo: int, hi: int) -> Verdicts:
        return Verdicts(rows=self.rows[lo:hi], msisdn=self.msisdn.slice(lo, hi - lo),
                        reason=self.reason.slice(lo, hi - lo), states=self.states[lo:hi])

    def counts(self) -> dict[str, int]:
        found = np.bincount(self.states, minlength=len(STATES))
        return {state: int(found[code]) for state, code in _CODE.items()}


def judge(
    data: pd.DataFrame, columns: Columns, template: Template, *, region: str,
    suppressed: Collection[str] = frozenset(),
) -> Verdicts:
    """Normalize every phone and give every row its verdict (first sendable row of a number
    wins). Texts are only rendered here when the template could render blank.

    Phone normalization spends its time in Arrow/numpy kernels that release the GIL: a big
    list is normalized in slices on worker threads (1M phones: 0.8 s in one call, 0.35 s in two
    slices on two cores). ``phones.normalize`` is a pure function of its slice, so slices may
    run at once: it must stay thread-safe.
    """
    n = len(data)
    rows = np.arange(1, n + 1, dtype=np.int64)
    raw = data[columns.phone].reset_index(drop=True)
    workers = _PARALLEL if n >= _PARALLEL_FROM else 1
    # Slices of at most _SLICE_ROWS, ``workers`` at a time: the normalizer's temporaries
    # (~260 bytes a row) then stay those of a few slices, whatever the list's length.
    parts = max(workers, -(-n // _SLICE_ROWS))
    bounds = np.linspace(0, n, parts + 1).astype(int)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smspipe-prepare") as pool:
        jobs = [pool.submit(_normalized, raw.iloc[lo:hi], region)
                for lo, hi in itertools.pairwise(bounds)]
        empty_text = _blank_texts(data, columns, template, bounds)
        results = [job.result() for job in jobs]
    numbers = [m for m, _ in results]
    if len({m.type for m in numbers}) > 1:  # some slice is not all digits: text throughout
        numbers = [_msisdn_text(m) for m in numbers]
    msisdn = pa.concat_arrays(numbers)
    reason = pa.concat_arrays([r for _, r in results])
    del numbers, results
    # The normalizer's temporaries are gone; hand their pages back before the next stage
    # allocates (mimalloc would otherwise keep them and the peak would add up).
    pa.default_memory_pool().release_unused()
    states, reasons = assign_states(rows, msisdn, reason, suppressed=suppressed,
                                    empty_text=empty_text)
    return Verdicts(rows=rows, msisdn=msisdn, reason=reasons, states=states)


def _normalized(raw: pd.Series, region: str) -> tuple[pa.Array, pa.Array]:
    part = phones.normalize(raw, region)
    return _compact(_arrow(part["msisdn"])), _arrow(part["reason"])


def _blank_texts(
    data: pd.DataFrame, columns: Columns, template: Template, bounds: np.ndarray
) -> np.ndarray | None:
    """Rows whose rendered text is blank, or None when the template's own text rules it out."""
    if template.literal.strip():
        return None
    blank = []
    for lo, hi in itertools.pairwise(bounds):
        part = data.iloc[lo:hi]
        params = [_clean_param(_arrow(part[c])) for c in columns.parameters]
        texts = template.render(params, len(part))
        empty = pc.invert(pc.match_substring_regex(texts, r"\S"))
        blank.append(pc.fill_null(empty, True).to_numpy(zero_copy_only=False))
    return np.concatenate(blank) if blank else np.zeros(0, dtype=bool)


def describe(
    data: pd.DataFrame,
    columns: Columns,
    template: Template,
    verdicts: Verdicts,
    *,
    texts: Texts | None = None,
) -> pd.DataFrame:
    """The per-row table (``COLUMNS``) of rows already judged: texts, parameters, encodings.

    ``data`` and ``verdicts`` cover the same rows (a slice of each, for a list taken a slice
    at a time); ``texts`` are those rows' ``_texts`` when already rendered.
    """
    texts, measure, params = texts or _texts(data, columns, template)
    ready = verdicts.states == _CODE[READY]
    segments = pd.arrays.IntegerArray(measure.segments, ~ready)
    encoding = np.where(ready, np.where(measure.gsm, 0, 1), -1).astype(np.int8)
    return pd.DataFrame({
        "row": verdicts.rows,
        "input": _strings(arrow_strings(data[columns.phone])),
        "msisdn": _strings(_msisdn_text(verdicts.msisdn)),
        "state": pd.Categorical.from_codes(verdicts.states, categories=list(STATES)),
        "reason": _strings(verdicts.reason),
        "text": _strings(texts),
        "params": pd.array(params, dtype=pd.ArrowDtype(params.type)),
        "encoding": pd.Categorical.from_codes(encoding, categories=[GSM7, UCS2]),
        "segments": segments,
    })


#: Rendered texts, their encodings and parts, and the per-row parameters (struct).
Texts = tuple[pa.Array, TextMeasure, pa.Array]


def _texts(data: pd.DataFrame, columns: Columns, template: Template) -> Texts:
    """Rendered texts, their encodings and parts, and the per-row parameters (struct)."""
    n = len(data)
    params = [_clean_param(_arrow(data[c])) for c in columns.parameters]
    texts = template.render(params, n)
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    return texts, template.measure(params, texts, n), _params_struct(params, n)


def _strings(array: pa.Array | pa.ChunkedArray) -> pd.api.extensions.ExtensionArray:
    if isinstance(array, pa.Array):
        array = pa.chunked_array([array])
    return pd.arrays.ArrowStringArray(array)


def summarize(frame: pd.DataFrame) -> Summary:
    states = frame["state"].value_counts()
    rejected = frame.loc[frame["state"] == REJECTED, "reason"].value_counts()
    ready = frame["state"] == READY
    encodings = frame.loc[ready, "encoding"].value_counts()
    return Summary(
        rows=len(frame),
        ready=int(states.get(READY, 0)),
        rejected=int(states.get(REJECTED, 0)),
        rejected_by_reason={str(k): int(v) for k, v in rejected.items() if v},
        duplicates=int(states.get(DUPLICATE, 0)),
        suppressed=int(states.get(SUPPRESSED, 0)),
        encodings={str(k): int(v) for k, v in encodings.items() if v},
        segments=int(frame.loc[ready, "segments"].sum()),
    )


def _source_info(table: Table, columns: Columns, data: pd.DataFrame) -> SourceInfo:
    return SourceInfo(
        path=table.path, format=table.format, sheet=table.sheet, encoding=table.encoding,
        delimiter=table.delimiter, header=columns.header,
        phone_column=columns.names[columns.phone],
        parameters=tuple(columns.names[c] for c in columns.parameters),
        first_file_row=int(data.index[0]), notes=table.notes,
    )


def _arrow(column: pd.Series) -> pa.Array:
    """One contiguous large_string array (the stages below index into it)."""
    return arrow_strings(column).combine_chunks()


def _clean_param(values: pa.Array) -> pa.Array:
    """Trim blanks; a blank value is no value."""
    values = pc.utf8_trim_whitespace(values)
    if pc.any(pc.equal(values, "")).as_py():
        values = pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)
    return values


def _params_struct(params: list[pa.Array], n: int) -> pa.Array:
    """Per row ``{"0": value, "1": value, ...}``: the parameter columns side by side.

    A struct shares the columns' memory (a list per row would copy every value to interleave
    them); a file without parameter columns gives <NA>.
    """
    if not params:
        return pa.nulls(n, pa.struct([]))
    return pa.StructArray.from_arrays(params, names=[str(k) for k in range(len(params))])
