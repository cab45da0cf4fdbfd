"""Helpers for broadcast-job tests: fast polling settings, a worker running beside the test,
and the sandbox's view of its broadcasts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis

from jobs.enqueue import job_status
from ogangi.sandbox.broadcasts import Broadcast as SandboxBroadcast
from ogangi.sandbox.server import Sandbox
from tests.conftest import FIXTURES
from tests.pipeline import settings_for
from worker.sending import running_worker
from worker.settings import Settings

MESSY = FIXTURES / "recipients" / "messy.xlsx"
#: messy.xlsx: 16 rows, 11 valid distinct numbers (4 rejected, 1 duplicate).
MESSY_READY = 11


def fast_settings(sandbox: Sandbox, tmp_path: Path, **overrides: object) -> Settings:
    """Polling every 50-200 ms: a test sees each state change within a fraction of a second."""
    values: dict[str, object] = {
        "smspipe_broadcast_poll_min": 0.05,
        "smspipe_broadcast_poll_max": 0.2,
    }
    values.update(overrides)
    return settings_for(sandbox, tmp_path / "bucket", **values)


@contextlib.asynccontextmanager
async def worker_running(settings: Settings, redis_url: str) -> AsyncIterator[None]:
    """An arq worker in this process for the duration of the block (the test acts meanwhile),
    stopped as ``smspipe send --wait`` stops its own."""
    async with running_worker(settings, redis_url):
        yield


def broadcasts(sandbox: Sandbox) -> list[SandboxBroadcast]:
    """Every broadcast the sandbox holds, brought up to its clock."""
    sandbox.state.broadcasts.advance_all(sandbox.state.clock())
    return sandbox.state.broadcasts.all()


async def until(
    check: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def job_broadcast_id(pool: ArqRedis, job_id: str) -> int:
    """The provider id of the job's (first) broadcast, once it exists."""

    async def created() -> int | None:
        status = await job_status(pool, job_id)
        parts = (status or {}).get("broadcasts") or []
        return parts[0]["id"] if parts and parts[0]["id"] else None

    return int(await until(created, what=f"a broadcast of {job_id}"))


class Clock:
    """A hand-moved sandbox clock (broadcast progress is computed from it)."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now
