"""Phone normalization: raw cells -> E.164 digits without '+' (the provider's form).

    normalize(raw: pd.Series, region) -> DataFrame[msisdn, reason]   vectorized, same index
    normalize_reference(raw, region)  -> (msisdns, reasons)          per-row phonenumbers
    normalize_one(raw, region)        -> (msisdn, reason)            the same for one value
    preclean(raw, region=None) -> str                                the pre-clean of one value

`normalize` gives exactly `normalize_reference`'s answer on every row; the reference is
phonenumbers' own verdict on our pre-cleaned value, so "valid" means `is_valid_number`.

Pre-clean (one value; `normalize` applies the same rules column-wise):
 1. Blank (None/NaN/NA, or nothing left after trimming whitespace incl. NBSP, thin and
    zero-width spaces, BOM) -> EMPTY.
 2. Scientific notation ("1.30567E+10", "1,30567E+10", "1E10") -> AMBIGUOUS_NUMBER: the digits
    a spreadsheet rounded away are gone, so the number is never guessed.
 3. A numeric spreadsheet cell's decimal tail goes: "13056708084.0" / ".00" / ",0" -> digits,
    only when everything before it is digits ("305.555.0100" is a formatted number instead).
 4. Separators are removed everywhere: whitespace, dashes (ASCII and Unicode), dots,
    parentheses, slashes.
 5. A leading "00" becomes "+" (files write international numbers as 00<cc>..., also from
    NANP senders: "001 305 555 0101"), unless the default region's own international prefix
    matches there; then phonenumbers strips that prefix itself (e.g. AU "0011 44 ...").
    Other IDDs of the default region ("011" for US) are handled by phonenumbers.
 6. A leading "+" is kept; anything else is left to phonenumbers.parse(value, region).

Verdict: parse + is_valid_number. If the value (after 1-6) is 11-15 digits without "+" and is
not valid in the default region, it is retried as "+<digits>" (vendor files hold international
numbers without "+": "584121234567" is Venezuelan even with region US); the retry only ever
turns a rejection into a valid number. Reasons:
    EMPTY             blank cell
    AMBIGUOUS_NUMBER  scientific notation
    NOT_A_NUMBER      phonenumbers cannot parse it and it has no digit or has a letter
    INVALID_NUMBER    parsed but not valid, or unparseable digits ("12", "+0", too long)
An extension ("... ext 12") is dropped from the msisdn: the provider cannot dial it.

Vectorized path (same answers, ~1/40 of the time):
    phones_clean   rules 1-5 on the column's Arrow buffers (byte tests, a few RE2 passes)
    phones_engine  phonenumbers' parse + is_valid_number steps for '+?digits' values, whole
                   columns at a time, grouped by country code
    phones_plans   each region's metadata compiled once per process
    phones_prefix  its number patterns as lookup tables on the first <= 6 digits
Values without any digit are NOT_A_NUMBER at once; anything else that is not '+?digits'
(letters, other symbols, non-ASCII digits) runs the reference per row ("fallback"), once per
distinct value; country codes with under 64 rows in a call are finished one by one from the same
compiled plans. tests/test_phones.py and `python -m bench.phones` (also --all-regions) count
disagreements with the reference: 0.

Measured on the 2-core box while other jobs ran on it (load 2-3.5), `python -m bench.phones`
(1M messy rows, region US, 93% unique, ~90 country codes):
    normalize  0.52-0.67 s warm (1.5-1.9M rows/s, 0.52-0.56 s CPU); 1.1-1.9 s as the first
               call in a process (it compiles the tables of the codes it meets)
    reference  25-30 s (33-40k rows/s, phonenumbers' pattern cache on); ratio 45-55x
    0 disagreements (also 245 regions x 1500 adversarial values x 2 ways, --all-regions);
    per-row fallback 0.05% of rows, rare country codes one by one 0.26%
Limits: the retry rule can make a mistyped 11-15 digit local number valid abroad; an
extension is dropped; "+00..." is not read as "00..." (phonenumbers calls it invalid).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa

from jobs import phones_clean as clean
from jobs import phones_engine as engine
from jobs import phones_plans as plans

__all__ = [
    "AMBIGUOUS_NUMBER",
    "EMPTY",
    "INVALID_NUMBER",
    "NOT_A_NUMBER",
    "REASONS",
    "normalize",
    "normalize_one",
    "normalize_reference",
    "preclean",
]

EMPTY = "EMPTY"
AMBIGUOUS_NUMBER = "AMBIGUOUS_NUMBER"
NOT_A_NUMBER = "NOT_A_NUMBER"
INVALID_NUMBER = "INVALID_NUMBER"
REASONS = (EMPTY, AMBIGUOUS_NUMBER, NOT_A_NUMBER, INVALID_NUMBER)

# Spelled out (no ranges) so str.strip and pyarrow's utf8_trim use the very same set.
_SPACES = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"
# Each pattern means the same in Python re and RE2 (ASCII classes, explicit code points).
_SCI = r"^[+-]?[0-9]+(?:[.,][0-9]+)?[eE][+-]?[0-9]+$"
_NUMERIC_CELL = r"^([0-9]+)[.,]0{1,2}$"
_SEPARATORS = f"[{_SPACES}{_DASHES}./()]"
_RETRY_MIN, _RETRY_MAX = 11, 15

_SCI_RE = re.compile(_SCI)
_NUMERIC_CELL_RE = re.compile(_NUMERIC_CELL)
_SEPARATORS_RE = re.compile(_SEPARATORS)
_RETRY_RE = re.compile(rf"^[0-9]{{{_RETRY_MIN},{_RETRY_MAX}}}$")

# phonenumbers recompiles a region's patterns whenever they fall out of re's 512-entry cache;
# lists spanning many countries thrash it (3x slower per row). Keep them compiled (~2 MB).
if hasattr(phonenumbers.re_util, "enable_pattern_cache"):
    phonenumbers.re_util.enable_pattern_cache()

_REASON_CODES = pa.array(list(REASONS), pa.large_string())
_CODE = {reason: i for i, reason in enumerate(REASONS)}


def _region(region: str) -> str:
    """Upper-cased supported region; ValueError otherwise (phonenumbers would reject all)."""
    code = region.upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown region {region!r}")
    return code


def _own_idd_prefix(s: str, region: str | None) -> bool:
    """Whether the default region's international prefix starts `s` (phonenumbers strips it)."""
    plan = plans.region_plan(_region(region)) if region else None
    return plan is not None and plan.idd is not None and re.match(plan.idd, s) is not None


def _is_blank(raw: object) -> bool:
    return raw is None or (not isinstance(raw, str) and bool(pd.isna(raw)))


def preclean(raw: str, region: str | None = None) -> str:
    """Rules 3-6 of the module docstring on one value (after trimming); region for rule 5."""
    s = raw.strip(_SPACES)
    m = _NUMERIC_CELL_RE.match(s)
    if m:
        s = m.group(1)
    s = _SEPARATORS_RE.sub("", s)
    if s.startswith("00") and not _own_idd_prefix(s, region):
        s = "+" + s[2:]
    return s


def _parse_valid(s: str, region: str) -> tuple[str | None, str | None]:
    try:
        number = phonenumbers.parse(s, region)
    except phonenumbers.NumberParseException:
        has_digit = any(ch.isdecimal() for ch in s)
        has_letter = any(ch.isalpha() for ch in s)
        return None, INVALID_NUMBER if has_digit and not has_letter else NOT_A_NUMBER
    if phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:], None
    return None, INVALID_NUMBER


def normalize_one(raw: str | None, region: str) -> tuple[str | None, str | None]:
    """The reference verdict for one value: (msisdn or None, reason or None)."""
    return _normalize_one(raw, _region(region))


def _normalize_one(raw: str | None, region: str) -> tuple[str | None, str | None]:
    """`normalize_one` for a region already checked by `_region`."""
    if _is_blank(raw) or not str(raw).strip(_SPACES):
        return None, EMPTY
    text = str(raw)
    if _SCI_RE.match(text.strip(_SPACES)):
        return None, AMBIGUOUS_NUMBER
    s = preclean(text, region)
    msisdn, reason = _parse_valid(s, region)
    if msisdn is None and _RETRY_RE.match(s):
        retry, _ = _parse_valid("+" + s, region)
        if retry is not None:
            return retry, None
    return msisdn, reason


def normalize_reference(
    raw: Sequence[str | None], region: str
) -> tuple[list[str | None], list[str | None]]:
    """Per-row phonenumbers (~58k rows/s): the definition `normalize` must match exactly."""
    code = _region(region)
    msisdns: list[str | None] = []
    reasons: list[str | None] = []
    for value in raw:
        m, r = _normalize_one(value, code)
        msisdns.append(m)
        reasons.append(r)
    return msisdns, reasons


# ---- vectorized -------------------------------------------------------------------------------

_RULES = clean.Rules(
    spaces=_SPACES,
    separators_unicode=_SEPARATORS,
    separators_ascii="\t\n\v\f\r -./()",
    sci=_SCI,
    numeric_cell=_NUMERIC_CELL,
    codes=_CODE,
)


def _to_arrow(raw: pd.Series) -> pa.Array:
    """The column as one large_string array (zero-copy for pandas' Arrow-backed strings)."""
    try:
        arr = pa.array(raw, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array(
            [None if _is_blank(v) else str(v) for v in raw.tolist()], type=pa.large_string()
        )
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr


def _evaluate(col: clean.Column, n: int, region: str) -> engine.Outcome:
    """phonenumbers' verdict for the '+?digits' rows, then the 11-15 digit '+' retry."""
    plan = plans.region_plan(region)
    out = engine.Outcome(n)
    unknown = engine.international(out, col.plus_rows, col.plus_digits)
    if len(unknown):
        again = engine.take(col.plus_digits, unknown)
        engine.national(out, col.plus_rows[unknown], again, plan, after_plus=True)
    engine.national(out, col.bare_rows, col.bare_digits, plan)
    out.settle()
    size = engine.lengths(col.bare_digits)
    retry = (
        ~out.valid[col.bare_rows]
        & ~out.fallback[col.bare_rows]
        & (size >= _RETRY_MIN)
        & (size <= _RETRY_MAX)
    )
    idx = np.flatnonzero(retry)
    if len(idx):
        # "+<unknown code>" would re-read the same digits without '+': already invalid.
        engine.international(out, col.bare_rows[idx], engine.take(col.bare_digits, idx))
        out.settle()
    return out


def normalize(raw: pd.Series, region: str, *, stats: dict[str, int] | None = None) -> pd.DataFrame:
    """Vectorized `normalize_reference`: columns msisdn (<NA> if rejected), reason (<NA> if ok).

    `stats`, if given, receives "fallback" (rows that ran the reference per row) and
    "small_groups" (rows of rare country codes finished one by one on the compiled tables).
    """
    code_region = _region(region)
    arr = _to_arrow(raw)
    n = len(arr)
    plan = plans.region_plan(code_region)
    col = clean.clean_column(arr, _RULES, plan.idd)
    out = _evaluate(col, n, code_region)
    code = col.code
    decided = np.concatenate([col.plus_rows, col.bare_rows])
    code[decided[~out.valid[decided]]] = _CODE[INVALID_NUMBER]
    fallback = np.concatenate([col.fallback_rows, np.flatnonzero(out.fallback)])
    if len(fallback):
        _run_fallback(arr, fallback, code_region, out, code)
    if stats is not None:
        stats["fallback"] = len(fallback)
        stats["small_groups"] = out.scalar
    reason = _REASON_CODES.take(pa.array(code.astype(np.int64), mask=code < 0))
    return pd.DataFrame(
        {
            "msisdn": pd.array(out.msisdn(), dtype=pd.StringDtype("pyarrow")),
            "reason": pd.array(reason, dtype=pd.StringDtype("pyarrow")),
        },
        index=raw.index,
    )


def _run_fallback(
    arr: pa.Array, rows: np.ndarray, region: str, out: engine.Outcome, code: np.ndarray
) -> None:
    """The reference on the rows the vectorized path does not cover."""
    rows = np.unique(rows)
    seen: dict[str | None, tuple[str | None, str | None]] = {}  # garbage repeats ("555-CALL")
    results = [
        seen[v] if v in seen else seen.setdefault(v, _normalize_one(v, region))
        for v in engine.take(arr, rows).to_pylist()
    ]
    code[rows] = [_CODE[r] if r is not None else -1 for _, r in results]
    out.set(rows, pa.array([m for m, _ in results], pa.large_string()))


def warm_up() -> None:
    """Build the per-country tables a first big list would otherwise pay for (~0.1-0.4 s):
    a worker calls this at start-up, off its event loop."""
    samples = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                samples.append(
                    phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                )
    # Enough rows per country code to take the table path, not the one-by-one one.
    normalize(pd.Series(samples * 64, dtype="string[pyarrow]"), "US")
