"""What the stack's processes did, seen from outside: arq's log lines, ``/proc``, py-spy.

``job_timeline`` says when each stage of a job was queued, started and ended, from the workers'
arq log lines (structlog JSON or plain stdlib lines; arq prints 10 ms steps); ``wait_logged``
and ``runner`` wait for and find a job's line. ``cpu_meter`` counts the CPU seconds each process
(and the whole machine) used during a block, ``proc_mb`` reads a process's memory figures, and
``py_spy`` records collapsed stacks (``--profile``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.stack import Worker, stop_process

# --- arq's log lines --------------------------------------------------------------------------


#: arq's job lines: "  0.03s → <job>:prepare_send(...)" (queued that long), "  3.37s ← <job>:
#: prepare_send ● ..." (ran that long).
_ARQ_JOB = re.compile(
    r"^\s*(?P<secs>[\d.]+)s (?P<arrow>[→←]) (?P<ref>\S+):(?P<func>prepare_send|send_chunk|finalize)\b"
)
_STDLIB_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ arq\.worker: (.*)$")


@dataclass(frozen=True)
class ArqEvent:
    at: float  # when the line was written
    seconds: float
    started: bool  # → (queued ``seconds``) or ← (ran ``seconds``)
    job: str  # arq job id: <job>, <job>:chunk:<n>, <job>:finalize
    func: str


def arq_events(log: str) -> Iterator[ArqEvent]:
    """arq's job lines from a worker log, as structlog JSON or as plain stdlib lines."""
    for line in log.splitlines():
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("logger") != "arq.worker" or "timestamp" not in doc:
                continue
            message, at = str(doc.get("event", "")), datetime.fromisoformat(doc["timestamp"])
        else:
            plain = _STDLIB_LINE.match(line)
            if not plain:
                continue
            message = plain[2]
            at = datetime.strptime(plain[1], "%Y-%m-%d %H:%M:%S,%f")  # local time
        m = _ARQ_JOB.match(message)
        if m:
            yield ArqEvent(at.timestamp(), float(m["secs"]), m["arrow"] == "→", m["ref"], m["func"])


def job_timeline(workers: list[Worker], job_id: str) -> dict[str, Any]:
    """Per stage, from arq's own log lines: when the jobs of ``job_id`` started and ended, how
    long each waited in the queue and ran (arq prints 10 ms steps)."""
    runs: dict[str, list[float]] = {"prepare_send": [], "send_chunk": [], "finalize": []}
    queued: dict[str, list[float]] = {"prepare_send": [], "send_chunk": [], "finalize": []}
    first_start: dict[str, float] = {}
    last_end: dict[str, float] = {}
    for worker in workers:
        for event in arq_events(worker.text()):
            if not event.job.startswith(job_id):
                continue
            func, at = event.func, event.at
            if event.started:
                queued[func].append(event.seconds)
                first_start[func] = min(first_start.get(func, at), at)
            else:
                runs[func].append(event.seconds)
                last_end[func] = max(last_end.get(func, at), at)
    return {"runs": runs, "queued": queued, "first_start": first_start, "last_end": last_end}


def runner(workers: list[Worker], arq_job: str, func: str) -> int | None:
    """The pid of the worker whose log shows ``func`` of ``arq_job`` starting (the job's
    state is ``done`` before finalize returns, so its end may not be logged yet)."""
    for worker in workers:
        for event in arq_events(worker.text()):
            if event.started and event.func == func and event.job == arq_job:
                return worker.pid
    return None


def wait_logged(workers: list[Worker], arq_job: str, func: str, timeout: float = 30.0) -> None:
    """Until a worker logs ``func`` of ``arq_job`` as finished (``done`` is set before that)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            if any(
                not e.started and e.func == func and e.job == arq_job
                for e in arq_events(worker.text())
            ):
                return
        time.sleep(0.1)


# --- /proc and py-spy -------------------------------------------------------------------------


@contextmanager
def cpu_meter(pids: dict[str, int]) -> Iterator[dict[str, float]]:
    """CPU seconds (user + system, all threads) each process and the whole machine used."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = {**pids, "bench (producer)": os.getpid()}

    def process(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    def machine() -> float:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return (sum(values) - values[3] - values[4]) / tick  # all but idle and iowait

    before = {name: process(pid) for name, pid in pids.items()}
    busy0 = machine()
    used: dict[str, float] = {}
    try:
        yield used
    finally:
        for name, pid in pids.items():
            used[name] = process(pid) - before[name]
        used["machine"] = machine() - busy0


def proc_mb(pid: int, field_name: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@contextmanager
def py_spy(directory: Path | None, pids: dict[str, int]) -> Iterator[None]:
    """``py-spy record`` (collapsed stacks, non-blocking) on ``pids`` while the block runs."""
    if directory is None:
        yield
        return
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    directory.mkdir(parents=True, exist_ok=True)
    recorders = [
        subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(directory / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]
    time.sleep(1.0)  # attached before the clock starts
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            try:
                recorder.wait(30)  # it writes its file on SIGINT
            except subprocess.TimeoutExpired:
                stop_process(recorder)
        print(f"  profiles (py-spy collapsed stacks): {directory}/")
