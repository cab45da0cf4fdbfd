"""Send-pipeline benchmark: real worker processes, a real redis-server, the sandbox over HTTP.

    .venv/bin/python -m bench.pipeline [--quick] [--cases abcd] [--rows N] [--duration S]
        [--baseline-duration S] [--runs N] [--memory-rows N] [--worker-env KEY=VALUE]...
        [--profile DIR] [--json FILE]

Every case measures a naive baseline in the same run, against the same servers, and prints the
ratio. The bench starts its own redis-server (``worker.embedded.RedisServer``, temp dir), its
own sandbox process (``python -m ogangi.sandbox``: no rate limit, no faults, keys through the
environment) and ``smspipe worker`` processes (``python -m worker.cli worker``).

a. End to end: 200 000 recipients (CSV) through 2 workers, ``send_file`` to job ``done`` (the
   results file written). Baseline: one process doing what one writes first: pandas
   ``read_csv``, per-row ``phonenumbers.parse`` + ``is_valid_number``, sequential 10 000-row
   uploads (``write_recipient_file``, a plain aiohttp session, ``signed_path``), ``xmltodict``
   for each reply, a results CSV. Both must put exactly the valid numbers in the sandbox ledger.
b. Rate-limit accuracy: 4 workers, ``SMSPIPE_MAX_REQUESTS_PER_SECOND=20``, 10-row chunks for
   ``--duration`` seconds; the sandbox counts arrivals per 1-second window. Baseline: the same
   job, each process limited locally to 20/4 requests/s (no shared limiter).
c. Enqueue to first request: an idle worker, a 1-row send, ``send_file`` to the sandbox's
   ledger time of the upload; p50 over ``--runs``. Baseline: the same worker with arq's default
   ``poll_delay`` (0.5 s): what the pipeline would do without its polling setting.
d. Peak memory per worker (``VmHWM``) while 2 workers send a 1M-recipient file. Baseline: the
   naive script's peak RSS on the same file (which also gives a second end-to-end ratio).

Case a also says where the time goes: a timeline (sandbox ledger times, arq's log lines), the
CPU seconds of every process during the run (and of everything else on the machine), and the
single-core cost of each stage. ``--profile DIR`` adds py-spy stacks of the workers and the
sandbox; ``--worker-env`` changes a worker setting for a tuning experiment.

Generated lists are cached under ``bench/data/`` (gitignored). ``--quick`` shrinks every case
for a smoke check (< 1 min).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.lists import one_row_csv, recipient_list
from bench.naive import naive_child, run_naive, worker_child
from bench.observe import cpu_meter, job_timeline, proc_mb, py_spy, runner, wait_logged
from bench.stack import (
    CHUNK,
    WORKER_ENV,
    JobRun,
    at_seconds,
    run_child,
    send_and_wait,
    stack,
    warm_up,
)
from bench.stages import stages_child
from bench.table import print_table, row

TARGET_RATE = 100_000
TARGET_SPEEDUP = 5.0
TARGET_ACHIEVED = 0.95
TARGET_LATENCY_MS = 100.0
TARGET_PEAK_MB = 400.0


# --- a. end to end ----------------------------------------------------------------------------


def case_end_to_end(rows: int, profile: Path | None = None) -> list[dict[str, Any]]:
    print(
        f"\n== a. end to end: {rows:,} recipients (CSV), 2 workers, chunks of {CHUNK:,} ==",
        flush=True,
    )
    data = recipient_list(rows)
    with stack() as st:
        workers = st.start_workers(2)
        warm_up(st, workers)
        st.sandbox.reset()
        assert st.sandbox.process is not None
        targets = {f"worker-{w.pid}": w.pid for w in workers}
        targets["sandbox"] = st.sandbox.process.pid
        with py_spy(profile, targets), cpu_meter(targets) as cpu:
            run = asyncio.run(send_and_wait(st, data.path))
        ours_ledger = st.sandbox.summary()
        wait_logged(workers, run.job_id + ":finalize", "finalize")
        first, last = st.sandbox.entry(0), st.sandbox.entry(ours_ledger["total"] - 1)
        timeline = job_timeline(workers, run.job_id)
        st.stop_workers()

        st.sandbox.reset()
        naive = run_naive(st, data.path)
        naive_ledger = st.sandbox.summary()
        st.sandbox.reset()
        stages = run_child(st, "stages", data.path)

    ours_rate = data.valid / run.seconds
    ratio = naive["wall"] / run.seconds
    counts = run.status["counts"]
    ours_ok = _ledger_ok(ours_ledger, data.valid) and counts["sent"] == data.valid
    naive_ok = _ledger_ok(naive_ledger, data.valid) and naive["sent"] == data.valid
    print(f"  {'':<10}{'wall s':>8}{'recipients/s':>14}{'ledger':>10}{'valid':>10}{'peak MB':>9}")
    print(
        f"  {'ours':<10}{run.seconds:>8.2f}{ours_rate:>14,.0f}{ours_ledger['total']:>10,}"
        f"{data.valid:>10,}{'':>9}"
    )
    print(
        f"  {'naive':<10}{naive['wall']:>8.2f}{data.valid / naive['wall']:>14,.0f}"
        f"{naive_ledger['total']:>10,}{data.valid:>10,}{naive['peak_mb']:>9.0f}"
    )
    print(f"  ratio x{ratio:.1f} (naive wall / ours); ours {run.status['state']}, counts {counts}")
    _print_ours_stages(run, timeline, first, last)
    _print_cpu(cpu, run.seconds)
    _print_naive_stages(naive)
    _print_stage_costs(stages)
    if not (ours_ok and naive_ok):
        print(f"  LEDGER MISMATCH: ours {ours_ledger}, naive {naive_ledger}, valid {data.valid}")
    ok = ours_rate >= TARGET_RATE and ratio >= TARGET_SPEEDUP and ours_ok and naive_ok
    return [
        row(
            f"a. end to end {rows // 1000}k",
            f">= {TARGET_RATE:,}/s and x{TARGET_SPEEDUP:g}",
            f"{ours_rate:,.0f}/s ({run.seconds:.2f} s)",
            f"{data.valid / naive['wall']:,.0f}/s",
            f"x{ratio:.1f}",
            ok,
        ),
    ]


def _print_cpu(cpu: dict[str, float], wall: float) -> None:
    ours = sum(v for k, v in cpu.items() if k != "machine")
    parts = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if k != "machine")
    cores = os.cpu_count() or 1
    print(
        f"  CPU s during our run: {parts}; other processes {max(0.0, cpu['machine'] - ours):.2f}; "
        f"machine busy {cpu['machine']:.2f} of {cores} x {wall:.2f} = {cores * wall:.2f}"
    )


def _ledger_ok(ledger: dict[str, Any], valid: int) -> bool:
    return bool(ledger["total"] == valid and ledger["extra_sends_to_repeated"] == 0)


def _print_ours_stages(
    run: JobRun, timeline: dict[str, Any], first: dict[str, Any], last: dict[str, Any]
) -> None:
    t0 = run.enqueued_at
    first_at, last_at = at_seconds(first["at"]), at_seconds(last["at"])
    end = t0 + run.seconds
    runs, starts = timeline["runs"], timeline["first_start"]
    print("  ours, where the time goes (sandbox ledger times; arq log lines, ms resolution):")
    if runs["prepare_send"]:
        queued = starts["prepare_send"] - t0
        print(
            f"    send_file -> prepare_send starts {queued * 1000:7.0f} ms (upload to bucket, "
            f"queue pick-up)"
        )
        print(
            f"    prepare_send runs            {runs['prepare_send'][0] * 1000:7.0f} ms (read, "
            f"normalize, chunk files, ledger, fan-out)"
        )
    print(f"    send_file -> first upload accepted {(first_at - t0) * 1000:7.0f} ms")
    print(
        f"    first -> last upload accepted      {(last_at - first_at) * 1000:7.0f} ms "
        f"({len(runs['send_chunk'])} chunks, send_chunk mean "
        f"{statistics.fmean(runs['send_chunk'] or [0]) * 1000:.0f} ms, "
        f"max {max(runs['send_chunk'] or [0]) * 1000:.0f} ms)"
    )
    if runs["finalize"]:
        print(
            f"    last upload -> finalize starts     {(starts['finalize'] - last_at) * 1000:7.0f}"
            f" ms (the last replies parsed, outcome files, ledger, enqueue)"
        )
        print(
            f"    finalize runs                      {runs['finalize'][0] * 1000:7.0f} ms "
            f"(merge, results CSV, work/ cleanup; done is visible before its end)"
        )
    print(f"    send_file -> done seen             {(end - t0) * 1000:7.0f} ms")


def _print_stage_costs(stages: dict[str, Any]) -> None:
    if "error" in stages:
        print(f"  stage costs unavailable: {stages['error']}")
        return
    cost = dict(stages["cost"])
    sandbox = cost.pop("sandbox: read upload + build reply")
    total = sum(cost.values())
    n = stages["chunks"]
    print(
        f"  ours, single-core cost per stage ({n} chunks, one stage at a time, no queue, no "
        f"concurrency): {total:.2f} s = {stages['ready'] / total:,.0f} recipients/s"
    )
    for name, seconds in cost.items():
        print(
            f"    {name:<46}{seconds * 1000:7.0f} ms {seconds / total:6.1%}"
            f"{seconds / n * 1000:7.1f} ms/chunk"
        )
    print(
        f"    {'  of which the sandbox parses + replies':<46}{sandbox * 1000:7.0f} ms "
        f"{'':>6}{sandbox / n * 1000:7.1f} ms/chunk (timed in-process)"
    )


def _print_naive_stages(naive: dict[str, Any]) -> None:
    parts = ", ".join(f"{k} {naive['stages'][k]:.2f} s" for k in naive["stages"])
    print(f"  naive stages: {parts}")


# --- b. rate-limit accuracy -------------------------------------------------------------------


def case_rate_limit(
    duration: float,
    baseline_duration: float,
    rate: float = 20.0,
    processes: int = 4,
    chunk_rows: int = 10,
) -> list[dict[str, Any]]:
    print(
        f"\n== b. rate limit: {processes} workers, limit {rate:g} requests/s, {duration:g} s of "
        f"{chunk_rows}-row chunks ==",
        flush=True,
    )
    results = {}
    with stack(chunk_size=chunk_rows) as st:
        for kind, seconds in (("ours", duration), ("local", baseline_duration)):
            requests = math.ceil(rate * seconds)
            data = recipient_list(requests * chunk_rows, bad=0.0)
            if kind == "ours":
                extra = {"SMSPIPE_MAX_REQUESTS_PER_SECOND": f"{rate:g}"}
                command = None
            else:
                extra = {}
                command = [
                    sys.executable,
                    "-m",
                    "bench.pipeline",
                    "--child",
                    "worker",
                    "local-limit",
                    f"{rate / processes:g}",
                ]
            st.start_workers(processes, extra, command=command)
            st.sandbox.reset()
            run = asyncio.run(
                send_and_wait(
                    st,
                    data.path,
                    text=f"{kind} {{0}}",
                    chunk_size=chunk_rows,
                    timeout=seconds * 4 + 120,
                )
            )
            st.stop_workers()
            times = st.sandbox.request_times()
            stats = st.sandbox.stats()
            results[kind] = _window_figures(times, stats, rate)
            results[kind]["state"] = run.status["state"]
            results[kind]["ledger_ok"] = _ledger_ok(st.sandbox.summary(), data.valid)

    print(
        f"  {'':<22}{'requests':>9}{'span s':>8}{'achieved':>10}{'max/1s':>8}{'windows>N':>11}"
        f"{'calendar max':>14}"
    )
    labels = {"ours": "ours (shared GCRA)", "local": f"naive (local {rate / processes:g}/s each)"}
    for kind, r in results.items():
        print(
            f"  {labels[kind]:<22}{r['requests']:>9}{r['span']:>8.1f}{r['achieved']:>10.1%}"
            f"{r['max_window']:>8}{r['windows_over']:>11}{r['calendar_max']:>14}"
        )
    ours, base = results["ours"], results["local"]
    print(
        "    max/1s: most requests the sandbox saw arrive in any 1 s window; windows>N: 1 s "
        "windows ending at each accepted upload (ledger times) holding more than N"
    )
    ok = (
        ours["achieved"] >= TARGET_ACHIEVED
        and ours["max_window"] <= rate
        and ours["state"] == "done"
        and ours["ledger_ok"]
    )
    ratio = ours["achieved"] / base["achieved"] if base["achieved"] else float("inf")
    print(
        f"  ratio: achieved x{ratio:.2f} of the naive one's; 1 s windows over the limit "
        f"{ours['windows_over']} vs {base['windows_over']}, worst window {ours['max_window']} vs "
        f"{base['max_window']}"
    )
    return [
        row(
            "b. rate limit 20/s, 4 proc",
            f">= {TARGET_ACHIEVED:.0%}, max/1s <= {rate:g}",
            f"{ours['achieved']:.1%}, max {ours['max_window']}",
            f"{base['achieved']:.1%}, max {base['max_window']}, {base['windows_over']} over",
            f"{ours['windows_over']} vs {base['windows_over']} over",
            ok,
        ),
    ]


def _window_figures(times: list[float], stats: dict[str, Any], rate: float) -> dict[str, Any]:
    import bisect

    span = times[-1] - times[0] if len(times) > 1 else 0.0
    achieved = (len(times) - 1) / span / rate if span else 0.0
    over = sum(
        bisect.bisect_right(times, t) - bisect.bisect_right(times, t - 1.0) > rate for t in times
    )
    return {
        "requests": stats["total_requests"],
        "span": span,
        "achieved": achieved,
        "max_window": stats["max_requests_in_any_1s_window"],
        "calendar_max": stats["max_requests_in_a_calendar_second"],
        "windows_over": over,
    }


# --- c. enqueue to first request --------------------------------------------------------------


def case_latency(runs: int) -> list[dict[str, Any]]:
    print(
        f"\n== c. enqueue -> first request: 1 idle worker, 1-row sends, {runs} runs ==", flush=True
    )
    figures: dict[str, dict[str, Any]] = {}
    with stack() as st:
        for kind, command in (
            ("ours", None),
            (
                "arq default",
                [sys.executable, "-m", "bench.pipeline", "--child", "worker", "arq-poll", "0.5"],
            ),
        ):
            workers = st.start_workers(1, command=command)
            asyncio.run(send_and_wait(st, one_row_csv(0 if kind == "ours" else 1)))  # warm
            time.sleep(0.3)
            first, done, hops = [], [], []
            for i in range(runs):
                st.sandbox.reset()
                run = asyncio.run(send_and_wait(st, one_row_csv(10 + i + 1000 * len(figures))))
                entry = st.sandbox.entry(0)
                first.append((at_seconds(entry["at"]) - run.enqueued_at) * 1000)
                done.append(run.seconds * 1000)
                hops.append(job_timeline(workers, run.job_id))
                time.sleep(random.uniform(0.05, 0.25))  # arrive at any point of a poll cycle
            st.stop_workers()
            figures[kind] = {"first": sorted(first), "done": sorted(done), "hops": hops}

    print(f"  {'':<24}{'p50 ms':>9}{'p90 ms':>9}{'min ms':>9}{'max ms':>9}{'to done p50':>13}")
    labels = {"ours": "ours (poll 50 ms)", "arq default": "arq default (poll 0.5 s)"}
    for kind, f in figures.items():
        xs = f["first"]
        print(
            f"  {labels[kind]:<24}{_pct(xs, 50):>9.0f}{_pct(xs, 90):>9.0f}{xs[0]:>9.0f}"
            f"{xs[-1]:>9.0f}{_pct(f['done'], 50):>13.0f}"
        )
    print("  p50 of each hop before the upload (arq log lines):")
    for kind, f in figures.items():

        def p50(key: str, func: str, hops: list[dict[str, Any]] = f["hops"]) -> float:
            return _pct([h[key][func][0] * 1000 for h in hops if h[key][func]], 50)

        print(
            f"    {labels[kind]:<24} prepare_send queued {p50('queued', 'prepare_send'):4.0f} ms,"
            f" runs {p50('runs', 'prepare_send'):4.0f} ms; send_chunk queued "
            f"{p50('queued', 'send_chunk'):4.0f} ms; the rest is send_file, the chunk job "
            f"until its upload, and log granularity"
        )
    ours = _pct(figures["ours"]["first"], 50)
    base = _pct(figures["arq default"]["first"], 50)
    print(
        f"  ratio x{base / ours:.1f} (arq default p50 / ours p50); times are send_file to the "
        f"sandbox accepting the upload (ledger time, ms)"
    )
    return [
        row(
            "c. enqueue -> 1st request",
            f"p50 < {TARGET_LATENCY_MS:.0f} ms",
            f"p50 {ours:.0f} ms",
            f"p50 {base:.0f} ms",
            f"x{base / ours:.1f}",
            ours < TARGET_LATENCY_MS,
        ),
    ]


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * p / 100))]


# --- d. peak memory ---------------------------------------------------------------------------


def case_memory(rows: int) -> list[dict[str, Any]]:
    print(f"\n== d. peak memory: {rows:,} recipients (CSV), 2 workers ==", flush=True)
    data = recipient_list(rows)
    with stack() as st:
        workers = st.start_workers(2)
        warm_up(st, workers)
        st.sandbox.reset()
        samples: list[tuple[float, int, float]] = []  # (time, pid, RSS MB)

        async def send_sampling() -> JobRun:
            task = asyncio.create_task(send_and_wait(st, data.path, poll=0.02))
            while not task.done():
                now = time.time()
                samples.extend((now, w.pid, proc_mb(w.pid, "VmRSS")) for w in workers)
                await asyncio.sleep(0.05)
            return await task

        run = asyncio.run(send_sampling())
        wait_logged(workers, run.job_id + ":finalize", "finalize")
        hwm = {w.pid: proc_mb(w.pid, "VmHWM") for w in workers}
        timeline = job_timeline(workers, run.job_id)
        preparer = runner(workers, run.job_id, "prepare_send")
        finalizer = runner(workers, run.job_id + ":finalize", "finalize")
        ledger = st.sandbox.summary()
        st.stop_workers()
        st.sandbox.reset()
        naive = run_naive(st, data.path)
        naive_ledger = st.sandbox.summary()

    peak = max(hwm.values())
    ok = peak <= TARGET_PEAK_MB and _ledger_ok(ledger, data.valid)
    ours_rate = data.valid / run.seconds
    naive_rate = data.valid / naive["wall"]
    prepared_at = timeline["last_end"].get("prepare_send", float("inf"))
    finalizing_at = timeline["first_start"].get("finalize", float("inf"))
    for pid, mb in hwm.items():
        phases = [
            max((m for t, p, m in samples if p == pid and lo < t <= hi), default=0.0)
            for lo, hi in ((0, prepared_at), (prepared_at, finalizing_at), (finalizing_at, 1e12))
        ]
        roles = [r for r, who in (("prepared", preparer), ("finalized", finalizer)) if who == pid]
        print(
            f"  worker {pid} ({', '.join(roles) or 'sent chunks only'}): peak {mb:.0f} MB "
            f"(VmHWM); sampled RSS max {phases[0]:.0f} MB while prepare_send ran, "
            f"{phases[1]:.0f} MB while chunks were sent, {phases[2]:.0f} MB from finalize on"
        )
    print(f"  naive script: peak {naive['peak_mb']:.0f} MB (VmHWM)")
    print(f"  ratio x{naive['peak_mb'] / peak:.1f} (naive peak / our worst worker)")
    print(
        f"  same run, speed: ours {run.seconds:.2f} s ({ours_rate:,.0f}/s), naive "
        f"{naive['wall']:.2f} s ({naive_rate:,.0f}/s), x{naive['wall'] / run.seconds:.1f}; "
        f"ledger ours {ledger['total']:,} naive {naive_ledger['total']:,} valid {data.valid:,}"
    )
    _print_naive_stages(naive)
    role = {preparer: "prepare", finalizer: "finalize"}
    if preparer == finalizer:
        role = {preparer: "prepare+finalize"}
    per_worker = ", ".join(f"{mb:.0f} ({role.get(pid, 'send only')})" for pid, mb in hwm.items())
    return [
        row(
            f"d. peak MB/worker {rows // 1000}k",
            f"<= {TARGET_PEAK_MB:.0f} MB",
            f"{peak:.0f} MB",
            f"{naive['peak_mb']:.0f} MB",
            f"x{naive['peak_mb'] / peak:.1f}",
            ok,
        ),
        row("   each worker, MB", "(info)", per_worker, "", "", None),
        row(
            f"   end to end {rows // 1000}k",
            "(info)",
            f"{ours_rate:,.0f}/s",
            f"{naive_rate:,.0f}/s",
            f"x{naive['wall'] / run.seconds:.1f}",
            None,
        ),
    ]


# --- command line -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke check")
    parser.add_argument("--cases", default="abcd", help="which cases to run (default: abcd)")
    parser.add_argument("--rows", type=int, help="a: recipients (default 200 000; quick 20 000)")
    parser.add_argument("--duration", type=float, help="b: seconds of load (default 30; quick 5)")
    parser.add_argument(
        "--baseline-duration",
        type=float,
        help="b: seconds for the naive limiter (default 10; quick 3)",
    )
    parser.add_argument("--runs", type=int, help="c: sends per worker kind (default 20; quick 5)")
    parser.add_argument(
        "--memory-rows", type=int, help="d: recipients (default 1 000 000; quick 50 000)"
    )
    parser.add_argument("--json", type=Path, help="also write the summary rows here")
    parser.add_argument(
        "--profile",
        type=Path,
        help="a: py-spy the workers and the sandbox during our run, into DIR",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every worker, e.g. SMSPIPE_CONCURRENCY=2",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child)

    for item in args.worker_env:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--worker-env expects KEY=VALUE, got {item!r}")
        WORKER_ENV[key] = value
    quick = args.quick
    rows = args.rows or (20_000 if quick else 200_000)
    duration = args.duration or (5.0 if quick else 30.0)
    baseline_duration = args.baseline_duration or (3.0 if quick else 10.0)
    runs = args.runs or (5 if quick else 20)
    memory_rows = args.memory_rows or (50_000 if quick else 1_000_000)
    load0 = os.getloadavg()
    print(
        f"pipeline benchmark{' (quick)' if quick else ''}: {os.cpu_count()} CPUs, load average "
        f"{load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}"
        + (f"; worker env {WORKER_ENV}" if WORKER_ENV else ""),
        flush=True,
    )
    t0 = time.perf_counter()
    summary: list[dict[str, Any]] = []
    if "a" in args.cases:
        summary += case_end_to_end(rows, args.profile)
    if "b" in args.cases:
        summary += case_rate_limit(duration, baseline_duration)
    if "c" in args.cases:
        summary += case_latency(runs)
    if "d" in args.cases:
        summary += case_memory(memory_rows)
    load1 = os.getloadavg()
    print_table(summary, "pipeline summary")
    print(
        f"({time.perf_counter() - t0:.0f} s; load average at the end {load1[0]:.2f} "
        f"{load1[1]:.2f} {load1[2]:.2f} on {os.cpu_count()} CPUs)"
    )
    if args.json:
        args.json.write_text(json.dumps(summary))
    return 0 if all(r["ok"] is not False for r in summary) else 1


def _child(spec: list[str]) -> int:
    if spec[0] == "naive":
        naive_child(Path(spec[1]), Path(spec[2]))
    elif spec[0] == "stages":
        stages_child(Path(spec[1]), Path(spec[2]))
    elif spec[0] == "worker":
        worker_child(spec[1], float(spec[2]))
    else:
        raise SystemExit(f"unknown child {spec[0]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
