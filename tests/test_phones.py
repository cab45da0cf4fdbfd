"""Phone normalization: the documented pre-clean, phonenumbers' verdict, and the vectorized
path agreeing with the per-row reference on every row."""

from __future__ import annotations

import random
import re

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pytest
from phonenumbers import PhoneNumberFormat as Fmt
from phonenumbers import PhoneNumberType as Type
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from jobs import phones_engine, phones_plans
from jobs.phones import (
    AMBIGUOUS_NUMBER,
    EMPTY,
    INVALID_NUMBER,
    NOT_A_NUMBER,
    normalize,
    normalize_one,
    normalize_reference,
    preclean,
)

# (region, raw, msisdn, reason)
CASES = [
    ("US", "+1 (305) 555-0103", "13055550103", None),
    ("US", "305-555-0104", "13055550104", None),
    ("US", "305.555.0101", "13055550101", None),
    ("US", "13055550101", "13055550101", None),
    ("US", "13055550101.0", "13055550101", None),
    ("US", "3055550101.00", "13055550101", None),
    ("US", "13055550101,0", "13055550101", None),
    ("US", "1.30567E+10", None, AMBIGUOUS_NUMBER),
    ("US", "1,30567E+10", None, AMBIGUOUS_NUMBER),
    ("US", "3.0555501E+9", None, AMBIGUOUS_NUMBER),
    ("US", "", None, EMPTY),
    ("US", "   ", None, EMPTY),
    ("US", "\u00a0", None, EMPTY),
    ("US", None, None, EMPTY),
    ("US", "12", None, INVALID_NUMBER),
    ("US", "+1 999 555 0101", None, INVALID_NUMBER),
    ("US", "584121234567", "584121234567", None),  # Venezuelan mobile, vendor form
    ("US", "0044 20 7946 0958", "442079460958", None),
    ("US", "00447911123456", "447911123456", None),
    ("US", "001 305 555 0101", "13055550101", None),
    ("US", "011 44 7911 123456", "447911123456", None),  # the US IDD, phonenumbers' own
    ("US", "+49 1512 3456789", "4915123456789", None),
    ("US", "004915123456789", "4915123456789", None),
    ("US", "4915123456789", "4915123456789", None),
    ("US", "+55 11 91234-5678", "5511912345678", None),
    ("US", "5511912345678", "5511912345678", None),
    ("US", "+91 98123 45678", "919812345678", None),
    ("US", "919812345678", "919812345678", None),
    ("US", "(613) 234-5678", "16132345678", None),  # Canada under US
    ("US", "1 876 927 1234", "18769271234", None),  # Jamaica under US
    ("US", "abc", None, NOT_A_NUMBER),
    ("US", "---", None, NOT_A_NUMBER),
    ("US", "+", None, NOT_A_NUMBER),
    ("US", "00", None, NOT_A_NUMBER),
    ("US", "++1 305", None, INVALID_NUMBER),
    ("US", "000", None, INVALID_NUMBER),
    ("US", "  +1\u00a0305\u2013555\u20130101  ", "13055550101", None),
    ("US", "\u200b3055550101", "13055550101", None),
    ("US", "305 555 0101 ext 12", "13055550101", None),
    ("US", "+1 (800) FLOWERS", "18003569377", None),
    ("US", "9" * 43, None, INVALID_NUMBER),
    ("GB", "07911 123456", "447911123456", None),
    ("GB", "020 7946 0958", "442079460958", None),
    ("GB", "447911123456", "447911123456", None),
    ("GB", "13055550101", "13055550101", None),  # invalid in GB, valid as +1
    ("AU", "0011 44 7911 123456", "447911123456", None),  # AU's own IDD is not '00'->'+'
    ("AU", "0412 345 678", "61412345678", None),
    ("DE", "01512 3456789", "4915123456789", None),
    ("BR", "(11) 91234-5678", "5511912345678", None),
    ("BR", "0 15 11 91234 5678", "5511912345678", None),  # carrier code, transform rule
    ("JM", "876 927 1234", "18769271234", None),
    ("JM", "927 1234", None, INVALID_NUMBER),
    ("IN", "098123 45678", "919812345678", None),
]


@pytest.mark.parametrize(("region", "raw", "msisdn", "reason"), CASES)
def test_case(region: str, raw: str | None, msisdn: str | None, reason: str | None) -> None:
    """Each documented case gets the same answer per row and vectorized."""
    assert normalize_one(raw, region) == (msisdn, reason)
    got = normalize(pd.Series([raw], dtype="str"), region)
    assert (_plain(got["msisdn"]), _plain(got["reason"])) == ([msisdn], [reason])


def test_cases_in_one_column_per_region() -> None:
    """The same cases as whole columns (rows of one column interact through grouping)."""
    for region in sorted({c[0] for c in CASES}):
        rows = [c for c in CASES if c[0] == region]
        _assert_matches_reference([c[1] for c in rows], region)
        got = normalize(pd.Series([c[1] for c in rows], dtype="str"), region)
        assert _plain(got["msisdn"]) == [c[2] for c in rows]


def test_preclean_rules() -> None:
    """The documented pre-clean of one value."""
    assert preclean("  +1 (305) 555-0103\u00a0") == "+13055550103"
    assert preclean("13056708084.0") == "13056708084"
    assert preclean("305.555.0100") == "3055550100"  # a formatted number, not a numeric cell
    assert preclean("0044 20 7946 0958") == "+442079460958"
    assert preclean("0011 44 7911 123456", "AU") == "0011447911123456"
    assert preclean("0011 44 7911 123456", "US") == "+11447911123456"
    assert preclean("305/555\u20130101") == "3055550101"


def test_output_shape_and_dtypes() -> None:
    """Same index as the input; msisdn/reason are string columns with <NA> for the other case."""
    raw = pd.Series(["3055550101", "abc", None], index=[10, 20, 30], dtype="str")
    got = normalize(raw, "us")
    assert list(got.index) == [10, 20, 30]
    assert list(got.columns) == ["msisdn", "reason"]
    assert isinstance(got["msisdn"].dtype, pd.StringDtype) and got["msisdn"].dtype.na_value is pd.NA
    assert isinstance(got["reason"].dtype, pd.StringDtype)
    assert _plain(got["msisdn"]) == ["13055550101", None, None]
    assert _plain(got["reason"]) == [None, NOT_A_NUMBER, EMPTY]


def test_object_column_with_numbers_and_missing() -> None:
    """Object columns (numbers from a spreadsheet, NaN, pd.NA) are read as their text."""
    raw = pd.Series([13055550101, 13055550101.0, float("nan"), pd.NA, "305-555-0104"], dtype=object)
    got = normalize(raw, "US")
    assert _plain(got["msisdn"]) == ["13055550101", "13055550101", None, None, "13055550104"]
    assert _plain(got["reason"]) == [None, None, EMPTY, EMPTY, None]


def test_empty_column() -> None:
    """No rows in, no rows out."""
    got = normalize(pd.Series([], dtype="str"), "US")
    assert len(got) == 0 and list(got.columns) == ["msisdn", "reason"]


def test_unknown_region_is_refused() -> None:
    """A region phonenumbers does not know would reject every national number: refuse it."""
    with pytest.raises(ValueError, match="unknown region"):
        normalize(pd.Series(["3055550101"]), "XX")
    with pytest.raises(ValueError, match="unknown region"):
        normalize_reference(["3055550101"], "001")


def test_every_region_compiles_for_re2() -> None:
    """All metadata patterns compile in RE2 and every transform rule can be emulated."""
    for cc, regions in COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            plan = phones_plans.plan_for(cc, region)
            assert plan is not None and plan.np_exact, region
            patterns = [plan.general, plan.np_prefix, plan.idd, plan.lead]
            patterns += [plan.types_at(n) for n in range(1, 18)]
            values = pa.array(["123"], pa.large_string())
            for pattern in filter(None, patterns):
                phones_engine.match(values, pattern)


def test_prefix_tables_agree_with_the_patterns() -> None:
    """Each pattern tabulated by its first digits gives re's full-match verdict (a third of
    the regions, sampled numbers; `bench.phones --all-regions` checks every region)."""
    rng = random.Random(5)
    checked = 0
    for cc, regions in list(COUNTRY_CODE_TO_REGION_CODE.items())[::3]:
        for region in regions:
            plan = phones_plans.plan_for(cc, region)
            assert plan is not None
            for length in range(1, 18):
                for pattern, table in (
                    (plan.general, plan.general_table(length)),
                    (plan.types_at(length), plan.types_table(length)),
                ):
                    if pattern is None or table is None:
                        continue
                    k, packed = table
                    bits = np.unpackbits(packed, count=10**k, bitorder="little").astype(bool)
                    hits = np.flatnonzero(bits)
                    keys = [
                        f"{v:0{k}d}" if k else "" for v in rng.sample(list(hits), min(8, len(hits)))
                    ]
                    keys += ["".join(rng.choices("0123456789", k=k)) for _ in range(8)]
                    for key in keys:
                        x = key + "".join(rng.choices("0123456789", k=length - k))
                        assert (re.match(pattern, x) is not None) == bits[int(key or 0)], (
                            region,
                            x,
                        )
                        checked += 1
    assert checked > 10_000


def test_leading_digits_tables_pick_the_first_region() -> None:
    """For shared country codes, the table names the first region whose leading_digits match."""
    rng = random.Random(6)
    for cc, regions in COUNTRY_CODE_TO_REGION_CODE.items():
        found = phones_plans.leads(cc) if len(regions) > 1 else None
        if found is None:
            continue
        table, width, _ = found
        base = np.cumsum([0] + [10**k for k in range(width + 1)])
        for _ in range(300):
            x = "".join(rng.choices("0123456789", k=rng.randint(0, 11)))
            plans_ = [phones_plans.plan_for(cc, r) for r in regions]
            want = next(
                (i for i, p in enumerate(plans_) if p and p.lead and re.match(p.lead, x)), -1
            )
            k = min(len(x), width)
            assert table[base[k] + int(x[:k] or 0)] == want, (cc, x)


# ---- property: the vectorized path equals the reference on a messy generated column --------


def test_matches_reference_on_20k_messy_values() -> None:
    """20,000 seeded values across all regions and number types: zero disagreements."""
    _assert_matches_reference(messy_values(20_000, seed=11, region="US"), "US")


@pytest.mark.parametrize("small_group", [0, 10**9], ids=["all-arrow", "all-one-by-one"])
def test_matches_reference_either_way_for_rare_codes(
    small_group: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rare country codes give the same answers column-wise and one by one."""
    monkeypatch.setattr(phones_engine, "SMALL_GROUP", small_group)
    _assert_matches_reference(messy_values(5_000, seed=12, region="US"), "US")


@pytest.mark.parametrize(
    "region", ["GB", "DE", "BR", "AR", "AU", "JP", "JM", "CA", "RU", "FI", "IT"]
)
def test_matches_reference_in_other_default_regions(region: str) -> None:
    """Other default regions: national prefixes, transform rules, shared codes, own IDDs."""
    _assert_matches_reference(
        messy_values(1_000, seed=ord(region[0]) + ord(region[1]), region=region), region
    )


def _assert_matches_reference(values: list[str | None], region: str) -> None:
    got = normalize(pd.Series(values, dtype="str"), region)
    want_m, want_r = normalize_reference(values, region)
    got_m, got_r = _plain(got["msisdn"]), _plain(got["reason"])
    bad = [
        (v, gm, gr, wm, wr)
        for v, gm, gr, wm, wr in zip(values, got_m, got_r, want_m, want_r, strict=True)
        if gm != wm or gr != wr
    ]
    assert not bad, f"{len(bad)} disagreements, e.g. {bad[:5]}"


def _plain(col: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else str(v) for v in col.tolist()]


_TYPES = [
    Type.FIXED_LINE,
    Type.MOBILE,
    Type.TOLL_FREE,
    Type.PREMIUM_RATE,
    Type.SHARED_COST,
    Type.VOIP,
    Type.PERSONAL_NUMBER,
    Type.PAGER,
    Type.UAN,
    Type.VOICEMAIL,
]
_SEPS = [" ", "-", ".", "/", "\u00a0", "", "", ""]
_GARBAGE = [
    "abc",
    "n/a",
    "N/A",
    "-",
    "+",
    "++1 305",
    "#N/A",
    "none",
    "x",
    "TBD",
    "1.30567E+10",
    "1,30567E+10",
    "3E5",
    "",
    "  ",
    "\u00a0",
    "tel:+13055550101",
    "305 555 0101 ext 12",
    "call 305",
    "+1 305 555 0101;ext=5",
    "(305) 555-0101 x302/x2303",
    "'13055550101",
    "++",
    "+0",
    "+00",
    "0",
    "00",
    "000",
    "1-800-FLOWERS",
    "+1 (800) FLOWERS",
    "١٢٣٤٥٦٧٨٩٠",
    "３０５５５５０１０１",
    "305,555,0101",
    "*123#",
    "+-1",
    "\u2013",
    "0 0 44 7911 123456",
]


def _examples() -> list[phonenumbers.PhoneNumber]:
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        out += [phonenumbers.example_number_for_type(region, t) for t in _TYPES]
    for cc in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        out.append(phonenumbers.example_number_for_non_geo_entity(cc))
    return [n for n in out if n is not None]


_EXAMPLES = _examples()


def _mutate(d: str, rng: random.Random) -> str:
    i = rng.randrange(len(d))
    r = rng.random()
    if r < 0.33:
        return d[:i] + d[i + 1 :]
    if r < 0.66:
        return d[:i] + str(rng.randrange(10)) + d[i:]
    return d[:i] + str(rng.randrange(10)) + d[i + 1 :]


def _spaced(d: str, rng: random.Random) -> str:
    sep = rng.choice(_SEPS)
    parts = [d[i : i + 3] for i in range(0, len(d), 3)]
    s = sep.join(parts)
    return "(" + s[:3] + ")" + s[3:] if rng.random() < 0.2 and len(s) > 4 else s


def _from_example(rng: random.Random, region: str) -> str:
    num = rng.choice(_EXAMPLES)
    cc, nsn = str(num.country_code), phonenumbers.national_significant_number(num)
    if rng.random() < 0.3:
        nsn = _mutate(nsn, rng)
    form = rng.randrange(12)
    plain = {
        0: "+" + cc + nsn,
        1: cc + nsn,
        2: "00" + cc + nsn,
        3: "011" + cc + nsn,
        4: cc + nsn + ".0",
        8: nsn,
        9: "0" + nsn,
    }
    if form in plain:
        return plain[form]
    if form == 5:
        return "+" + cc + " " + _spaced(nsn, rng)
    if form == 10:
        return _spaced(cc + nsn, rng)
    fmt = {6: Fmt.NATIONAL, 7: Fmt.INTERNATIONAL}.get(form)
    if fmt is not None:
        return phonenumbers.format_number(num, fmt)
    return phonenumbers.format_out_of_country_calling_number(num, region)


def messy_values(n: int, seed: int, region: str) -> list[str | None]:
    """Example numbers of every region and type in every format, mutated numbers, random
    digits behind every kind of prefix, garbage, blanks and odd whitespace."""
    rng = random.Random(seed)
    prefixes = ["", "", "", "+", "00", "0", "1", "011", "001", "+0", "+1", "8", "810", "0011", "9"]
    out: list[str | None] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.55:
            s = _from_example(rng, region)
        elif r < 0.85:
            s = rng.choice(prefixes) + "".join(
                str(rng.randrange(10)) for _ in range(rng.randint(1, 22))
            )
            s = s + ".0" if rng.random() < 0.1 else s
            s = _spaced(s, rng) if rng.random() < 0.1 else s
        elif r < 0.97:
            s = rng.choice(_GARBAGE)
        else:
            out.append(None)
            continue
        if rng.random() < 0.05:
            s = rng.choice([" ", "\u00a0", "\t", "\u200b"]) + s + rng.choice([" ", "", "\u00a0"])
        out.append(s)
    return out


def test_generator_covers_the_mess() -> None:
    """The property sample really holds every shape it claims (guards the tests above)."""
    values = [v for v in messy_values(5_000, seed=3, region="US") if v is not None]
    assert any(v.startswith("+") for v in values) and any(v.startswith("00") for v in values)
    assert any(v.endswith(".0") for v in values) and any(re.search("[A-Za-z]", v) for v in values)
    assert len({len(re.sub(r"\D", "", v)) for v in values}) > 15
    assert np.mean([v is None for v in messy_values(5_000, seed=3, region="US")]) > 0.01
