"""Full-match of a digit pattern at one length, as a lookup table on the first K digits.

phonenumbers' national number patterns are finite unions of fixed-length runs of digit classes
("(?:2742|305[3-9]|...)[2-9]\\d{6}"): after at most a few leading digits, every remaining
position accepts any digit. For such a pattern and a length L, "does x fullmatch" depends only on
x's first K digits, so a table of 10**K booleans answers it for a whole column in one numpy
gather, where RE2 through Arrow costs ~50 ns a row a pattern.

The table is built from the pattern's own parse tree (the stdlib parser), expanding it into its
runs of digit classes; a pattern that does not expand (unbounded repeats, anchors inside, too
many runs, K too large) gets None and the caller keeps using the regex. The same expansion
tabulates leading_digits (prefix matches) for regions sharing a country code. Tables are packed
bits: all regions at all lengths take ~10 MB; a run touches only the regions in its data.
"""

from __future__ import annotations

import re
import re._constants as sre_c
import re._parser as sre_parse
from functools import cache
from typing import Any

import numpy as np

MAX_K = 6  # tables of at most 10**6 entries
_MAX_RUNS = 20_000  # expansions beyond this are left to the regex
_FULL = (1 << 10) - 1
_DIGITS = [
    np.array([d for d in range(10) if mask >> d & 1], dtype=np.int64) for mask in range(1024)
]

Runs = dict[int, set[tuple[int, ...]]]  # length -> runs of digit-class bitmasks


class _Unsupported(Exception):
    """The pattern uses something this expansion does not model."""


def _class_mask(items: list[tuple[Any, Any]]) -> int:
    mask, negate = 0, False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            mask |= _digit_bit(int(av))
        elif op is sre_c.RANGE:
            lo, hi = av
            for code in range(max(lo, 48), min(hi, 57) + 1):
                mask |= 1 << (code - 48)
        elif op is sre_c.CATEGORY and av in (sre_c.CATEGORY_DIGIT, sre_c.CATEGORY_UNI_DIGIT):
            mask = _FULL
        else:
            raise _Unsupported(op)
    return _FULL & ~mask if negate else mask


def _digit_bit(code: int) -> int:
    return 1 << (code - 48) if 48 <= code <= 57 else 0


def _concat(a: Runs, b: Runs, limit: int) -> Runs:
    out: Runs = {}
    for la, runs_a in a.items():
        for lb, runs_b in b.items():
            if la + lb <= limit:
                out.setdefault(la + lb, set()).update(x + y for x in runs_a for y in runs_b)
    if sum(len(v) for v in out.values()) > _MAX_RUNS:
        raise _Unsupported("too many runs")
    return out


def _expand(items: Any, limit: int) -> Runs:
    """The runs of a parsed sequence, up to `limit` long."""
    result: Runs = {0: {()}}
    for op, av in items:
        result = _concat(result, _expand_one(op, av, limit), limit)
    return result


def _expand_one(op: Any, av: Any, limit: int) -> Runs:
    if op is sre_c.LITERAL:
        bit = _digit_bit(int(av))
        return {1: {(bit,)}} if bit else {}
    if op is sre_c.NOT_LITERAL:
        return {1: {(_FULL & ~_digit_bit(int(av)),)}}
    if op is sre_c.ANY:
        return {1: {(_FULL,)}}
    if op is sre_c.IN:
        mask = _class_mask(av)
        return {1: {(mask,)}} if mask else {}
    if op is sre_c.BRANCH:
        out: Runs = {}
        for branch in av[1]:
            for n, runs in _expand(branch, limit).items():
                out.setdefault(n, set()).update(runs)
        return out
    if op is sre_c.SUBPATTERN:
        _, add_flags, del_flags, sub = av
        if add_flags or del_flags:
            raise _Unsupported("flags")
        return _expand(sub, limit)
    if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
        low, high, sub = av
        high = min(high, limit)  # only runs up to `limit` long matter, even for x* or x+
        one = _expand(sub, limit)
        repeated: Runs = {0: {()}} if low == 0 else {}
        power: Runs = {0: {()}}
        for count in range(1, high + 1):
            power = _concat(power, one, limit)
            if not power:
                break
            if count >= low:
                for n, runs in power.items():
                    repeated.setdefault(n, set()).update(runs)
        return repeated
    raise _Unsupported(op)


Table = tuple[int, np.ndarray]  # (K, bits over int(x[:K]), packed 8 to a byte, little-endian)
MAX_LENGTH = 17  # phonenumbers' longest national number
_NEVER: Table = (0, np.packbits(np.zeros(1, dtype=bool), bitorder="little"))


@cache
def _parsed(pattern: str) -> sre_parse.SubPattern:
    return sre_parse.parse(pattern)


def _runs(pattern: str, limit: int) -> Runs | None:
    try:
        return _expand(_parsed(pattern), limit)
    except (_Unsupported, RecursionError, re.error):
        return None


def _mark(heads: set[tuple[int, ...]], k: int) -> np.ndarray:
    """Bits over int(key) for k-digit keys matching any of the runs' first k classes."""
    table = np.zeros(10**k, dtype=bool)
    for head in heads:
        keys = np.zeros(1, dtype=np.int64)
        for mask in head:
            keys = (keys[:, None] * 10 + _DIGITS[mask][None, :]).ravel()
        table[keys] = True
    return table


def _pack(k: int, bits: np.ndarray) -> Table:
    return k, np.packbits(bits, bitorder="little")


def _unpack(table: Table) -> np.ndarray:
    k, packed = table
    return np.unpackbits(packed, count=10**k, bitorder="little").astype(bool)


_BUILT: dict[str, dict[int, Table | None] | None] = {}  # pattern -> its tables (or None)


def _fullmatch_tables(pattern: str) -> dict[int, Table | None] | None:
    """Tables for every length at once (the expansion is the costly part; only tables stay)."""
    if pattern not in _BUILT:
        _BUILT[pattern] = _build(pattern)
    return _BUILT[pattern]


def _build(pattern: str) -> dict[int, Table | None] | None:
    runs = _runs(pattern, MAX_LENGTH)
    if runs is None:
        return None
    out: dict[int, Table | None] = {}
    for length, exact in runs.items():
        k = max((_significant(run) for run in exact), default=0)
        out[length] = _pack(k, _mark({run[:k] for run in exact}, k)) if k <= MAX_K else None
    return out


def fullmatch_table(pattern: str, length: int, build: bool = True) -> Table | None:
    """(K, bits): the raw metadata `pattern` fullmatches a `length`-digit x iff bit
    int(x[:K]) is set. None when the pattern cannot be tabulated (the caller uses a regex),
    or, with build=False, when it has not been tabulated yet (a regex compiles faster)."""
    if length > MAX_LENGTH or (not build and pattern not in _BUILT):
        return None
    tables = _fullmatch_tables(pattern)
    if tables is None:
        return None
    return tables.get(length, _NEVER)


def lookup(table: Table, keys: np.ndarray) -> np.ndarray:
    """The table's bits at int(x[:K]) keys."""
    packed = table[1]
    return ((packed[keys >> 3] >> (keys & 7).astype(np.uint8)) & 1).astype(bool)


def lookup_one(table: Table, key: int) -> bool:
    return bool(table[1][key >> 3] >> (key & 7) & 1)


def _significant(run: tuple[int, ...]) -> int:
    """Positions up to the last one that does not accept every digit."""
    return max((i + 1 for i, mask in enumerate(run) if mask != _FULL), default=0)


def _widen(bits: np.ndarray, own: int, k: int) -> np.ndarray:
    """The same bits over k-digit keys (k >= own)."""
    return np.repeat(bits, 10 ** (k - own))


def union(tables: list[Table]) -> Table:
    k = max((t[0] for t in tables), default=0)
    bits = np.zeros(10**k, dtype=bool)
    for table in tables:
        bits |= _widen(_unpack(table), table[0], k)
    return _pack(k, bits)


def prefix_match_tables(pattern: str, width: int) -> list[np.ndarray] | None:
    """For k = 0..width: bits over k-digit keys, true where `pattern` matches a prefix of the
    key (re.match). None unless every match is at most `width` digits long."""
    runs = _runs(pattern, width + 1)
    if runs is None or runs.get(width + 1):
        return None
    exact = {n: _mark(found, n) for n, found in runs.items() if n <= width}
    out = []
    for k in range(width + 1):
        bits = np.zeros(10**k, dtype=bool)
        for n, table in exact.items():
            if n <= k:
                bits |= _widen(table, n, k)
        out.append(bits)
    return out
