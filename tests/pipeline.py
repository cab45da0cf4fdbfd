"""Helpers for pipeline tests: settings pointing at a sandbox, a worker in this process or
`smspipe worker` processes beside the test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Self

from arq.connections import ArqRedis

from ogangi.sandbox.server import Sandbox
from worker.app import build_worker
from worker.settings import Settings


def settings_for(sandbox: Sandbox, bucket: Path, **overrides: object) -> Settings:
    creds = sandbox.credentials()
    values: dict[str, object] = {
        "ogangi_base_url": sandbox.base_url,
        "ogangi_instance_id": creds.instance_id,
        "ogangi_public_key": creds.public_key,
        "ogangi_private_key": creds.private_key,
        "ogangi_username": creds.username,
        "ogangi_timeout_seconds": 3.0,
        "smspipe_bucket": str(bucket),
        "smspipe_job_timeout": 10.0,
        "smspipe_home": bucket.parent / ".smspipe",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def run_worker_until_idle(settings: Settings, redis_url: str) -> None:
    """A burst worker: runs every queued job (retries included) and returns when none is left."""
    worker = build_worker(settings, redis_url, burst=True, handle_signals=False)
    try:
        await worker.main()
    finally:
        await worker.close()


def ledger_numbers(sandbox: Sandbox) -> Counter[str]:
    return Counter(entry.to for entry in sandbox.ledger.entries())


def write_csv(path: Path, numbers: list[str], header: str = "phone,name") -> Path:
    lines = [header] + [f"{n},Name{i}" for i, n in enumerate(numbers)]
    path.write_text("\n".join(lines) + "\n")
    return path


def us_numbers(count: int, start: int = 0) -> list[str]:
    """Distinct valid US numbers (Miami 305 area, 555-01xx is fictional but valid in metadata)."""
    return [f"+1 305 2{(start + i) // 10000:02d} {(start + i) % 10000:04d}" for i in range(count)]


def worker_env(settings: Settings, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `smspipe worker` subprocess configured like ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OGANGI_", "SMSPIPE_"))}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[name.upper()] = str(value)
    env["REDIS_URL"] = redis_url
    env["SMSPIPE_LOG_FORMAT"] = "json"
    env.update(extra)
    return env


class WorkerProcesses:
    """`smspipe worker` subprocesses configured like ``settings``, each logging to
    ``logs/<name>.log``. Leaving the ``async with`` stops every one still running (SIGTERM, then
    SIGKILL after 40 s), whether the test passed or failed."""

    def __init__(self, settings: Settings, redis_url: str, logs: Path) -> None:
        self.env = worker_env(settings, redis_url)
        self.logs = logs
        self.started: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        running = [process for process in self.started if process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), 40)
            except TimeoutError:
                process.kill()
                await process.wait()

    async def start(self, name: str = "worker") -> asyncio.subprocess.Process:
        with (self.logs / f"{name}.log").open("ab") as log:  # the child keeps its own copy
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "worker.cli", "worker",
                env=self.env, stdout=log, stderr=log,
            )  # fmt: skip
        self.started.append(process)
        return process

    @staticmethod
    async def kill(process: asyncio.subprocess.Process) -> None:
        """SIGKILL, as a crash would: the worker runs no shutdown code."""
        process.send_signal(signal.SIGKILL)
        await process.wait()


async def wait_for_job(pool: ArqRedis, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll until the job is done or failed; fail the test with the last status otherwise."""
    from jobs.enqueue import job_status

    deadline = asyncio.get_running_loop().time() + timeout
    status: dict[str, Any] | None = None
    while asyncio.get_running_loop().time() < deadline:
        status = await job_status(pool, job_id)
        if status and status["state"] in ("done", "failed"):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} not final after {timeout}s: {status}")
