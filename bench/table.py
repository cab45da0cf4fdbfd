"""The summary rows the benchmark runners end with, and the table they print.

``bench.pipeline`` returns its cases' rows (``row``) and prints them; ``python -m bench`` reads
every module's headline figures back into rows and prints them all in one table.
"""

from __future__ import annotations

from typing import Any

#: One line of a summary: case, target, measured, baseline, ratio, ok (None: information only).
Row = dict[str, Any]


def row(case: str, target: str, measured: str, baseline: str, ratio: str, ok: bool | None) -> Row:
    return {
        "case": case,
        "target": target,
        "measured": measured,
        "baseline": baseline,
        "ratio": ratio,
        "ok": ok,
    }


def verdict(ok: bool | None) -> str:
    return "info" if ok is None else ("PASS" if ok else "FAIL")


def print_table(rows: list[Row], title: str) -> None:
    headers = ("case", "target", "measured", "baseline", "ratio", "result")
    cells = [
        (r["case"], r["target"], r["measured"], r["baseline"], r["ratio"], verdict(r["ok"]))
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
