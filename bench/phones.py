"""Benchmark: vectorized `normalize` vs per-row phonenumbers on 1M messy phone cells.

    .venv/bin/python -m bench.phones [--rows N] [--region US] [--seed 7] [--skip-reference]
    .venv/bin/python -m bench.phones --all-regions 1500     # agreement in every default region

Prints rows/s for both, the ratio, the disagreements (must be 0) and the fallback fraction.
The first call in a process also compiles the tables of the regions it meets; the warm figure
is what a long-lived worker sees.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import pandas as pd
import phonenumbers

from jobs import phones

# Countries a US sender's lists mostly hold besides the US (vendor files: Latin America, EU).
_ABROAD = (
    "VE",
    "MX",
    "CO",
    "BR",
    "AR",
    "PE",
    "CL",
    "DO",
    "PR",
    "CA",
    "JM",
    "GB",
    "DE",
    "ES",
    "FR",
    "IT",
    "IN",
    "PH",
    "NG",
    "CN",
)
_GARBAGE = ("n/a", "N/A", "-", "none", "#N/A", "x", "TBD", "?", "--", "null")
_ODD = (
    "call 305 555 0101",
    "tel:+13055550101",
    "305 555 0101 ext 12",
    "+1 305 555 0101;ext=5",
    "'13055550101",
    "305,555,0101",
    "１３０５５５５０１０１",
    "1-800-FLOWERS",
)


def _us_area_codes() -> list[str]:
    """Area codes phonenumbers accepts for a typical subscriber number (plus a few it doesn't)."""
    good = [
        str(a)
        for a in range(201, 990)
        if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{a}2345678", None))
    ]
    return good + ["555", "123", "999"]


def _abroad_prefixes() -> list[tuple[str, str, int]]:
    """(country code, leading NSN digits, digits to randomize) from phonenumbers' examples."""
    out = []
    for region in _ABROAD:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            ex = phonenumbers.example_number_for_type(region, kind)
            if ex is not None:
                nsn = phonenumbers.national_significant_number(ex)
                out.append((str(ex.country_code), nsn[:-6], 6))
    return out


def _sep(digits: str, rng: random.Random) -> str:
    sep = rng.choice(" -.")
    return sep.join(digits[i : i + 3] for i in range(0, len(digits), 3))


def _us(rng: random.Random, areas: list[str]) -> str:
    a, x, y = rng.choice(areas), rng.randint(200, 999), rng.randint(0, 9999)
    d = f"{a}{x}{y:04d}"
    form = rng.random()
    if form < 0.25:
        return d
    if form < 0.40:
        return f"({a}) {x}-{y:04d}"
    if form < 0.50:
        return f"{a}-{x}-{y:04d}"
    if form < 0.62:
        return "1" + d
    if form < 0.72:
        return "1" + d + ".0"
    if form < 0.82:
        return "+1 " + _sep(d, rng)
    if form < 0.90:
        return "+1" + d
    if form < 0.95:
        return "001 " + _sep(d, rng)
    return f"{a}.{x}.{y:04d}"


def _abroad(rng: random.Random, prefixes: list[tuple[str, str, int]]) -> str:
    cc, lead, k = rng.choice(prefixes)
    nsn = lead + "".join(str(rng.randrange(10)) for _ in range(k))
    form = rng.random()
    if form < 0.45:
        return cc + nsn  # the vendor's form: international digits, no '+'
    if form < 0.65:
        return "+" + cc + " " + _sep(nsn, rng)
    if form < 0.80:
        return "00" + cc + nsn
    if form < 0.90:
        return cc + nsn + ".0"
    return "+" + cc + nsn


def messy_column(n: int, seed: int = 7) -> list[str | None]:
    """A seeded column like the operators' files: ~94% unique, every kind of mess."""
    rng = random.Random(seed)
    areas, prefixes = _us_area_codes(), _abroad_prefixes()
    out: list[str | None] = []
    for _ in range(n):
        r = rng.random()
        if out and r < 0.035:
            out.append(out[rng.randrange(len(out))])  # duplicates
        elif r < 0.62:
            out.append(_us(rng, areas))
        elif r < 0.92:
            out.append(_abroad(rng, prefixes))
        elif r < 0.94:
            out.append(rng.choice(("", " ", "\u00a0", None)))
        elif r < 0.95:
            out.append(f"{rng.randint(1, 9)}.{rng.randint(10000, 99999)}E+{rng.randint(9, 11)}")
        elif r < 0.96:
            out.append(rng.choice(_GARBAGE))
        elif r < 0.9605:
            out.append(rng.choice(_ODD))
        else:  # random digit noise: short codes, typos, extra digits
            out.append("".join(str(rng.randrange(10)) for _ in range(rng.randint(3, 16))))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--region", default="US")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--all-regions", type=int, metavar="N", help="N test values per region")
    args = ap.parse_args(argv)
    if args.all_regions:
        return all_regions(args.all_regions)

    values = messy_column(args.rows, args.seed)
    series = pd.Series(values, dtype="str")
    unique = series.nunique(dropna=False) / len(series)
    print(f"{args.rows:,} rows, region {args.region}, {unique:.1%} unique")

    stats: dict[str, int] = {}
    t0 = time.perf_counter()
    phones.normalize(series, args.region)
    cold = time.perf_counter() - t0
    runs, cpu = [], []
    for _ in range(5):  # warm: the compiled tables stay for the process (a worker's life)
        t0, c0 = time.perf_counter(), time.process_time()
        got = phones.normalize(series, args.region, stats=stats)
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    vec = min(runs)
    print(
        f"normalize:  {vec:6.3f} s  {args.rows / vec:>12,.0f} rows/s  (best of 5 warm; median "
        f"{sorted(runs)[2]:.3f} s; cpu {min(cpu):.3f} s; first call in the process {cold:.3f} s)"
    )
    print(
        f"  per-row fallback {stats['fallback']:,} rows ({stats['fallback'] / args.rows:.3%}), "
        f"rare country codes one by one {stats['small_groups']:,} rows "
        f"({stats['small_groups'] / args.rows:.3%})"
    )
    print(f"  rejected: {got['reason'].value_counts(dropna=True).to_dict()}")
    if args.skip_reference:
        return 0

    t0, c0 = time.perf_counter(), time.process_time()
    ref_m, ref_r = phones.normalize_reference(values, args.region)
    ref = time.perf_counter() - t0
    print(
        f"reference:  {ref:6.3f} s  {args.rows / ref:>12,.0f} rows/s  "
        f"(cpu {time.process_time() - c0:.3f} s)"
    )
    print(f"ratio:      {ref / vec:.1f}x")
    got_m = got["msisdn"].astype(object).where(got["msisdn"].notna(), None).tolist()
    got_r = got["reason"].astype(object).where(got["reason"].notna(), None).tolist()
    bad = [i for i in range(args.rows) if got_m[i] != ref_m[i] or got_r[i] != ref_r[i]]
    print(f"disagreements: {len(bad)}")
    for i in bad[:10]:
        print(f"  {values[i]!r}: got {got_m[i]}/{got_r[i]} want {ref_m[i]}/{ref_r[i]}")
    return 1 if bad else 0


def all_regions(n: int) -> int:
    """Every supported default region, on the property test's adversarial sample, both with
    rare country codes column-wise and one by one: prints the disagreements (must be 0)."""
    from jobs import phones_engine
    from tests.test_phones import messy_values  # the property test's generator

    total = 0
    for small_group in (0, 10**9):
        phones_engine.SMALL_GROUP = small_group
        for i, region in enumerate(sorted(phonenumbers.SUPPORTED_REGIONS)):
            values = messy_values(n, seed=1000 + i, region=region)
            got = phones.normalize(pd.Series(values, dtype="str"), region)
            want_m, want_r = phones.normalize_reference(values, region)
            got_m = [None if pd.isna(v) else v for v in got["msisdn"]]
            got_r = [None if pd.isna(v) else v for v in got["reason"]]
            bad = [
                (v, gm, gr, wm, wr)
                for v, gm, gr, wm, wr in zip(values, got_m, got_r, want_m, want_r, strict=True)
                if gm != wm or gr != wr
            ]
            total += len(bad)
            if bad:
                print(f"{region}: {len(bad)} disagreements, e.g. {bad[:3]}")
    count = len(phonenumbers.SUPPORTED_REGIONS)
    print(f"{count} regions x {n} values x 2 ways: {total} disagreements")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
