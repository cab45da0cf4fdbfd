"""Prometheus metrics: what operators watch. One registry per process.

Every process exposes its own counters (a worker on ``--metrics-port``, the intake and
``smspipe run`` on ``/metrics``); Prometheus adds them up across processes, so no
multiprocess mode is needed. ``smspipe_jobs`` is the exception: it is read from Redis when
scraped and is the same for the whole cluster, so only the intake (or ``smspipe run``)
exports it.

Hooks are plain functions that never raise into the pipeline: a metrics bug must not turn a
completed send into an error.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from redis.asyncio import Redis

from jobs.payloads import JOB_STATES
from ogangi.client import RequestEvent
from worker import keys

__all__ = [
    "CONTENT_TYPE",
    "REGISTRY",
    "job_finished",
    "observe_request",
    "render",
    "serve_metrics",
    "waited",
]

T = TypeVar("T")

REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)


JOBS = Gauge(
    "smspipe_jobs",
    "Jobs known to Redis by state (read from Redis at scrape time; cluster-wide).",
    ["state"],
    registry=REGISTRY,
)
JOBS_FINISHED = Counter(
    "smspipe_jobs_finished_total",
    "Jobs this process finalized, by final state.",
    ["state"],
    registry=REGISTRY,
)
MESSAGES = Counter(
    "smspipe_messages_total",
    "Input rows of jobs this process finalized, by final state (sent, rejected, ...).",
    ["state"],
    registry=REGISTRY,
)
PROVIDER_REQUESTS = Counter(
    "smspipe_provider_requests_total",
    "Calls to the provider API by endpoint and outcome (ok, or the error's class).",
    ["endpoint", "outcome"],
    registry=REGISTRY,
)
PROVIDER_LATENCY = Histogram(
    "smspipe_provider_request_seconds",
    "Provider call latency, sending included (a 10 000-row upload takes a while).",
    ["endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
RATE_LIMIT_WAIT = Histogram(
    "smspipe_ratelimit_wait_seconds",
    "Time a chunk waited for the shared provider rate limit before its call.",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
CHUNK_RETRIES = Counter(
    "smspipe_chunk_retries_total",
    "Chunks put back for a later try after transient provider trouble.",
    registry=REGISTRY,
)
WATCHER_FILES = Counter(
    "smspipe_watcher_files_total",
    "Files the bucket watcher took from inbox/, by outcome (enqueued, failed).",
    ["outcome"],
    registry=REGISTRY,
)
INTAKE_REQUESTS = Counter(
    "smspipe_intake_requests_total",
    "HTTP intake requests by route and status code.",
    ["route", "status"],
    registry=REGISTRY,
)


def observe_request(event: RequestEvent) -> None:
    """``OgangiClient(on_request=...)``: one call, its outcome and its latency."""
    outcome = "ok" if event.error is None else event.error
    PROVIDER_REQUESTS.labels(event.endpoint, outcome).inc()
    PROVIDER_LATENCY.labels(event.endpoint).observe(event.seconds)


async def waited(wait: Awaitable[T]) -> T:
    """Await a rate-limit wait, recording how long it took (also when it gives up)."""
    started = time.perf_counter()
    try:
        return await wait
    finally:
        RATE_LIMIT_WAIT.observe(time.perf_counter() - started)


def job_finished(state: str, counts: dict[str, int]) -> None:
    """A job's results were written: count it and its rows by final state."""
    JOBS_FINISHED.labels(state).inc()
    for row_state, n in counts.items():
        if n:
            MESSAGES.labels(row_state).inc(n)


async def job_state_counts(redis: Redis) -> dict[str, int]:
    """Jobs by state, from the summaries in Redis (SCAN, so a big keyspace is not blocked)."""
    counts = dict.fromkeys(JOB_STATES, 0)
    pattern = keys.job_summary("*")
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            await _count_states(redis, batch, counts)
            batch = []
    if batch:
        await _count_states(redis, batch, counts)
    return counts


async def _count_states(redis: Redis, batch: list[bytes], counts: dict[str, int]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for key in batch:
            pipe.hget(key.decode(), "state")
        for state in await pipe.execute():
            if state is not None:
                name = state.decode()
                counts[name] = counts.get(name, 0) + 1


async def render(redis: Redis | None = None) -> bytes:
    """The exposition text; with ``redis``, the cluster-wide job gauge is refreshed first."""
    if redis is not None:
        for state, n in (await job_state_counts(redis)).items():
            JOBS.labels(state).set(n)
    return generate_latest(REGISTRY)


@dataclass(frozen=True)
class MetricsServer:
    """``/metrics`` of this process on its own port (a daemon thread)."""

    port: int
    stop: Callable[[], None]


def serve_metrics(host: str, port: int) -> MetricsServer:
    """Serve this process's registry on ``http://host:port/metrics`` (port 0: a free one)."""
    server, thread = start_http_server(port, addr=host, registry=REGISTRY)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return MetricsServer(int(server.server_port), stop)
