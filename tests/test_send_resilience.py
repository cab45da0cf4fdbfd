"""Exactly once, no row lost: worker crashes, provider faults, Redis restarts, shared limits.

Workers here are real `smspipe worker` processes (or in-process arq workers), Redis is a real
redis-server, and the provider is the sandbox over HTTP.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import pandas as pd
from arq.connections import ArqRedis

from jobs.enqueue import send_file
from jobs.results import read_results
from ogangi.sandbox import FaultPlan, SandboxConfig, running_sandbox
from ogangi.sandbox.faults import FaultKind
from tests.pipeline import (
    WorkerProcesses,
    ledger_numbers,
    run_worker_until_idle,
    settings_for,
    us_numbers,
    wait_for_job,
    write_csv,
)
from worker.app import open_pool
from worker.embedded import RedisServer
from worker.storage import Bucket


def check_accounting(results: pd.DataFrame, sent: Counter[str], input_rows: int) -> None:
    """No number twice; every input row reported; SENT rows reached the provider, FAILED did not."""
    assert max(sent.values(), default=1) == 1, [n for n, c in sent.items() if c > 1][:5]
    assert list(results["row"]) == list(range(1, input_rows + 1))
    by_state = {s: set(results.loc[results["state"] == s, "msisdn"]) for s in ("SENT", "FAILED")}
    assert by_state["SENT"] <= set(sent)
    assert not (by_state["FAILED"] & set(sent))
    assert set(sent) <= by_state["SENT"] | set(results.loc[results["state"] == "UNKNOWN", "msisdn"])


async def test_worker_killed_mid_job_then_a_new_worker_finishes_it(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """SIGKILL in the middle of a job: a new worker finishes it, no number twice, no row lost."""
    numbers = us_numbers(400)
    source = write_csv(tmp_path / "list.csv", numbers)
    config = SandboxConfig(faults=FaultPlan(latency_seconds=0.4))
    async with running_sandbox(config) as sandbox:
        settings = settings_for(
            sandbox, tmp_path / "bucket", smspipe_chunk_size=20, smspipe_concurrency=2,
            smspipe_job_timeout=3.0, ogangi_shortcode="55500",
        )  # fmt: skip
        pool: ArqRedis = await open_pool(redis_url)
        bucket = Bucket.from_setting(str(tmp_path / "bucket"))
        async with pool, WorkerProcesses(settings, redis_url, tmp_path) as workers:
            job_id = await send_file(pool, source, "Hi {0}", bucket=bucket)
            first = await workers.start("worker1")

            # Kill a quarter of the way in, while both calls in flight sit at the provider: a
            # kill between the ledger entry and the request leaving would leave numbers never
            # sent (reported UNKNOWN), which is right but not what this test is about.
            def both_calls_at_the_provider() -> bool:
                stats = sandbox.state.stats
                answered = sum(stats.outcomes.values())
                return answered >= 5 and stats.total - answered == 2  # both slots in latency

            while not both_calls_at_the_provider():
                await asyncio.sleep(0.01)
            await workers.kill(first)
            at_kill = len(sandbox.ledger)
            await workers.start("worker2")
            status = await wait_for_job(pool, job_id, timeout=60)
        sent = ledger_numbers(sandbox)

    assert 100 <= at_kill < 400
    assert status["state"] == "done", status
    results = read_results(status["results"])
    check_accounting(results, sent, 400)
    assert set(results["state"]) <= {"SENT", "UNKNOWN"}
    assert sum(sent.values()) == 400  # every valid number reached the provider exactly once


async def test_provider_faults_never_send_twice_and_lose_no_row(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """10% faults of every kind: the job ends, ambiguous chunks are UNKNOWN, nothing doubled."""
    numbers = us_numbers(600)
    source = write_csv(tmp_path / "list.csv", numbers + ["555", "n/a"])
    rates = {
        FaultKind.HTTP_503: 0.02,
        FaultKind.ERROR_XML: 0.02,
        FaultKind.GARBAGE_BODY: 0.015,
        FaultKind.RATE_LIMIT_429: 0.02,
        FaultKind.TIMEOUT_BEFORE_ACCEPT: 0.015,
        FaultKind.TIMEOUT_AFTER_ACCEPT: 0.01,
    }
    config = SandboxConfig(
        faults=FaultPlan(rates=rates, seed=7, hang_seconds=1.5, retry_after_seconds=0.2)
    )
    async with running_sandbox(config) as sandbox:
        settings = settings_for(
            sandbox, tmp_path / "bucket", smspipe_chunk_size=5, ogangi_timeout_seconds=0.8
        )
        pool: ArqRedis = await open_pool(redis_url)
        bucket = Bucket.from_setting(str(tmp_path / "bucket"))
        job_id = await send_file(pool, source, "Hi {0}", bucket=bucket)
        await run_worker_until_idle(settings, redis_url)
        status = await wait_for_job(pool, job_id, timeout=5)
        await pool.aclose()
        sent = ledger_numbers(sandbox)
        outcomes = sandbox.state.stats.outcomes

    assert status["state"] == "done", status
    results = read_results(status["results"])
    check_accounting(results, sent, 602)
    states = Counter(results["state"])
    assert states["REJECTED"] == 2 and states["SENT"] > 450
    assert states["FAILED"] >= 5  # the ERROR answers: permanent, not retried
    faults_seen = {outcome for (_, outcome) in outcomes}
    assert len(faults_seen) >= 5, faults_seen


async def test_redis_restart_in_the_middle_of_a_job_loses_nothing(
    tmp_path: Path, redis: object
) -> None:
    """Redis stops and comes back (AOF on): the worker rides it out and the job completes."""
    server = RedisServer(tmp_path / "redis", unix_socket=False)
    server.start()
    numbers = us_numbers(300)
    source = write_csv(tmp_path / "list.csv", numbers)
    config = SandboxConfig(faults=FaultPlan(latency_seconds=0.1))
    try:
        async with running_sandbox(config) as sandbox:
            settings = settings_for(sandbox, tmp_path / "bucket", smspipe_chunk_size=10)
            pool: ArqRedis = await open_pool(server.url)
            bucket = Bucket.from_setting(str(tmp_path / "bucket"))
            async with pool, WorkerProcesses(settings, server.url, tmp_path) as workers:
                job_id = await send_file(pool, source, "Hi {0}", bucket=bucket)
                await workers.start("worker")
                while len(sandbox.ledger) < 60:
                    await asyncio.sleep(0.02)
                server.stop()
                await asyncio.sleep(1.0)
                server.start()
                status = await wait_for_job(pool, job_id, timeout=60)
            sent = ledger_numbers(sandbox)
    finally:
        server.stop()

    assert status["state"] == "done", status
    results = read_results(status["results"])
    check_accounting(results, sent, 300)
    assert sum(sent.values()) == 300


async def test_four_workers_share_one_request_rate(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """4 worker processes, limit 8 requests/s: the provider never sees 9 in any 1 s window."""
    numbers = us_numbers(160)
    source = write_csv(tmp_path / "list.csv", numbers)
    async with running_sandbox() as sandbox:
        settings = settings_for(
            sandbox, tmp_path / "bucket", smspipe_chunk_size=4,
            smspipe_max_requests_per_second=8.0, ogangi_shortcode="55500",
        )  # fmt: skip
        pool: ArqRedis = await open_pool(redis_url)
        async with pool, WorkerProcesses(settings, redis_url, tmp_path) as workers:
            for i in range(4):
                await workers.start(f"w{i}")
            await asyncio.sleep(1.5)  # all four are polling before the work arrives
            bucket = Bucket.from_setting(str(tmp_path / "bucket"))
            job_id = await send_file(pool, source, "Hi {0}", bucket=bucket)
            status = await wait_for_job(pool, job_id, timeout=60)
        stats = sandbox.state.stats

    assert status["state"] == "done" and status["counts"]["sent"] == 160, status
    assert stats.total >= 40
    assert stats.arrivals.max <= 8, stats.to_json(0)


async def test_sigterm_lets_the_chunks_in_hand_finish(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """SIGTERM mid-job: the worker finishes its calls and exits 0; the next one ends the job
    with every row SENT (nothing left ambiguous by the shutdown)."""
    numbers = us_numbers(200)
    source = write_csv(tmp_path / "list.csv", numbers)
    config = SandboxConfig(faults=FaultPlan(latency_seconds=0.3))
    async with running_sandbox(config) as sandbox:
        settings = settings_for(sandbox, tmp_path / "bucket", smspipe_chunk_size=10)
        pool: ArqRedis = await open_pool(redis_url)
        bucket = Bucket.from_setting(str(tmp_path / "bucket"))
        async with pool, WorkerProcesses(settings, redis_url, tmp_path) as workers:
            job_id = await send_file(pool, source, "Hi {0}", bucket=bucket)
            first = await workers.start("worker1")
            while len(sandbox.ledger) < 40:
                await asyncio.sleep(0.02)
            first.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(first.wait(), 30)
            await workers.start("worker2")
            status = await wait_for_job(pool, job_id, timeout=60)
        sent = ledger_numbers(sandbox)

    assert code == 0
    assert status["state"] == "done" and status["counts"]["sent"] == 200, status
    results = read_results(status["results"])
    check_accounting(results, sent, 200)
    assert set(results["state"]) == {"SENT"}
