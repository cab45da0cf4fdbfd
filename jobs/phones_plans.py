"""phonenumbers' metadata, compiled once per process for column-wise and one-by-one use.

A `Plan` holds one region's (or non-geographic entity's) patterns in the forms the engine needs:
anchored for RE2 (`^(?:p)$` full match, `^(?:p)` prefix match), literal prefixes where the
pattern is plain digits (`starts_with` is far cheaper than a regex), per-length type patterns,
and `_test_number_length` as lookup tables computed by phonenumbers itself.
"""

from __future__ import annotations

import re
import re._parser as sre_parse  # the stdlib regex parser: group widths, lead widths
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pyarrow as pa
from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import (
    COUNTRY_CODE_TO_REGION_CODE,
    ValidationResult,
    _test_number_length,
)

from jobs.phones_prefix import Table, fullmatch_table, prefix_match_tables, union

STR = pa.large_string()
MAX_NSN = 17  # phonenumbers' _MAX_LENGTH_FOR_NSN
MIN_NSN = 2  # phonenumbers' _MIN_LENGTH_FOR_NSN
LEN_CAP = 63  # lengths are clipped to this for table look-ups (the caller caps input length)
_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)
VALID_CC = np.zeros(1000, dtype=bool)
VALID_CC[[cc for cc in COUNTRY_CODE_TO_REGION_CODE if cc < 1000]] = True


@dataclass(frozen=True)
class Plan:
    """One region's (or non-geographic entity's) metadata, compiled for column-wise use."""

    cc: int
    general: str | None  # full match of the general pattern (no length check)
    np_prefix: str | None  # national_prefix_for_parsing, anchored
    np_literal: str | None  # the same when it is plain digits (starts_with is 20x cheaper)
    np_rule: str | None  # national_prefix_transform_rule (RE2 and Python share `\1`)
    np_last_group: str | None  # prefix pattern with only its last group kept, named g
    np_exact: bool  # False: a transform we cannot emulate; matching rows fall back
    accept_len: np.ndarray = field(repr=False)  # parse keeps the NP-stripped number
    too_long: np.ndarray = field(repr=False)  # _test_number_length == TOO_LONG
    general_len: np.ndarray = field(repr=False)  # length allowed by general_desc
    idd: str | None = None
    idd_literal: str | None = None
    lead: str | None = None  # leading_digits, prefix match
    general_raw: str | None = None  # the general pattern as in the metadata
    types: tuple[tuple[str, frozenset[int] | None], ...] = ()  # (raw pattern, lengths or any)
    _regex: dict[int, str | None] = field(default_factory=dict, repr=False, compare=False)
    _table: dict[int, Table | None] = field(default_factory=dict, repr=False, compare=False)

    def _admitted(self, length: int) -> list[str]:
        return [p for p, lens in self.types if lens is None or length in lens]

    def types_at(self, length: int) -> str | None:
        """Full-match regex of every type desc that admits `length` (None: none does)."""
        if length not in self._regex:
            alts = "|".join(f"(?:{p})" for p in self._admitted(length))
            self._regex[length] = f"^(?:{alts})$" if alts else None
        return self._regex[length]

    def types_table(self, length: int, build: bool = True) -> Table | None:
        """`types_at(length)` as a prefix table (None: use the regex, or no type admits it;
        with build=False also when not built yet)."""
        if length not in self._table:
            if not build:
                return None
            tables = [fullmatch_table(p, length) for p in self._admitted(length)]
            ok = tables and all(t is not None for t in tables)
            self._table[length] = union(tables) if ok else None  # type: ignore[arg-type]
        return self._table[length]

    def general_table(self, length: int, build: bool = True) -> Table | None:
        return fullmatch_table(self.general_raw, length, build) if self.general_raw else None


def _desc(desc: object) -> tuple[str, frozenset[int] | None] | None:
    """A type desc as (pattern, allowed lengths); None if `_is_number_matching_desc` never holds."""
    pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
    if not pattern:
        return None
    lengths = tuple(desc.possible_length)  # type: ignore[attr-defined]
    return pattern, (frozenset(lengths) if lengths else None)


def _last_group_only(pattern: str) -> str | None:
    """Keep only the last capturing group (named g); None if the pattern is too odd to rewrite."""
    compiled = re.compile(pattern)
    if compiled.groups == 0 or "\\(" in pattern or "[(" in pattern:
        return None
    out, seen = [], 0
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "(" and not pattern.startswith("(?", i):
            seen += 1
            out.append("(?P<g>" if seen == compiled.groups else "(?:")
        else:
            out.append(ch)
        i += 1
    rewritten = "".join(out)
    return rewritten if re.compile(rewritten).groups == 1 else None


def _group_min_width(pattern: str, group: int) -> int:
    """Minimum width of a capturing group: an empty capture would look like no capture."""

    def walk(items: object) -> int | None:
        for op, av in items:  # type: ignore[attr-defined]
            if op is sre_parse.SUBPATTERN:
                if av[0] == group:
                    return int(av[-1].getwidth()[0])
                found = walk(av[-1])
            elif op is sre_parse.BRANCH:
                found = next((w for b in av[1] if (w := walk(b)) is not None), None)
            elif op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, sre_parse.POSSESSIVE_REPEAT):
                found = walk(av[2])
            elif op is sre_parse.ATOMIC_GROUP:
                found = walk(av)
            else:
                found = None
            if found is not None:
                return found
        return None

    width = walk(sre_parse.parse(pattern))
    return 0 if width is None else width


def _length_tables(meta: PhoneMetadata) -> tuple[np.ndarray, np.ndarray]:
    """`_test_number_length` verdicts per length, taken from phonenumbers itself."""
    verdicts = [_test_number_length("0" * n, meta) for n in range(LEN_CAP + 1)]
    reject = (
        ValidationResult.TOO_SHORT,
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
        ValidationResult.INVALID_LENGTH,
    )
    accept = np.array([v not in reject for v in verdicts])
    too_long = np.array([v == ValidationResult.TOO_LONG for v in verdicts])
    return accept, too_long


def _compile(meta: PhoneMetadata) -> Plan:
    general = meta.general_desc.national_number_pattern if meta.general_desc else None
    npfp = meta.national_prefix_for_parsing or None
    rule = meta.national_prefix_transform_rule or None
    last_group = _last_group_only(npfp) if (npfp and rule) else None
    # The transform applies only if the last group took part; RE2 reports a group that took
    # no part as "", so that group must never match "" for us to tell the two apart.
    exact = rule is None or (
        npfp is not None
        and last_group is not None
        and _group_min_width(npfp, re.compile(npfp).groups) > 0
    )
    accept, too_long = _length_tables(meta)
    general_lengths = tuple(meta.general_desc.possible_length) if meta.general_desc else ()
    general_len = np.array(
        [not general_lengths or n in general_lengths for n in range(LEN_CAP + 1)]
    )
    idd = meta.international_prefix or None
    descs = [_desc(getattr(meta, name)) for name in _TYPE_DESCS]
    if not meta.same_mobile_and_fixed_line_pattern:
        descs.append(_desc(meta.mobile))
    return Plan(
        cc=int(meta.country_code or 0),
        general=f"^(?:{general})$" if general else None,
        np_prefix=f"^(?:{npfp})" if npfp else None,
        np_literal=npfp if npfp and re.fullmatch("[0-9]+", npfp) else None,
        np_rule=rule,
        np_last_group=f"^(?:{last_group})" if last_group else None,
        np_exact=exact,
        accept_len=accept,
        too_long=too_long,
        general_len=general_len,
        idd=f"^(?:{idd})" if idd else None,
        idd_literal=idd if idd and re.fullmatch("[0-9]+", idd) else None,
        lead=f"^(?:{meta.leading_digits})" if meta.leading_digits else None,
        general_raw=general,
        types=tuple(d for d in descs if d is not None),
    )


@cache
def plan_for(cc: int, region: str) -> Plan | None:
    """`metadata_for_region_or_calling_code`, compiled once per process."""
    meta = PhoneMetadata.metadata_for_region_or_calling_code(cc, region)
    return None if meta is None else _compile(meta)


@cache
def region_plan(region: str) -> Plan:
    """The default region's plan; ValueError for a region phonenumbers does not know."""
    meta = PhoneMetadata.metadata_for_region(region, None)
    if meta is None:
        raise ValueError(f"unknown region {region!r}")
    return _compile(meta)


def main_plan(cc: int) -> Plan:
    """Metadata parse uses after extracting `cc`: that of `region_code_for_country_code(cc)`."""
    plan = plan_for(cc, COUNTRY_CODE_TO_REGION_CODE[cc][0])
    assert plan is not None
    return plan


_MAX_LEAD_WIDTH = 6  # leading_digits are short finite prefixes (NANP area codes, "74576")


@cache
def leads(cc: int) -> tuple[np.ndarray, int, tuple[int, ...]] | None:
    """For a shared code: which region's leading_digits match first, tabulated by prefix.

    Returns (table, width, positions): table[key] is the list position of the first region
    whose leading_digits match a prefix of any number starting with that key (-1: none), where
    key covers the first `width` digits (or the whole number if shorter). None if some
    leading_digits pattern is not a short finite prefix (then regions are tried one by one).
    """
    regions = COUNTRY_CODE_TO_REGION_CODE[cc]
    leads = []
    for i, region in enumerate(regions):
        plan = plan_for(cc, region)
        if plan is not None and plan.lead is not None:
            high = sre_parse.parse(plan.lead).getwidth()[1]
            if high > _MAX_LEAD_WIDTH:
                return None
            leads.append((i, plan.lead))
    if not leads:
        return None
    width = max(int(sre_parse.parse(p).getwidth()[1]) for _, p in leads)
    base = np.cumsum([0] + [10**k for k in range(width + 1)])  # where each key length starts
    table = np.full(int(base[-1]), -1, dtype=np.int64)
    for pos, pattern in reversed(leads):  # the earliest region wins
        by_length = prefix_match_tables(pattern[1:], width)  # drop the '^' anchor
        if by_length is None:
            return None
        for k, bits in enumerate(by_length):
            table[base[k] : base[k + 1]][bits] = pos
    return table, width, tuple(pos for pos, _ in leads)
