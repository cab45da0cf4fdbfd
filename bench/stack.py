"""The servers and processes the pipeline benchmark runs against, and sending through them.

``stack()`` starts its own redis-server (``worker.embedded.RedisServer``, temp dir), its own
sandbox process (``python -m ogangi.sandbox``: no rate limit, no faults, keys through the
environment) and, on demand, ``smspipe worker`` processes (``python -m worker.cli worker``),
and stops them all at the end. ``run_child`` runs one of the bench's child scripts
(``python -m bench.pipeline --child ...``) with the workers' environment. ``send_and_wait`` is
the producer: ``send_file`` to the job's final state.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.lists import SEED, TEXT, generate_rows

ROOT = Path(__file__).resolve().parents[1]
#: Recipients per chunk: the workers' ``SMSPIPE_CHUNK_SIZE`` and the naive script's uploads.
CHUNK = 10_000

#: The bench's provider account. The private key is made up per run and travels only through
#: child processes' environments.
INSTANCE_ID = "77"
PUBLIC_KEY = "BENCH-PUBLIC-KEY"
USERNAME = "bench"
SHORTCODE = "55577"

#: ``--worker-env KEY=VALUE``: settings every worker of the run gets (tuning experiments).
WORKER_ENV: dict[str, str] = {}


# --- servers and workers ----------------------------------------------------------------------


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxies


class Sandbox:
    """``python -m ogangi.sandbox`` as its own process, driven through its control API."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        from worker.embedded import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "sandbox.log"
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._http = _opener()

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ogangi.sandbox", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("/_sandbox/health")
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the sandbox did not start; see {self.log}") from None
                time.sleep(0.05)

    def get(self, path: str) -> Any:
        with self._http.open(self.url + path, timeout=120) as reply:
            return json.loads(reply.read())

    def post(self, path: str, doc: dict[str, Any] | None = None) -> Any:
        data = json.dumps(doc or {}).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        with self._http.open(request, timeout=60) as reply:
            return json.loads(reply.read())

    def reset(self) -> None:
        self.post("/_sandbox/reset")

    def summary(self) -> dict[str, Any]:
        return dict(self.get("/_sandbox/ledger/summary"))

    def stats(self) -> dict[str, Any]:
        return dict(self.get("/_sandbox/stats"))

    def entry(self, offset: int) -> dict[str, Any]:
        return dict(self.get(f"/_sandbox/ledger?offset={offset}&limit=1")["messages"][0])

    def request_times(self) -> list[float]:
        """Sorted acceptance time of every request in the ledger (one batch per request)."""
        seen: dict[str, float] = {}
        offset = 0
        while True:
            page = self.get(f"/_sandbox/ledger?offset={offset}&limit=100000")
            for message in page["messages"]:
                seen.setdefault(message["request_id"], at_seconds(message["at"]))
            offset += len(page["messages"])
            if not page["messages"] or offset >= page["total"]:
                return sorted(seen.values())

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


def at_seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def stop_process(process: subprocess.Popen[bytes], timeout: float = 40.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class Stack:
    """One redis-server, one sandbox, one bucket folder, and the worker environment for them."""

    directory: Path
    redis_url: str
    sandbox: Sandbox
    bucket: Path
    env: dict[str, str]
    workers: list[Worker] = field(default_factory=list)
    _started: int = 0

    def start_workers(
        self, count: int, extra: dict[str, str] | None = None, *, command: list[str] | None = None
    ) -> list[Worker]:
        """``count`` worker processes, returned once each has logged that it started."""
        env = {**self.env, **(extra or {})}
        started = []
        for _ in range(count):
            self._started += 1
            log = self.directory / f"worker-{self._started}.log"
            with log.open("ab") as handle:
                process = subprocess.Popen(
                    command or [sys.executable, "-m", "worker.cli", "worker"],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=handle,
                    stderr=handle,
                )
            started.append(Worker(process, log))
        deadline = time.monotonic() + 60
        for worker in started:
            while "Starting worker for" not in worker.text():
                if worker.process.poll() is not None or time.monotonic() > deadline:
                    tail = worker.text()[-2000:]
                    raise SystemExit(f"a worker did not start (see {worker.log}):\n{tail}")
                time.sleep(0.05)
        self.workers += started
        return started

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.process.wait(40)  # arq finishes the jobs in hand first
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        self.workers = []


@contextmanager
def stack(chunk_size: int = CHUNK) -> Iterator[Stack]:
    from worker.embedded import RedisServer

    directory = Path(tempfile.mkdtemp(prefix="smspipe-bench-"))
    private_key = secrets.token_urlsafe(24)
    keys = {
        "OGANGI_INSTANCE_ID": INSTANCE_ID,
        "OGANGI_PUBLIC_KEY": PUBLIC_KEY,
        "OGANGI_PRIVATE_KEY": private_key,
        "OGANGI_USERNAME": USERNAME,
        "OGANGI_SHORTCODE": SHORTCODE,
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OGANGI_", "SMSPIPE_"))}
    base.pop("REDIS_URL", None)
    redis = RedisServer(directory / "redis")
    sandbox = Sandbox(directory, {**base, **keys})
    try:
        redis.start()
        sandbox.start()
        env = {
            **base,
            **keys,
            "OGANGI_BASE_URL": sandbox.url,
            "REDIS_URL": redis.url,
            "SMSPIPE_BUCKET": str(directory / "bucket"),
            "SMSPIPE_HOME": str(directory / ".smspipe"),
            "SMSPIPE_CHUNK_SIZE": str(chunk_size),
            "SMSPIPE_LOG_FORMAT": "json",
            **WORKER_ENV,
        }
        st = Stack(directory, redis.url, sandbox, directory / "bucket", env)
        try:
            yield st
        finally:
            st.stop_workers()
    finally:
        sandbox.stop()
        redis.stop()
        shutil.rmtree(directory, ignore_errors=True)


def run_child(st: Stack, kind: str, path: Path) -> dict[str, Any]:
    """``--child KIND PATH OUT`` in a fresh interpreter with the workers' environment."""
    out = st.directory / f"{kind}.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.pipeline", "--child", kind, str(path), str(out)],
        cwd=ROOT,
        env=st.env,
    )
    _, status, _ = os.wait4(process.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or not out.exists():
        return {"error": f"{kind} child exited with {code}"}
    result: dict[str, Any] = json.loads(out.read_text())
    return result


# --- driving jobs -----------------------------------------------------------------------------


@dataclass
class JobRun:
    job_id: str
    status: dict[str, Any]
    enqueued_at: float  # time.time() just before send_file
    seconds: float  # send_file to the job's final state


async def send_and_wait(
    st: Stack,
    source: Path | bytes,
    *,
    text: str = TEXT,
    chunk_size: int | None = CHUNK,
    timeout: float = 600.0,
    poll: float = 0.005,
) -> JobRun:
    from jobs.enqueue import job_status, send_file
    from worker.app import open_pool
    from worker.storage import Bucket

    pool = await open_pool(st.redis_url)
    bucket = Bucket.from_setting(str(st.bucket))
    try:
        name = "bench.csv" if isinstance(source, bytes) else None
        wall0, t0 = time.time(), time.perf_counter()
        job_id = await send_file(
            pool, source, text, name=name, chunk_size=chunk_size, bucket=bucket
        )
        deadline = t0 + timeout
        while True:
            status = await job_status(pool, job_id)
            if status is not None and status["state"] in ("done", "failed"):
                return JobRun(job_id, status, wall0, time.perf_counter() - t0)
            if time.perf_counter() > deadline:
                raise SystemExit(f"job {job_id} not finished after {timeout:g}s: {status}")
            await asyncio.sleep(poll)
    finally:
        await pool.aclose()


def warm_up(st: Stack, workers: list[Worker], *, chunk_size: int = 500) -> None:
    """One small job per worker, the others paused meanwhile so that one takes it: first-call
    costs (phone tables, lazy imports) are paid once per process, at a long-lived worker's
    first job, not at every send."""
    rows = generate_rows(3_000, seed=SEED + 1)
    body = "phone,name,code\n" + "".join(f"{p},{n},{c}\n" for p, n, c in rows)
    for turn, worker in enumerate(workers):
        others = [w for w in workers if w is not worker]
        for other in others:  # else the worker whose poll comes first after enqueue takes it
            other.process.send_signal(signal.SIGSTOP)
        try:
            asyncio.run(
                send_and_wait(
                    st, body.encode(), text=f"Warm-up {turn} {{0}}", chunk_size=chunk_size
                )
            )
        finally:
            for other in others:
                other.process.send_signal(signal.SIGCONT)
