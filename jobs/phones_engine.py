"""phonenumbers' `parse(s, region)` + `is_valid_number`, column-wise, for `+?[0-9]+` strings.

Each step mirrors one function of phonenumbers/phonenumberutil.py (named in the docstrings) and
uses the library's own metadata: regexes run by RE2 through `pyarrow.compute`, number patterns
as prefix tables (phones_prefix). Only the shape of the work changes, not the rules: a row gets
exactly phonenumbers' verdict or is flagged `fallback` (the caller runs phonenumbers on it).

Facts relied on (checked by tests/test_phones.py against phonenumbers itself):
- for a `+?[0-9]+` string the parse is '+' | region IDD | default country code | national;
  no extension, alpha or RFC 3966 handling applies;
- the national significant number equals the parsed national string (italian leading zeros
  round-trip), so the E.164 digits are `str(country_code) + national`;
- every metadata pattern compiles in RE2 with the same meaning (digits, classes, groups, counted
  repetition); full match is `^(?:p)$`, prefix match `^(?:p)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from jobs.phones_plans import (
    LEN_CAP,
    MAX_NSN,
    MIN_NSN,
    STR,
    VALID_CC,
    Plan,
    leads,
    main_plan,
    plan_for,
)
from jobs.phones_prefix import MAX_K, Table, lookup, lookup_one

# A country code with fewer rows than this in one call is finished row by row on the same
# compiled plan (a few us a row) instead of column-wise (~0.5-1 ms of Arrow calls a code, RE2
# compiling its national-prefix pattern among them). Tests run both ways.
SMALL_GROUP = 64
# Building a pattern's prefix table costs ~1-5 ms of Python (once per process); RE2 costs
# ~0.2 ms to compile plus ~50 ns a row. Fewer rows than this use an existing table or RE2.
TABLE_MIN_ROWS = 1_000


# ---- column helpers -------------------------------------------------------------------------


def lengths(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.binary_length(arr).to_numpy(zero_copy_only=False), dtype=np.int64)


def _np(mask: pa.Array) -> np.ndarray:
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def match(arr: pa.Array, pattern: str | None) -> np.ndarray:
    if pattern is None or len(arr) == 0:
        return np.zeros(len(arr), dtype=bool)
    return _np(pc.match_substring_regex(arr, pattern))


def _starts(arr: pa.Array, literal: str | None, pattern: str | None) -> np.ndarray:
    if literal is not None:
        return _np(pc.starts_with(arr, literal))
    return match(arr, pattern)


def _strip_prefix(arr: pa.Array, literal: str | None, pattern: str) -> pa.Array:
    if literal is not None:
        return pc.utf8_slice_codeunits(arr, len(literal))
    return pc.replace_substring_regex(arr, pattern, "", max_replacements=1)


def heads(arr: pa.Array, k: int = 3) -> np.ndarray:
    """First k characters as digit values (-1 past the end), straight from the Arrow buffers."""
    arr = arr.cast(STR) if arr.type != STR else arr
    n = len(arr)
    out = np.full((n, k), -1, dtype=np.int16)
    if n == 0:
        return out
    bufs = arr.buffers()
    offs = np.frombuffer(bufs[1], dtype=np.int64, count=n + 1, offset=arr.offset * 8)
    if bufs[2] is None:
        return out
    data = np.frombuffer(bufs[2], dtype=np.uint8)
    size = offs[1:] - offs[:-1]
    for j in range(k):
        has = size > j
        out[has, j] = data[offs[:-1][has] + j].astype(np.int16) - 48
    return out


def take(arr: pa.Array, idx: np.ndarray) -> pa.Array:
    return arr.take(pa.array(idx, pa.int64()))


# ---- parse steps ------------------------------------------------------------------------------


def strip_national_prefix(x: pa.Array, plan: Plan) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """`_maybe_strip_national_prefix_carrier_code`, sparse: (positions, their new numbers,
    positions we cannot emulate). Positions not listed keep their number."""
    none = np.zeros(0, dtype=np.int64)
    if plan.np_prefix is None or len(x) == 0:
        return none, pa.array([], STR), none
    hit = _starts(x, plan.np_literal, plan.np_prefix) & (lengths(x) > 0)
    idx = np.flatnonzero(hit)
    if len(idx) == 0:
        return none, pa.array([], STR), none
    if plan.np_rule is not None and not plan.np_exact:
        return none, pa.array([], STR), idx
    sub = take(x, idx)
    cand = _strip_prefix(sub, plan.np_literal, plan.np_prefix)
    if plan.np_rule is not None:
        captured = pc.struct_field(pc.extract_regex(sub, plan.np_last_group), "g")
        took = pc.greater(pc.binary_length(captured), 0)
        transformed = pc.replace_substring_regex(
            sub, plan.np_prefix, plan.np_rule, max_replacements=1
        )
        cand = pc.if_else(took, transformed, cand)
    # A viable number is not traded for a non-viable one.
    keep = general_match(sub, plan) & ~general_match(cand, plan)
    if keep.any():
        cand = pc.if_else(pa.array(keep), sub, cand)
    return idx, cand.cast(STR), none


def country_codes(d: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """`_extract_country_code`: (code or 0, its digit count) per row."""
    h = heads(d, 3).astype(np.int64)
    c1 = np.where(h[:, 0] > 0, h[:, 0], 0)
    c2 = np.where(h[:, 1] >= 0, c1 * 10 + h[:, 1], 0)
    c3 = np.where(h[:, 2] >= 0, c2 * 10 + h[:, 2], 0)
    cc = np.where(VALID_CC[c1], c1, np.where(VALID_CC[c2], c2, np.where(VALID_CC[c3], c3, 0)))
    cc = np.where(h[:, 0] > 0, cc, 0)  # codes never start with 0
    k = np.where(cc == 0, 0, np.where(cc < 10, 1, np.where(cc < 100, 2, 3)))
    return cc, k


def _match_rows(x: pa.Array, idx: np.ndarray, pattern: str) -> np.ndarray:
    """`match` for the rows `idx` of `x`: copies them out unless they are nearly all rows."""
    if len(idx) == 0:
        return np.zeros(0, dtype=bool)
    if len(idx) * 5 > len(x) * 4:  # a copy costs more than matching the few extra rows
        return match(x, pattern)[idx]
    return match(take(x, idx), pattern)


@dataclass
class Numbers:
    """National numbers of one country code: strings, lengths, and (lazily) their first digits
    as an integer, the key into prefix tables."""

    x: pa.Array
    n: np.ndarray
    _head: np.ndarray | None = None

    @property
    def head(self) -> np.ndarray:
        """int(x[:HEAD]) per row (the whole number when shorter)."""
        if self._head is None:
            self._head = head_values(self.x, self.n)
        return self._head

    def key(self, rows: np.ndarray, k: int) -> np.ndarray:
        """int(x[:k]) for the rows (all at least k long)."""
        shift = np.minimum(self.n[rows], HEAD) - k
        return self.head[rows] // _POW10[shift]


HEAD = MAX_K
_POW10 = 10 ** np.arange(HEAD + 1, dtype=np.int64)


def head_values(x: pa.Array, n: np.ndarray) -> np.ndarray:
    """int(x[:HEAD]) per row, read from the Arrow buffers."""
    value = np.zeros(len(x), dtype=np.int64)
    if len(x) == 0:
        return value
    bufs = x.buffers()
    offs = np.frombuffer(bufs[1], dtype=np.int64, count=len(x) + 1, offset=x.offset * 8)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else None
    if data is None or len(data) == 0:
        return value
    starts, last = offs[:-1], len(data) - 1
    for j in range(HEAD):
        digit = data[np.minimum(starts + j, last)].astype(np.int64) - 48
        value = np.where(n > j, value * 10 + digit, value)
    return value


def _full_match(nums: Numbers, rows: np.ndarray, table: Table | None, pattern: str) -> np.ndarray:
    """Full match for rows of one length: the prefix table when there is one, else RE2."""
    if table is None:
        return _match_rows(nums.x, rows, pattern)
    return lookup(table, nums.key(rows, table[0]))


def _type_valid(plan: Plan | None, nums: Numbers, idx: np.ndarray) -> np.ndarray:
    """`_number_type_helper(...) != UNKNOWN` for the rows `idx`: the general desc, then any
    type desc, by length (lengths first, in numpy, so patterns only see plausible rows)."""
    result = np.zeros(len(idx), dtype=bool)
    if plan is None or plan.general is None or not plan.types or len(idx) == 0:
        return result
    lens = nums.n[idx]
    plausible = np.flatnonzero(plan.general_len[np.minimum(lens, LEN_CAP)])
    for length in np.flatnonzero(np.bincount(lens[plausible], minlength=1)):
        size = int(length)
        types = plan.types_at(size)
        if types is None:
            continue
        at = plausible[lens[plausible] == length]
        rows = idx[at]
        build = len(rows) >= TABLE_MIN_ROWS
        ok = _full_match(nums, rows, plan.general_table(size, build), plan.general)
        ok[ok] = _full_match(nums, rows[ok], plan.types_table(size, build), types)
        result[at] = ok
    return result


def general_match(x: pa.Array, plan: Plan) -> np.ndarray:
    """`_match_national_number(x, general_desc)` per row: full match, no length check."""
    if plan.general is None or len(x) == 0:
        return np.zeros(len(x), dtype=bool)
    nums = Numbers(x, lengths(x))
    result = np.zeros(len(x), dtype=bool)
    for length in np.flatnonzero(np.bincount(nums.n, minlength=1)):
        rows = np.flatnonzero(nums.n == length)
        table = plan.general_table(int(length), len(rows) >= TABLE_MIN_ROWS)
        result[rows] = _full_match(nums, rows, table, plan.general)
    return result


def _first_lead(cc: int, nums: Numbers, rows: np.ndarray) -> np.ndarray:
    """Per row, the list position of the first region whose leading_digits match (or -1)."""
    found = leads(cc)
    assert found is not None
    table, width, _ = found
    k = np.minimum(nums.n[rows], width)
    base = np.cumsum([0] + [10**i for i in range(width)])  # where each key length starts
    return table[base[k] + _keys_upto(nums, rows, k)]


def _keys_upto(nums: Numbers, rows: np.ndarray, k: np.ndarray) -> np.ndarray:
    """int(x[:k]) with k per row (k <= HEAD and <= the row's length)."""
    shift = np.minimum(nums.n[rows], HEAD) - k
    return nums.head[rows] // _POW10[shift]


def valid_for_cc(cc: int, nums: Numbers) -> np.ndarray:
    """`is_valid_number` for numbers sharing country code `cc`."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(cc, ())
    everyone = np.arange(len(nums.n))
    if len(regions) == 1:
        return _type_valid(plan_for(cc, regions[0]), nums, everyone)
    lead_table = leads(cc)
    if lead_table is None:
        return _valid_in_list_order(cc, nums)
    # _region_code_for_number_from_list: the first region that either has leading_digits that
    # match or (without leading_digits) finds the number valid; then valid in that region.
    result = np.zeros(len(nums.n), dtype=bool)
    undecided = everyone
    first: np.ndarray | None = None  # first matching lead, for the undecided rows
    for pos, region in enumerate(regions):
        plan = plan_for(cc, region)
        if plan is None or plan.lead is not None or len(undecided) == 0:
            continue
        if first is None and any(p < pos for p in lead_table[2]):
            first = _first_lead(cc, nums, undecided)
        later = (
            np.ones(len(undecided), dtype=bool) if first is None else (first < 0) | (first > pos)
        )
        ok = later & _type_valid(plan, nums, undecided)
        result[undecided[ok]] = True
        undecided = undecided[~ok]
        if first is not None:
            first = first[~ok]
    if len(undecided):
        if first is None:
            first = _first_lead(cc, nums, undecided)
        for chosen in np.flatnonzero(np.bincount(first[first >= 0], minlength=1)):
            rows = undecided[first == chosen]
            result[rows] = _type_valid(plan_for(cc, regions[int(chosen)]), nums, rows)
    return result


def _valid_in_list_order(cc: int, nums: Numbers) -> np.ndarray:
    """`valid_for_cc` region by region (for a code whose leading_digits cannot be tabulated)."""
    result = np.zeros(len(nums.n), dtype=bool)
    remaining = np.arange(len(nums.n))
    for region in COUNTRY_CODE_TO_REGION_CODE[cc]:
        plan = plan_for(cc, region)
        if plan is None or len(remaining) == 0:
            continue
        if plan.lead is not None:
            chosen = _match_rows(nums.x, remaining, plan.lead)
            rows = remaining[chosen]
            result[rows] = _type_valid(plan, nums, rows)
        else:
            chosen = _type_valid(plan, nums, remaining)
            result[remaining[chosen]] = True
        remaining = remaining[~chosen]
    return result


# ---- the same tail, one number at a time (small groups) ---------------------------------------


@cache
def _re(pattern: str) -> re.Pattern[str]:
    """Compiled once per process: phonenumbers' own cache (re's, 512 entries) thrashes here."""
    return re.compile(pattern)


def _strip_national_prefix_one(x: str, plan: Plan) -> str:
    if plan.np_prefix is None or not x:
        return x
    m = _re(plan.np_prefix).match(x)
    if m is None:
        return x
    if plan.np_rule is not None and m.groups()[-1] is not None:
        cand = _re(plan.np_prefix).sub(plan.np_rule, x, count=1)
    else:
        cand = x[m.end() :]
    # A viable number is not traded for a non-viable one.
    if _general_one(x, plan) and not _general_one(cand, plan):
        return x
    return cand


def _general_one(x: str, plan: Plan) -> bool:
    """`_match_national_number(x, general_desc)`: full match, no length check."""
    if plan.general is None:
        return False
    return _full_match_one(x, plan.general_table(len(x), build=False), plan.general)


def _type_valid_one(plan: Plan | None, x: str) -> bool:
    if plan is None or plan.general is None:
        return False
    size = len(x)
    if not plan.general_len[min(size, LEN_CAP)]:
        return False
    types = plan.types_at(size)
    # One by one, a table is used only if a column-wise run built it: re compiles faster.
    return (
        types is not None
        and _full_match_one(x, plan.general_table(size, build=False), plan.general)
        and _full_match_one(x, plan.types_table(size, build=False), types)
    )


def _full_match_one(x: str, table: Table | None, pattern: str) -> bool:
    if table is None:
        return _re(pattern).match(x) is not None
    k = table[0]
    return lookup_one(table, int(x[:k]) if k else 0)


def _valid_one(cc: int, x: str) -> bool:
    regions = COUNTRY_CODE_TO_REGION_CODE.get(cc, ())
    if len(regions) == 1:
        return _type_valid_one(plan_for(cc, regions[0]), x)
    for region in regions:
        plan = plan_for(cc, region)
        if plan is None:
            continue
        if plan.lead is not None:
            if _re(plan.lead).match(x):
                return _type_valid_one(plan, x)
        elif _type_valid_one(plan, x):
            return True
    return False


def finish_one(cc: int, x: str, plan: Plan) -> str | None:
    """`finish` for one national number: the E.164 digits, or None."""
    if len(x) < MIN_NSN:
        return None
    cand = _strip_national_prefix_one(x, plan)
    if plan.accept_len[min(len(cand), LEN_CAP)]:
        x = cand
    if not MIN_NSN <= len(x) <= MAX_NSN:
        return None
    return f"{cc}{x}" if _valid_one(cc, x) else None


def finish_small(out: Outcome, rows: np.ndarray, cc: int, d: pa.Array, k: int) -> None:
    """`international`'s tail for a few rows with country code `cc` (its first k digits)."""
    plan = main_plan(cc)
    found = [finish_one(cc, digits[k:], plan) for digits in d.to_pylist()]
    ok = np.array([f is not None for f in found], dtype=bool)
    out.scalar += len(found)
    if ok.any():
        out.add(rows[ok], pa.array([f for f in found if f is not None], STR))


@dataclass
class Outcome:
    """Per-row results in the caller's row space: valid, E.164 digits, fallback flags.

    National numbers wait in `pending` per country code, so each code is validated once per
    pass however many routes (national, own code, '+', IDD) produced it: `settle()`.
    """

    n: int
    valid: np.ndarray = field(init=False)
    fallback: np.ndarray = field(init=False)
    rows: list[np.ndarray] = field(default_factory=list)
    values: list[pa.Array] = field(default_factory=list)
    pending: dict[int, list[tuple[np.ndarray, pa.Array, np.ndarray, np.ndarray]]] = field(
        default_factory=dict
    )
    scalar: int = 0  # rows finished one by one (small country-code groups)

    def __post_init__(self) -> None:
        self.valid = np.zeros(self.n, dtype=bool)
        self.fallback = np.zeros(self.n, dtype=bool)

    def add(self, rows: np.ndarray, msisdn: pa.Array) -> None:
        self.valid[rows] = True
        self.rows.append(rows)
        self.values.append(msisdn)

    def set(self, rows: np.ndarray, msisdn: pa.Array) -> None:
        """Results decided elsewhere (the per-row fallback): null means rejected."""
        self.valid[rows] = np.asarray(pc.is_valid(msisdn).to_numpy(zero_copy_only=False))
        self.rows.append(rows)
        self.values.append(msisdn)

    def defer(self, rows: np.ndarray, cc: int, x: pa.Array, n: np.ndarray, ok: np.ndarray) -> None:
        """National numbers `x` (lengths n) of code `cc`, valid if `ok` and the patterns agree."""
        if ok.any():
            self.pending.setdefault(cc, []).append((rows, x.cast(STR), n, ok))

    def settle(self) -> None:
        """Validate everything pending, one country code at a time."""
        pending, self.pending = self.pending, {}
        for cc, parts in pending.items():
            rows = np.concatenate([p[0] for p in parts])
            n = np.concatenate([p[2] for p in parts])
            ok = np.concatenate([p[3] for p in parts])
            x = parts[0][1] if len(parts) == 1 else pa.concat_arrays([p[1] for p in parts])
            if ok.sum() < SMALL_GROUP:
                idx = np.flatnonzero(ok)
                found = [_valid_one(cc, v) for v in take(x, idx).to_pylist()]
                ok[idx] = found
                self.scalar += len(idx)
            else:
                ok &= valid_for_cc(cc, Numbers(x, n))
            if ok.any():
                idx = np.flatnonzero(ok)
                part = x if len(idx) == len(x) else take(x, idx)
                cc_str = pa.scalar(str(cc), STR)
                digits = pc.binary_join_element_wise(cc_str, part, pa.scalar("", STR))
                self.add(rows[idx], digits)

    def msisdn(self) -> pa.Array:
        """A full-length column: the digits for valid rows, null elsewhere."""
        if not self.rows:
            return pa.nulls(self.n, STR)
        rows = np.concatenate(self.rows)
        values = pa.concat_arrays([v.cast(STR) for v in self.values])
        pos = np.full(self.n, -1, dtype=np.int64)
        pos[rows] = np.arange(len(rows))
        return values.take(pa.array(pos, mask=pos < 0))


def finish(out: Outcome, rows: np.ndarray, cc: int, x: pa.Array, plan: Plan) -> None:
    """The tail of `parse` once the country code is known; validity waits in `out.pending`."""
    if len(rows) == 0:
        return
    n = lengths(x)
    short = n < MIN_NSN  # TOO_SHORT_NSN, before the national prefix is looked at
    idx, stripped, cannot = strip_national_prefix(x, plan)
    out.fallback[rows[cannot]] = True
    ns = lengths(stripped)
    use = plan.accept_len[np.minimum(ns, LEN_CAP)] & ~short[idx]
    changed, stripped, ns = idx[use], stripped.filter(pa.array(use)), ns[use]
    ok = ~short & (n <= MAX_NSN)
    ok[changed] = False
    ok[cannot] = False
    out.defer(rows, cc, x, n, ok)
    if len(changed):
        out.defer(rows[changed], cc, stripped, ns, (ns >= MIN_NSN) & (ns <= MAX_NSN))


def international(out: Outcome, rows: np.ndarray, d: pa.Array) -> np.ndarray:
    """Digits after '+' or an IDD: `_extract_country_code`, then the tail per country code.

    Returns the positions (into `rows`) with no known country code, which are invalid after
    an IDD but which parse re-reads without the '+' (see `national(..., after_plus=True)`).
    """
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64)
    n = lengths(d)
    cc, k = country_codes(d)
    too_short = n < 3  # not viable after '+' / TOO_SHORT_AFTER_IDD
    unknown = np.flatnonzero((cc == 0) & ~too_short)
    good = np.flatnonzero(~too_short & (cc != 0))
    if len(good) == 0:
        return unknown
    order = good[np.argsort(cc[good], kind="stable")]
    codes, starts = np.unique(cc[order], return_index=True)
    bounds = [*starts[1:], len(order)]
    for code, lo, hi in zip(codes, starts, bounds, strict=True):
        idx = order[lo:hi]
        if hi - lo < SMALL_GROUP:
            finish_small(out, rows[idx], int(code), take(d, idx), int(k[idx[0]]))
            continue
        national_part = pc.utf8_slice_codeunits(take(d, idx), int(k[idx[0]]))
        finish(out, rows[idx], int(code), national_part, main_plan(int(code)))
    return unknown


def national(
    out: Outcome, rows: np.ndarray, d: pa.Array, plan: Plan, after_plus: bool = False
) -> None:
    """Digits without '+': the region's IDD, its own country code, or a national number.

    `after_plus`: parse's second try for "+<unknown code>...": the same steps, but ending as a
    national number is an error (INVALID_COUNTRY_CODE).
    """
    viable = np.flatnonzero(lengths(d) >= MIN_NSN)  # _is_viable_phone_number
    rows, d = rows[viable], (d if len(viable) == len(d) else take(d, viable))
    if plan.idd is not None and len(rows):
        hit = _starts(d, plan.idd_literal, plan.idd)
        if hit.any():
            hit_idx = np.flatnonzero(hit)
            after = _strip_prefix(take(d, hit_idx), plan.idd_literal, plan.idd)
            # _parse_prefix_as_idd: not an IDD when the next digit is 0.
            is_idd = heads(after, 1)[:, 0] != 0
            international(out, rows[hit_idx[is_idd]], after.filter(pa.array(is_idd)))
            hit[hit_idx[~is_idd]] = False
            left = np.flatnonzero(~hit)
            rows, d = rows[left], take(d, left)
    if len(rows) == 0:
        return
    rows, d = _own_country_code(out, rows, d, plan)
    if not after_plus:
        finish(out, rows, plan.cc, d, plan)


def _own_country_code(
    out: Outcome, rows: np.ndarray, d: pa.Array, plan: Plan
) -> tuple[np.ndarray, pa.Array]:
    """The default-country branch of `_maybe_extract_country_code`; returns the rows left."""
    code = str(plan.cc)
    has = np.flatnonzero(np.asarray(pc.starts_with(d, code).to_numpy(zero_copy_only=False)))
    if len(has) == 0:
        return rows, d
    full = take(d, has)
    potential = pc.utf8_slice_codeunits(full, len(code))
    idx, stripped, cannot = strip_national_prefix(potential, plan)
    general_after = general_match(potential, plan)
    general_after[idx] = general_match(stripped, plan)
    better = (~general_match(full, plan) & general_after) | plan.too_long[
        np.minimum(lengths(full), LEN_CAP)
    ]
    better[cannot] = False
    out.fallback[rows[has[cannot]]] = True
    # The extracted rows continue with the (maybe NP-stripped) rest.
    was_stripped = np.zeros(len(has), dtype=bool)
    was_stripped[idx] = True
    plain = np.flatnonzero(better & ~was_stripped)
    via = better[idx]
    main = main_plan(plan.cc)
    finish(out, rows[has[plain]], plan.cc, take(potential, plain), main)
    finish(out, rows[has[idx[via]]], plan.cc, stripped.filter(pa.array(via)), main)
    gone = better.copy()
    gone[cannot] = True
    left = np.ones(len(rows), dtype=bool)
    left[has[gone]] = False
    keep = np.flatnonzero(left)
    return rows[keep], (d if len(keep) == len(d) else take(d, keep))
