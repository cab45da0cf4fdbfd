"""Prometheus metrics: what a send leaves in the counters, and where each process exposes them."""

from __future__ import annotations

import asyncio
import signal
import sys
import urllib.request
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis
from arq.connections import ArqRedis

from jobs.enqueue import send_file
from ogangi.sandbox import FaultPlan, SandboxConfig, running_sandbox
from ogangi.sandbox.faults import FaultKind
from tests.pipeline import run_worker_until_idle, settings_for, us_numbers, worker_env, write_csv
from worker.app import open_pool
from worker.embedded import free_port
from worker.intake import running_intake
from worker.metrics import REGISTRY, serve_metrics
from worker.settings import Settings
from worker.storage import Bucket

TOKEN = "metrics-test-token-5e8f01c2"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_send_counts_messages_by_final_state_and_provider_calls_by_outcome(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    """7 sent + 1 rejected in 2 chunks: counters, latency and rate-limit waits move by that."""
    before = {
        "sent": sample("smspipe_messages_total", state="sent"),
        "rejected": sample("smspipe_messages_total", state="rejected"),
        "ok": sample("smspipe_provider_requests_total", endpoint="sendSMSByFile", outcome="ok"),
        "latency": sample("smspipe_provider_request_seconds_count", endpoint="sendSMSByFile"),
        "waits": sample("smspipe_ratelimit_wait_seconds_count"),
        "jobs": sample("smspipe_jobs_finished_total", state="done"),
    }
    source = write_csv(tmp_path / "list.csv", us_numbers(7) + ["12"])
    async with running_sandbox() as sandbox:
        settings = settings_for(sandbox, tmp_path / "bucket", smspipe_chunk_size=4)
        pool: ArqRedis = await open_pool(redis_url)
        await send_file(pool, source, "Hi {0}", bucket=Bucket.from_setting(settings.smspipe_bucket))
        await run_worker_until_idle(settings, redis_url)
        await pool.aclose()

    assert sample("smspipe_messages_total", state="sent") - before["sent"] == 7
    assert sample("smspipe_messages_total", state="rejected") - before["rejected"] == 1
    assert sample("smspipe_jobs_finished_total", state="done") - before["jobs"] == 1
    ok = sample("smspipe_provider_requests_total", endpoint="sendSMSByFile", outcome="ok")
    assert ok - before["ok"] == 2
    latency = sample("smspipe_provider_request_seconds_count", endpoint="sendSMSByFile")
    assert latency - before["latency"] == 2
    assert sample("smspipe_ratelimit_wait_seconds_count") - before["waits"] == 2


async def test_a_chunk_retried_through_a_503_is_counted_with_the_failed_call(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    """The provider answers 503 once: one retry, one call counted by its error class."""
    retries = sample("smspipe_chunk_retries_total")
    failed_calls = sum(
        metric.value
        for family in REGISTRY.collect()
        if family.name == "smspipe_provider_requests"
        for metric in family.samples
        if metric.labels.get("outcome") not in (None, "ok") and metric.name.endswith("_total")
    )
    config = SandboxConfig(faults=FaultPlan(script=(FaultKind.HTTP_503,)))
    source = write_csv(tmp_path / "list.csv", us_numbers(3))
    async with running_sandbox(config) as sandbox:
        settings = settings_for(sandbox, tmp_path / "bucket")
        pool: ArqRedis = await open_pool(redis_url)
        await send_file(pool, source, "Hi", bucket=Bucket.from_setting(settings.smspipe_bucket))
        await run_worker_until_idle(settings, redis_url)
        await pool.aclose()

    assert sample("smspipe_chunk_retries_total") - retries == 1
    failed_now = sum(
        metric.value
        for family in REGISTRY.collect()
        if family.name == "smspipe_provider_requests"
        for metric in family.samples
        if metric.labels.get("outcome") not in (None, "ok") and metric.name.endswith("_total")
    )
    assert failed_now - failed_calls == 1


async def test_the_intake_metrics_need_the_token_and_show_jobs_by_state(
    tmp_path: Path, clean_env: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    """GET /metrics: 401 without the token; with it, the cluster's jobs by state from Redis."""
    settings = Settings(
        smspipe_bucket=str(tmp_path / "bucket"),
        smspipe_home=tmp_path / ".smspipe",
        smspipe_api_token=TOKEN,
    )
    pool: ArqRedis = await open_pool(redis_url)
    await send_file(
        pool, write_csv(tmp_path / "a.csv", us_numbers(2)), "Hi",
        bucket=Bucket.from_setting(settings.smspipe_bucket),
    )  # fmt: skip
    async with (
        running_intake(settings, pool, host="127.0.0.1", port=0) as url,
        aiohttp.ClientSession(url) as http,
    ):
        refused = await http.get("/metrics")
        response = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        text = await response.text()
    await pool.aclose()

    assert refused.status == 401
    assert response.status == 200
    assert 'smspipe_jobs{state="queued"} 1.0' in text
    assert 'smspipe_jobs{state="done"} 0.0' in text
    assert "# TYPE smspipe_provider_request_seconds histogram" in text


def test_a_metrics_port_serves_this_process_registry() -> None:
    """serve_metrics: plain Prometheus text on its own loopback port, stoppable."""
    server = serve_metrics("127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            text = r.read().decode()
    finally:
        server.stop()

    assert "# HELP smspipe_messages_total" in text
    assert "# TYPE smspipe_chunk_retries_total counter" in text


async def test_smspipe_worker_metrics_port_exposes_its_metrics(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    """`smspipe worker --metrics-port N`: /metrics answers while the worker runs."""
    port = free_port()
    async with running_sandbox() as sandbox:
        env = worker_env(settings_for(sandbox, tmp_path / "bucket"), redis_url)
        log = (tmp_path / "worker.log").open("ab")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "worker.cli", "worker", "--metrics-port", str(port),
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
        try:
            text = await _get_when_up(f"http://127.0.0.1:{port}/metrics")
        finally:
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 30)

    assert "smspipe_ratelimit_wait_seconds" in text
    assert code == 0


async def _get_when_up(url: str, timeout: float = 20.0) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as response:
                    return await response.text()
            except aiohttp.ClientConnectionError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.1)
