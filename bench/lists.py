"""Recipient lists for the pipeline benchmark, generated once and cached under ``bench/data/``.

Distinct numbers (US in assorted formats, some abroad) with a few bad cells, and a name and a
code column for ``TEXT``'s placeholders. The valid rows are counted by ``phonenumbers`` itself,
the reference both our pipeline and the naive baseline answer to, so the sandbox ledger must
end with exactly that many messages. Lists are cached (gitignored) with their counts;
``GENERATOR_VERSION`` keeps a stale list from being reused.
"""

from __future__ import annotations

import csv
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
#: The message of every send: {0} and {1} are the name and code columns.
TEXT = "Hi {0}, your code is {1}. Reply STOP to opt out"
REGION = "US"
SEED = 20240611
#: Bumped when the generator changes, so stale cached lists are not reused.
GENERATOR_VERSION = 1

_AREAS = ("305", "786", "212", "646", "917", "415", "312", "213", "702", "404", "617", "206",
          "718", "347", "512", "303")  # fmt: skip
_US_FORMS = (
    "1{a}{x}{l}",
    "+1 {a}-{x}-{l}",
    "({a}) {x}-{l}",
    "{a}.{x}.{l}",
    "{a}{x}{l}",
    "+1{a}{x}{l}",
)
#: (template, digits to fill): valid mobiles abroad, always written with their country code.
_ABROAD = (
    ("+44 7400 {d}", 6),
    ("+52 55 {d}", 8),
    ("+34 612 {d}", 6),
    ("+49 1512 {d}", 7),
    ("+58 412 {d}", 7),
)
_BAD = ("n/a", "12", "abc", "#N/A", "0000", "", "555-01", "call me")
_NAMES = ("Ana", "Bruno", "Carla", "Dario", "Élodie", "José", "María", "Zoë", "Luis", "Olivia",
          "Noah", "Emma", "Liam", "Sofía", "Mateo", "Chloé", "Björn", "Ngozi", "Wei", "Priya")  # fmt: skip


@dataclass(frozen=True)
class RecipientList:
    path: Path
    rows: int
    valid: int


def generate_rows(
    n: int, *, seed: int = SEED, abroad: float = 0.08, bad: float = 0.01
) -> list[tuple[str, str, str]]:
    """(phone, name, code) rows: distinct numbers (US in assorted formats, some abroad), a few
    bad cells. No duplicates, so the valid rows are exactly the SMS the sandbox must receive."""
    rng = random.Random(seed)
    kinds = [rng.random() for _ in range(n)]
    n_bad = sum(k < bad for k in kinds)
    n_abroad = sum(bad <= k < bad + abroad for k in kinds)
    us = iter(rng.sample(range(len(_AREAS) * 800 * 10_000), n - n_bad - n_abroad))
    foreign = iter(rng.sample(range(len(_ABROAD) * 1_000_000), n_abroad))
    rows = []
    for k in kinds:
        if k < bad:
            phone = rng.choice(_BAD)
        elif k < bad + abroad:
            value = next(foreign)
            template, digits = _ABROAD[value % len(_ABROAD)]
            tail = f"{value // len(_ABROAD):0{digits}d}"
            phone = template.format(d=tail)
        else:
            value = next(us)
            area, rest = _AREAS[value % len(_AREAS)], value // len(_AREAS)
            phone = rng.choice(_US_FORMS).format(
                a=area, x=200 + rest // 10_000, l=f"{rest % 10_000:04d}"
            )
        rows.append((phone, rng.choice(_NAMES), f"{rng.randrange(10_000):04d}"))
    return rows


def count_valid(phones: list[str]) -> int:
    """Valid numbers by phonenumbers itself, the reference both implementations answer to."""
    import phonenumbers

    valid = 0
    for phone in phones:
        try:
            valid += phonenumbers.is_valid_number(phonenumbers.parse(phone, REGION))
        except phonenumbers.NumberParseException:
            pass
    return valid


def recipient_list(n: int, *, bad: float = 0.01, abroad: float = 0.08) -> RecipientList:
    """The cached list of ``n`` rows (generated, and its valid rows counted, on first use)."""
    stem = f"pipeline-v{GENERATOR_VERSION}-{n}" + ("" if bad else "-clean")
    path, meta = DATA / f"{stem}.csv", DATA / f"{stem}.json"
    if path.exists() and meta.exists():
        info = json.loads(meta.read_text())
        return RecipientList(path, info["rows"], info["valid"])
    t0 = time.perf_counter()
    rows = generate_rows(n, bad=bad, abroad=abroad)
    DATA.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["phone", "name", "code"])
        writer.writerows(rows)
    valid = count_valid([r[0] for r in rows])
    tmp.replace(path)
    meta.write_text(json.dumps({"rows": n, "valid": valid, "seed": SEED}))
    print(
        f"  generated {path.name}: {n:,} rows, {valid:,} valid "
        f"({time.perf_counter() - t0:.1f} s, cached)",
        flush=True,
    )
    return RecipientList(path, n, valid)


def one_row_csv(i: int) -> bytes:
    """A 1-row list with its own number (so its own job id)."""
    return f"phone,name,code\n+1 305 7{i // 10_000 % 100:02d} {i % 10_000:04d},Ana,{i}\n".encode()
