"""The CLI's side of send jobs: connect to Redis (or the embedded one), enqueue, follow.

With an embedded Redis, ``send --wait`` runs a worker in this process, so a fresh machine needs
one command; servers it had to start are stopped at the end. With ``REDIS_URL`` set, the
workers run elsewhere and this only enqueues and watches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from jobs.enqueue import job_status, send_file
from jobs.payloads import FINAL_JOB_STATES
from worker.app import ResilientWorker, build_worker, open_pool
from worker.embedded import ensure_redis, stop_recorded
from worker.settings import Settings
from worker.storage import Bucket

POLL_SECONDS = 0.2


@dataclass
class Connection:
    url: str
    embedded: bool
    started: bool


def connect(settings: Settings) -> Connection:
    if settings.redis_url:
        return Connection(settings.redis_url, embedded=False, started=False)
    url, started = ensure_redis(settings.smspipe_home)
    return Connection(url, embedded=True, started=started)


@contextlib.asynccontextmanager
async def pool_for(settings: Settings) -> AsyncIterator[tuple[ArqRedis, Connection]]:
    connection = connect(settings)
    pool = await open_pool(connection.url)
    try:
        yield pool, connection
    finally:
        await pool.aclose()


async def send_and_follow(
    settings: Settings,
    file: Path,
    text: str,
    *,
    wait: bool,
    console: Console | None,
    **options: Any,
) -> dict[str, Any]:
    """Enqueue a send job; with ``wait``, follow it to its end. Returns its status."""
    sandbox_was_running = (settings.smspipe_home / "sandbox.json").exists()

    async def enqueue(pool: ArqRedis, bucket: Bucket) -> str:
        return await send_file(pool, file, text, bucket=bucket, **options)

    return await enqueue_and_follow(
        settings, enqueue, follow, console=console, wait=wait, what="job", verb="send",
        stop_sandbox=not sandbox_was_running,
    )  # fmt: skip


Enqueue = Callable[[ArqRedis, Bucket], Awaitable[str]]
Follow = Callable[[ArqRedis, str, "Console | None"], Awaitable[dict[str, Any]]]


async def enqueue_and_follow(
    settings: Settings,
    enqueue: Enqueue,
    follow_job: Follow,
    *,
    console: Console | None,
    wait: bool,
    what: str,
    verb: str,
    stop_sandbox: bool,
) -> dict[str, Any]:
    """The shape of every ``--wait`` command: enqueue, then (embedded Redis) run a worker here
    while following the job, then stop the embedded servers this command had to start.

    Without ``--wait`` a started Redis stays up: the job waits in it for a worker. When the
    command fails (a refused list, Ctrl-C), what it started is stopped all the same.
    """
    started: Connection | None = None
    keep = False
    try:
        async with pool_for(settings) as (pool, connection):
            started = connection
            job_id = await enqueue(pool, Bucket.from_setting(settings.smspipe_bucket))
            if console is not None:
                console.print(f"{what} [bold]{job_id}[/] queued", highlight=False)
            if not wait:
                keep = True
                if connection.embedded and console is not None:
                    console.print(
                        f"run [bold]smspipe worker[/] (or {verb} with --wait) to process it"
                    )
                status = await job_status(pool, job_id)
                assert status is not None
                return status
            async with worker_alongside(settings, connection):
                status = await follow_job(pool, job_id, console)
        return status
    finally:
        if started is not None and not keep:
            release_embedded(settings, started, stop_sandbox=stop_sandbox)


@contextlib.asynccontextmanager
async def worker_alongside(settings: Settings, connection: Connection) -> AsyncIterator[None]:
    """With an embedded Redis no other process runs the jobs: run a worker here meanwhile."""
    if not connection.embedded:
        yield
        return
    async with running_worker(settings, connection.url):
        yield


#: Seconds a worker run for one command gets, once the block ends, to finish the jobs in hand:
#: a job reads ``done`` before its finalize has cleaned up its ``work/`` files.
DRAIN_SECONDS = 30.0


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, redis_url: str) -> AsyncIterator[ResilientWorker]:
    """An arq worker in this process for the duration of the block; on the way out it stops
    taking jobs, lets those in hand end (``DRAIN_SECONDS`` at most) and closes."""
    worker = build_worker(settings, redis_url, handle_signals=False)
    worker_task = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        await worker.drain(DRAIN_SECONDS)
        await worker.close()
        worker_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await worker_task


def release_embedded(settings: Settings, connection: Connection, *, stop_sandbox: bool) -> None:
    """After a one-shot ``--wait``: stop the embedded servers this command had to start."""
    if not connection.embedded:
        return
    if stop_sandbox and settings.uses_sandbox:
        stop_recorded(settings.smspipe_home, "sandbox")
    if connection.started:
        stop_recorded(settings.smspipe_home, "redis")


async def follow(pool: ArqRedis, job_id: str, console: Console | None) -> dict[str, Any]:
    """Poll the job's summary until it is final, drawing a progress bar when there is a tty."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8} msg/s"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=console is None,
    )
    with progress:
        task = progress.add_task("queued", total=None, rate="")
        started = asyncio.get_running_loop().time()
        while True:
            status = await job_status(pool, job_id)
            if status is None:
                raise RuntimeError(f"job {job_id} vanished from Redis")
            counts = status["counts"]
            done = counts["sent"] + counts["failed"] + counts["unknown"]
            elapsed = max(asyncio.get_running_loop().time() - started, 1e-6)
            progress.update(
                task,
                description=f"{status['state']} {status['chunks']['done']}/"
                f"{status['chunks']['total']} chunks",
                total=status["ready"] or None,
                completed=done,
                rate=f"{done / elapsed:,.0f}",
            )
            if status["state"] in FINAL_JOB_STATES:
                return status
            await asyncio.sleep(POLL_SECONDS)


async def fetch_status(settings: Settings, job_id: str) -> dict[str, Any] | None:
    async with pool_for(settings) as (pool, connection):
        found = await job_status(pool, job_id)
    if connection.started:  # it was only woken up to answer this question
        stop_recorded(settings.smspipe_home, "redis")
    return found


def run_worker(settings: Settings, *, burst: bool, console: Console) -> None:
    connection = connect(settings)
    where = "embedded redis" if connection.embedded else "redis"
    console.print(f"worker on {where} ({connection.url.split('@')[-1]})", highlight=False)
    worker = build_worker(settings, connection.url, burst=burst)
    worker.run()
