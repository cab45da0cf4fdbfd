"""A create call is never repeated blindly: worker crashes, ambiguous answers, re-runs.

A repeated createBroadcastFromJson is a second broadcast (every recipient twice), so only a
failure that proves nothing was accepted is retried; anything else is reported, and the sandbox
is the witness of how many broadcasts exist.
"""

from __future__ import annotations

from pathlib import Path

from arq.connections import ArqRedis

from jobs.broadcast_jobs import create_broadcast as create_broadcast_job
from jobs.enqueue import create_broadcast, job_status
from jobs.results import read_results
from ogangi.sandbox import FaultPlan, SandboxConfig, running_sandbox
from ogangi.sandbox.faults import FaultKind
from ogangi.sandbox.server import Sandbox
from tests.broadcast_helpers import MESSY, MESSY_READY, broadcasts, fast_settings, until
from tests.pipeline import WorkerProcesses, run_worker_until_idle, wait_for_job
from worker.app import open_pool
from worker.jobstore import JobStore
from worker.runtime import CTX_KEY, Runtime

CREATE = "createBroadcastFromJson"


def create_calls(sandbox: Sandbox) -> int:
    return sum(n for (route, _), n in sandbox.state.stats.outcomes.items() if route == CREATE)


def once(kind: FaultKind, **plan: object) -> FaultPlan:
    """The first create call meets ``kind``; every other call is served normally."""
    return FaultPlan(script=(kind,), routes=frozenset({CREATE}), **plan)  # type: ignore[arg-type]


async def test_a_worker_killed_during_create_does_not_create_a_second_broadcast(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """SIGKILL after the provider accepted the create: the re-run creates nothing; one exists."""
    config = SandboxConfig(faults=once(FaultKind.TIMEOUT_AFTER_ACCEPT, hang_seconds=30))
    async with running_sandbox(config) as sandbox:
        # arq re-runs a dead worker's job once its in-progress key expires: timeout + 10 s.
        settings = fast_settings(sandbox, tmp_path, smspipe_job_timeout=2.0)
        pool: ArqRedis = await open_pool(redis_url)
        async with pool, WorkerProcesses(settings, redis_url, tmp_path) as workers:
            job_id = await create_broadcast(pool, MESSY, "Hi {0}", settings=settings)
            first = await workers.start("worker1")
            await until(lambda: broadcasts(sandbox), timeout=20, what="the provider to create it")
            await workers.kill(first)  # the create's answer never arrives
            await workers.start("worker2")
            status = await wait_for_job(pool, job_id, timeout=30)
        made = broadcasts(sandbox)
        calls = create_calls(sandbox)

    assert len(made) == 1 and calls == 1
    assert status["state"] == "failed" and status["outcome"] == "CREATE_UNKNOWN", status
    assert "ambiguous: a worker stopped while creating the broadcast" in status["error"]
    assert "not created again" in status["error"]
    results = read_results(status["results"])
    assert status["counts"]["unknown"] == MESSY_READY
    assert set(results.loc[results["chunk"].notna(), "state"]) == {"UNKNOWN"}


async def test_an_ambiguous_create_answer_is_reported_not_retried(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """Created, then no answer within the timeout: one broadcast, the job fails saying why."""
    config = SandboxConfig(faults=once(FaultKind.TIMEOUT_AFTER_ACCEPT, hang_seconds=3))
    async with running_sandbox(config) as sandbox:
        settings = fast_settings(sandbox, tmp_path, ogangi_timeout_seconds=0.5)
        pool: ArqRedis = await open_pool(redis_url)
        job_id = await create_broadcast(pool, MESSY, "Hi {0}", settings=settings)
        await run_worker_until_idle(settings, redis_url)
        status = await job_status(pool, job_id)
        await pool.aclose()
        made = broadcasts(sandbox)
        calls = create_calls(sandbox)

    assert len(made) == 1 and calls == 1
    assert status is not None and status["state"] == "failed", status
    assert "ambiguous: creating the broadcast got no usable answer" in status["error"]
    assert "so it is not retried" in status["error"]


async def test_a_create_refused_before_acceptance_is_retried_once_accepted(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """HTTP 503 (nothing accepted) on the first try: retried, one broadcast, DONE."""
    config = SandboxConfig(faults=once(FaultKind.HTTP_503))
    async with running_sandbox(config) as sandbox:
        settings = fast_settings(sandbox, tmp_path)
        pool: ArqRedis = await open_pool(redis_url)
        job_id = await create_broadcast(pool, MESSY, "Hi {0}", settings=settings)
        await run_worker_until_idle(settings, redis_url)
        status = await job_status(pool, job_id)
        await pool.aclose()
        made = broadcasts(sandbox)
        calls = create_calls(sandbox)

    assert len(made) == 1 and calls == 2
    assert status is not None and status["state"] == "done" and status["retries"] == 1, status


async def test_a_create_job_run_again_reuses_the_broadcast_it_created(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """The same create job run twice (a crash after the create): the recorded id is reused."""
    async with running_sandbox() as sandbox:
        settings = fast_settings(sandbox, tmp_path)
        pool: ArqRedis = await open_pool(redis_url)
        job_id = await create_broadcast(pool, MESSY, "Hi {0}", settings=settings)
        [queued] = await pool.queued_jobs()  # what a worker would run: create_broadcast(payload)
        runtime = await Runtime.start(settings, pool)
        ctx = {CTX_KEY: runtime, "redis": pool, "job_try": 1}
        try:
            first = await create_broadcast_job(ctx, *queued.args)
            second = await create_broadcast_job(ctx, *queued.args)
        finally:
            await runtime.close()
        summary = await JobStore(pool).get(job_id)
        await pool.aclose()
        made = broadcasts(sandbox)
        calls = create_calls(sandbox)

    assert (first, second) == ("sending", "sending")
    assert len(made) == 1 and calls == 1
    assert summary is not None and summary["state"] == "sending"
