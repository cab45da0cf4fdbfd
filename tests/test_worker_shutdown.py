"""How a worker run inside a command (``send --wait``, tests) stops: real redis-server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ogangi.sandbox import running_sandbox
from tests.pipeline import settings_for
from worker import sending
from worker.sending import running_worker


async def test_jobs_in_hand_are_let_finish_when_the_block_ends(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """A job still running when the command is done (finalize cleans up after the job reads
    'done') ends on its own instead of being cancelled half-way."""
    async with running_sandbox() as sandbox:
        settings = settings_for(sandbox, tmp_path / "bucket")
        async with running_worker(settings, redis_url) as worker:
            in_hand = asyncio.create_task(asyncio.sleep(0.3, result="finished"))
            worker.tasks["in-hand"] = in_hand

    assert in_hand.done() and not in_hand.cancelled() and in_hand.result() == "finished"


async def test_a_job_that_outlasts_the_drain_is_cancelled_without_an_error(
    tmp_path: Path, redis_url: str, redis: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past DRAIN_SECONDS the job is cancelled (it runs again at the next worker); leaving the
    block raises nothing (arq's close re-raised the job's CancelledError) and the worker's
    connections are closed."""
    monkeypatch.setattr(sending, "DRAIN_SECONDS", 0.1)
    async with running_sandbox() as sandbox:
        settings = settings_for(sandbox, tmp_path / "bucket")
        async with running_worker(settings, redis_url) as worker:
            stuck = asyncio.create_task(asyncio.sleep(60))
            worker.tasks["stuck"] = stuck

    assert stuck.cancelled()
    assert worker._pool is None  # arq's close ran to its end
