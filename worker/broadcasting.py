"""The CLI's side of broadcast jobs: enqueue, follow, act, read the history.

``broadcast create --wait`` follows the job with a progress bar fed by the getBroadcast readings
the tracker records; with an embedded Redis it runs a worker in this process meanwhile (the
machinery of ``send --wait``, ``worker.sending``). The embedded sandbox is left running: the
broadcast must still exist for ``broadcast get`` afterwards.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from jobs.broadcast_api import broadcast_options
from jobs.enqueue import broadcast_action, broadcast_history, create_broadcast, job_status
from jobs.payloads import FINAL_JOB_STATES
from worker.embedded import stop_recorded
from worker.sending import enqueue_and_follow, pool_for
from worker.settings import Settings
from worker.storage import Bucket

POLL_SECONDS = 0.2


async def create_and_follow(
    settings: Settings,
    file: Path,
    text: str,
    *,
    wait: bool,
    console: Console | None,
    **options: Any,
) -> dict[str, Any]:
    """Enqueue a broadcast job; with ``wait``, follow it to its end. Returns its status."""
    # A bad --at / --tz / --campaign fails here, before an embedded Redis is woken up for it.
    broadcast_options(
        text, file.name, at=options.get("at"), tz=options.get("tz") or settings.smspipe_timezone,
        campaign=options.get("campaign"),
    )  # fmt: skip

    async def enqueue(pool: ArqRedis, bucket: Bucket) -> str:
        return await create_broadcast(pool, file, text, bucket=bucket, settings=settings, **options)

    # The embedded sandbox stays up: the broadcast must still exist for `broadcast get`.
    return await enqueue_and_follow(
        settings, enqueue, follow_broadcast_job, console=console, wait=wait,
        what="broadcast job", verb="create", stop_sandbox=False,
    )  # fmt: skip


async def follow_broadcast_job(
    pool: ArqRedis, job_id: str, console: Console | None
) -> dict[str, Any]:
    """Poll the job's summary until it is final; the bar shows the broadcasts' sentMessages."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=console is None,
    )
    with progress:
        task = progress.add_task("queued", total=None)
        while True:
            status = await job_status(pool, job_id)
            if status is None:
                raise RuntimeError(f"job {job_id} vanished from Redis")
            parts = status.get("broadcasts") or []
            expected = sum(p["expected"] for p in parts) or status["ready"] or None
            progress.update(
                task,
                description=describe_progress(status),
                total=expected,
                completed=sum(p["sent"] for p in parts),
            )
            if status["state"] in FINAL_JOB_STATES:
                return status
            await asyncio.sleep(POLL_SECONDS)


def describe_progress(status: dict[str, Any]) -> str:
    parts = status.get("broadcasts") or []
    if not parts:
        return str(status["state"])
    shown = ", ".join(f"{p['id'] or '-'} {p['status']}" for p in parts[:3])
    more = f" (+{len(parts) - 3})" if len(parts) > 3 else ""
    return f"broadcast {shown}{more}"


async def act(settings: Settings, target: str, action: str) -> list[dict[str, Any]]:
    """``smspipe broadcast suspend|resume|stop|delete``: at once, recorded in the job."""
    started = False
    try:
        async with pool_for(settings) as (pool, connection):
            started = connection.started
            results = await broadcast_action(pool, target, action, settings=settings)  # type: ignore[arg-type]
    finally:
        if started:  # woken up only to record this action
            stop_recorded(settings.smspipe_home, "redis")
    return [r.to_json() for r in results]


async def history(settings: Settings, job_id: str, limit: int | None) -> list[dict[str, Any]]:
    async with pool_for(settings) as (pool, connection):
        events = await broadcast_history(pool, job_id, limit)
    if connection.started:
        stop_recorded(settings.smspipe_home, "redis")
    return events
