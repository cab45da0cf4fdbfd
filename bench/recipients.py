"""Recipient stage benchmark: 1M-row CSV and XLSX lists, ours vs a naive baseline, one run.

    .venv/bin/python -m bench.recipients [--rows N] [--only csv|xlsx] [--skip-baseline]

Generates (and caches under bench/data/) lists with the usual mess: formatted numbers, numeric
cells, ``.0`` floats, ``00``/``001`` prefixes, other countries, garbage, duplicates, two parameter
columns. Each case runs in its own subprocess, so its peak RSS is its own (``bench.peak``).

Ours:     ``prepare_recipients`` (read, normalize, dedupe, render, segments).
Baseline: pandas ``read_excel`` (openpyxl) / ``read_csv``, then per row ``phonenumbers.parse`` +
          ``is_valid_number`` (the documented pre-clean), dict dedupe, ``str.replace`` rendering
          and a per-row GSM check: what one writes without thinking about speed.
The run also counts rows where the two disagree (msisdn or state); it must print 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.peak import own_peak_mb

DATA = Path(__file__).resolve().parent / "data"
TEXT = "Hi {0}, your code is {1}. Reply STOP to opt out"
REGION = "US"
SEED = 20240601

_AREA = ["305", "786", "212", "646", "917", "415", "312", "213", "702", "404", "617", "206"]
_NAMES = ["Ana", "Bruno", "Carla", "Dario", "Élodie", "José", "María", "Zoë", "Luis", "Olivia",
          "Noah", "Emma", "Liam", "Sofía", "Mateo", "Chloé", "Björn", "Ngozi", "Wei", "Priya"]
_FOREIGN = ["+44 7400 {a}{b}", "+52 55 {a} {b}", "0058 412 {a}{b4}", "+34 612 {a3} {b3}",
            "+49 1512 {a}{b}", "+57 300 {a3} {b}"]
_GARBAGE = ["n/a", "", "12", "abc", "1.30567E+10", "call me", "555-CALL", "0", "-", "#N/A"]


def _us(rng: random.Random) -> tuple[str, str, str]:
    return rng.choice(_AREA), str(rng.randint(200, 999)), f"{rng.randint(0, 9999):04d}"


def generate_rows(n: int, seed: int = SEED) -> list[tuple[str | int, str, str | int]]:
    """(phone, name, code): phone is int when a spreadsheet would hold a numeric cell."""
    rng = random.Random(seed)
    rows: list[tuple[str | int, str, str | int]] = []
    for _ in range(n):
        roll = rng.random()
        phone: str | int
        if rows and roll < 0.06:  # a duplicate: the same raw value or the same number reformatted
            earlier = rows[rng.randrange(len(rows))][0]
            phone = earlier
        elif roll < 0.36:
            a, x, line = _us(rng)
            phone = f"1{a}{x}{line}"
        elif roll < 0.52:
            a, x, line = _us(rng)
            phone = int(f"1{a}{x}{line}") if rng.random() < 0.7 else int(f"{a}{x}{line}")
        elif roll < 0.62:
            a, x, line = _us(rng)
            phone = f"({a}) {x}-{line}"
        elif roll < 0.72:
            a, x, line = _us(rng)
            phone = f"+1 {a}-{x}-{line}"
        elif roll < 0.77:
            a, x, line = _us(rng)
            phone = f"{a}.{x}.{line}"
        elif roll < 0.83:
            a, x, line = _us(rng)
            phone = rng.choice(["001", "00 1 ", "+1"]) + f"{a}{x}{line}"
        elif roll < 0.86:
            a, x, line = _us(rng)
            phone = f"{a}{x}{line}.0"  # a float that went through a careless export
        elif roll < 0.97:
            a = f"{rng.randint(0, 9999):04d}"
            phone = rng.choice(_FOREIGN).format(
                a=a, b=f"{rng.randint(0, 9999):04d}", a3=a[:3], b3=f"{rng.randint(0, 999):03d}",
                b4=f"{rng.randint(0, 999):03d}")
        else:
            phone = rng.choice(_GARBAGE)
        code: str | int = rng.randint(1, 99999) if rng.random() < 0.5 else f"{rng.randint(0, 9999):04d}"
        rows.append((phone, rng.choice(_NAMES), code))
    return rows


def write_csv(path: Path, rows: list[tuple[str | int, str, str | int]]) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["phone", "name", "code"])
        writer.writerows(rows)


def write_xlsx(path: Path, rows: list[tuple[str | int, str, str | int]]) -> None:
    """xlsxwriter with a shared-string table, as Excel and LibreOffice write them."""
    import xlsxwriter  # type: ignore[import-untyped]

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("Recipients")
    ws.write_row(0, 0, ["phone", "name", "code"])
    for i, (phone, name, code) in enumerate(rows, start=1):
        if isinstance(phone, int):
            ws.write_number(i, 0, phone)
        else:
            ws.write_string(i, 0, phone)
        ws.write_string(i, 1, name)
        if isinstance(code, int):
            ws.write_number(i, 2, code)
        else:
            ws.write_string(i, 2, code)
    wb.close()


def ensure_files(n: int) -> dict[str, Path]:
    files = {"csv": DATA / f"recipients-{n}.csv", "xlsx": DATA / f"recipients-{n}.xlsx"}
    if all(p.exists() for p in files.values()):
        return files
    t0 = time.perf_counter()
    rows = generate_rows(n)
    for kind, path in files.items():
        if not path.exists():
            tmp = path.with_suffix(".tmp" + path.suffix)
            (write_csv if kind == "csv" else write_xlsx)(tmp, rows)
            tmp.rename(path)
    print(f"generated {n:,} rows in {time.perf_counter() - t0:.1f} s under {DATA}", flush=True)
    return files


# --- the two implementations, each run in a child process ------------------------------------


def run_ours(path: Path, verdicts: Path) -> dict[str, Any]:
    from jobs.recipients import prepare_recipients

    t0 = time.perf_counter()
    prepared = prepare_recipients(path, TEXT, region=REGION)
    wall = time.perf_counter() - t0
    frame = prepared.frame
    _save_verdicts(verdicts, frame["msisdn"].array, frame["state"].astype(str).array)
    return {"wall": wall, "rows": len(frame), "summary": prepared.summary.as_dict()}


def run_baseline(path: Path, verdicts: Path) -> dict[str, Any]:
    import pandas as pd

    from jobs.phones import normalize_one

    t0 = time.perf_counter()
    if path.suffix == ".xlsx":
        df = pd.read_excel(path, engine="openpyxl", dtype=str)
    else:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    seen: dict[str, int] = {}
    msisdns: list[str | None] = []
    states: list[str] = []
    segments = 0
    gsm = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNO"
              "PQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
    ext = set("\f^{}\\[~]|€")
    for row, (raw, name, code) in enumerate(df.itertuples(index=False, name=None), start=1):
        raw = None if pd.isna(raw) or raw == "" else str(raw)
        msisdn, _ = normalize_one(raw, REGION)
        msisdns.append(msisdn)
        if msisdn is None:
            states.append("REJECTED")
            continue
        if msisdn in seen:
            states.append("DUPLICATE")
            continue
        seen[msisdn] = row
        states.append("READY")
        params = ["" if pd.isna(v) else str(v).strip() for v in (name, code)]
        text = TEXT
        for k, value in enumerate(params):
            text = text.replace(f"{{{k}}}", value)
        if all(c in gsm or c in ext for c in text):
            units = len(text) + sum(c in ext for c in text)
            segments += 1 if units <= 160 else -(-units // 153)
        else:
            units = len(text.encode("utf-16-le")) // 2
            segments += 1 if units <= 70 else -(-units // 67)
    wall = time.perf_counter() - t0
    _save_verdicts(verdicts, msisdns, states)
    return {"wall": wall, "rows": len(df), "segments": segments}


def _save_verdicts(path: Path, msisdns: Any, states: Any) -> None:
    """Per row (msisdn, state) as Arrow IPC: the parent compares the two runs row by row."""
    import pyarrow as pa

    table = pa.table({"msisdn": pa.array(msisdns, pa.large_string()),
                      "state": pa.array(states, pa.large_string())})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _disagreements(a: Path, b: Path) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc

    left = pa.ipc.open_file(pa.memory_map(str(a))).read_all()
    right = pa.ipc.open_file(pa.memory_map(str(b))).read_all()
    if left.num_rows != right.num_rows:
        return abs(left.num_rows - right.num_rows) + min(left.num_rows, right.num_rows)
    differ = 0
    for name in ("msisdn", "state"):
        x, y = left[name], right[name]
        same = pc.or_kleene(pc.equal(x, y), pc.and_(pc.is_null(x), pc.is_null(y)))
        differ_mask = pc.invert(pc.fill_null(same, False))
        differ += pc.sum(differ_mask).as_py() or 0
    return differ


# --- parent ---------------------------------------------------------------------------------


def _child(case: str, path: Path) -> dict[str, Any]:
    """Run one case in a fresh interpreter; it reports its own peak (``bench.peak``)."""
    out = DATA / f".{case}-{path.suffix[1:]}.json"
    verdicts = out.with_suffix(".arrow")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.recipients", "--child", case, str(path), str(out)],
        cwd=Path(__file__).resolve().parents[1])
    _, status, _ = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{case} on {path.name} failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    result["verdicts"] = str(verdicts)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recipients")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("csv", "xlsx"))
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "PATH", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        case, path, out = args.child
        run = run_ours if case == "ours" else run_baseline
        result = run(Path(path), Path(out).with_suffix(".arrow"))
        result["peak_rss_mb"] = own_peak_mb()
        Path(out).write_text(json.dumps(result))
        return 0

    files = ensure_files(args.rows)
    kinds = [args.only] if args.only else ["csv", "xlsx"]
    targets = {"csv": 1.0, "xlsx": 3.0}
    print(f"{'case':<16}{'wall s':>9}{'rows/s':>13}{'peak MB':>10}")
    failed = False
    for kind in kinds:
        ours = _child("ours", files[kind])
        _line(f"{kind} ours", ours)
        summary = ours["summary"]
        print(f"    ready {summary['ready']:,}  rejected {summary['rejected']:,}  duplicates "
              f"{summary['duplicates']:,}  segments {summary['segments']:,}")
        ok_time = ours["wall"] <= targets[kind]
        ok_mem = kind != "xlsx" or ours["peak_rss_mb"] <= 600
        if not args.skip_baseline:
            base = _child("baseline", files[kind])
            _line(f"{kind} baseline", base)
            ratio = base["wall"] / ours["wall"]
            diff = _disagreements(Path(ours["verdicts"]), Path(base["verdicts"]))
            print(f"    speed-up x{ratio:.1f} (target >= 10), rows that disagree {diff} (must be "
                  f"0), segments ours {summary['segments']:,} vs baseline {base['segments']:,}")
            failed |= ratio < 10 or diff != 0 or base["segments"] != summary["segments"]
            Path(base["verdicts"]).unlink(missing_ok=True)
        Path(ours["verdicts"]).unlink(missing_ok=True)
        print(f"    target: <= {targets[kind]:.0f} s {'ok' if ok_time else 'MISSED'}"
              + (f", <= 600 MB {'ok' if ok_mem else 'MISSED'}" if kind == "xlsx" else ""))
        failed |= not (ok_time and ok_mem)
    return 1 if failed else 0


def _line(name: str, result: dict[str, Any]) -> None:
    rate = result["rows"] / result["wall"] if result["wall"] else float("inf")
    print(f"{name:<16}{result['wall']:>9.2f}{rate:>13,.0f}{result['peak_rss_mb']:>10.0f}",
          flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
