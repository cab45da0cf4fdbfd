"""``make bench``: every benchmark, in order, each in its own process, then one summary.

    .venv/bin/python -m bench [--quick] [--only phones,recipients,ratelimit,pipeline]

Each module measures its naive baseline in the same run and prints its own figures; this runner
shows their output as it comes, reads the headline figures back from it, and ends with a table
(target / measured / baseline / ratio / result). Exit status 1 when any module missed a target
or failed. ``--quick`` shrinks every module's sizes for a smoke check (a few minutes in all).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.table import Row, print_table, row

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Module:
    name: str
    full: list[str]
    quick: list[str]
    #: Headline rows from the module's output (and its exit status); [] when nothing matched.
    summarize: Callable[[str, int, Path], list[Row]]


def _phones(out: str, code: int, _: Path) -> list[Row]:
    ours = re.search(r"^normalize:\s+([\d.]+) s\s+([\d,]+) rows/s", out, re.MULTILINE)
    ref = re.search(r"^reference:\s+([\d.]+) s\s+([\d,]+) rows/s", out, re.MULTILINE)
    ratio = re.search(r"^ratio:\s+([\d.]+)x", out, re.MULTILINE)
    bad = re.search(r"^disagreements: (\d+)", out, re.MULTILINE)
    rows = re.search(r"^([\d,]+) rows, region", out, re.MULTILINE)
    if not (ours and ref and ratio and bad):
        return []
    size = rows.group(1) if rows else "?"
    return [
        row(
            f"phones: normalize {size} cells",
            "0 disagreements with phonenumbers",
            f"{ours.group(2)} rows/s, {bad.group(1)} disagree",
            f"{ref.group(2)} rows/s",
            f"x{ratio.group(1)}",
            code == 0 and bad.group(1) == "0",
        ),
    ]


def _recipients(out: str, code: int, _: Path) -> list[Row]:
    found = []
    for kind in ("csv", "xlsx"):
        ours = re.search(rf"^{kind} ours\s+([\d.]+)\s+([\d,]+)\s+(\d+)", out, re.MULTILINE)
        if not ours:
            continue
        rest = out[ours.end() :]
        base = re.search(rf"^{kind} baseline\s+([\d.]+)\s+([\d,]+)", rest, re.MULTILINE)
        speedup = re.search(r"speed-up x([\d.]+).*?disagree (\d+)", rest)
        target = re.search(r"^\s+target: (.*)$", rest, re.MULTILINE)
        verdict = target.group(1) if target else ""
        ok = bool(target) and "MISSED" not in verdict
        if speedup:
            ok = ok and float(speedup.group(1)) >= 10 and speedup.group(2) == "0"
        found.append(
            row(
                f"recipients: {kind}",
                re.sub(r" (ok|MISSED)", "", verdict) + ", x10",
                f"{ours.group(1)} s, {ours.group(2)} rows/s, {ours.group(3)} MB",
                f"{base.group(1)} s, {base.group(2)} rows/s" if base else "-",
                f"x{speedup.group(1)}" if speedup else "-",
                ok,
            )
        )
    return found


def _ratelimit(out: str, code: int, _: Path) -> list[Row]:
    line = r"^{name}\s+(\d+)\s+(\d+)\s+([\d.]+%)\s+(\d+)\s+(\d+)"
    ours = re.search(line.format(name=r"ours \(GCRA\)"), out, re.MULTILINE)
    naive = re.search(line.format(name=r"naive window"), out, re.MULTILINE)
    if not ours:
        return []
    baseline = (
        f"{naive.group(3)}, {naive.group(4)} windows over, max {naive.group(5)}" if naive else "-"
    )
    return [
        row(
            "ratelimit: limiter alone",
            ">= 95%, 0 windows over",
            f"{ours.group(3)}, {ours.group(4)} over, max {ours.group(5)}",
            baseline,
            f"{ours.group(4)} vs {naive.group(4)} over" if naive else "-",
            code == 0,
        ),
    ]


def _pipeline(out: str, code: int, summary: Path) -> list[Row]:
    try:
        rows: list[Row] = json.loads(summary.read_text())
    except (OSError, ValueError):
        return []
    return [{**r, "case": f"pipeline: {r['case'].strip()}"} for r in rows]


MODULES = (
    Module("phones", [], ["--rows", "100000"], _phones),
    Module("recipients", [], ["--rows", "100000", "--only", "csv"], _recipients),
    Module(
        "ratelimit",
        [],
        ["--duration", "5", "--baseline-duration", "3", "--calls", "1000"],
        _ratelimit,
    ),
    Module("pipeline", [], ["--quick"], _pipeline),
)


def run(module: Module, quick: bool, scratch: Path) -> tuple[list[Row], int, float]:
    """Run one module, echoing its output; its headline rows, exit status and wall time."""
    args = list(module.quick if quick else module.full)
    summary = scratch / f"{module.name}.json"
    if module.name == "pipeline":
        args += ["--json", str(summary)]
    command = [sys.executable, "-m", f"bench.{module.name}", *args]
    print(f"\n{'=' * 100}\n$ {' '.join(['python', *command[1:]])}", flush=True)
    t0 = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    code = process.wait()
    seconds = time.perf_counter() - t0
    rows = module.summarize("".join(lines), code, summary)
    if not rows:
        rows = [row(module.name, "-", f"no figures read (exit {code})", "-", "-", False)]
    elif code != 0 and all(r["ok"] is not False for r in rows):
        rows.append(row(module.name, "exit 0", f"exit {code}", "-", "-", False))
    return rows, code, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke check")
    parser.add_argument(
        "--only", help="comma-separated modules: " + ",".join(m.name for m in MODULES)
    )
    args = parser.parse_args(argv)
    wanted = [m for m in MODULES if not args.only or m.name in args.only.split(",")]
    if args.only and not wanted:
        parser.error(f"no such module in {args.only!r}")

    load0 = os.getloadavg()
    t0 = time.perf_counter()
    rows: list[Row] = []
    timings = []
    with tempfile.TemporaryDirectory(prefix="smspipe-bench-") as scratch:
        for module in wanted:
            found, code, seconds = run(module, args.quick, Path(scratch))
            rows += found
            timings.append(f"{module.name} {seconds:.0f} s (exit {code})")
    load1 = os.getloadavg()
    print(f"\n{'=' * 100}")
    print_table(rows, f"benchmark summary{' (quick)' if args.quick else ''}: {', '.join(timings)}")
    print(
        f"total {time.perf_counter() - t0:.0f} s on {os.cpu_count()} CPUs; load average "
        f"{load0[0]:.2f} at the start, {load1[0]:.2f} at the end (other work on the machine "
        f"makes figures noisy)"
    )
    return 0 if all(r["ok"] is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
