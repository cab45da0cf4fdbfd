"""A job's summary in Redis: what ``smspipe status`` and ``GET /v1/jobs/{id}`` show.

One hash per job. Counters are HINCRBY'd by the chunk that earns them, exactly once per ledger
transition, so the summary is right however many workers share the job.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis.asyncio import Redis

from worker import keys

COUNTS = ("sent", "rejected", "duplicate", "suppressed", "failed", "unknown")
#: Summaries outlive their jobs long enough for anyone polling to see the end.
SUMMARY_TTL_SECONDS = 30 * 24 * 3600


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class JobStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def create(self, job_id: str, kind: str, name: str, **fields: Any) -> bool:
        """Register a queued job; False when a job with this id already exists."""
        key = keys.job_summary(job_id)
        created = await self.redis.hsetnx(key, "state", "queued")  # type: ignore[misc]
        if created:
            await self.update(job_id, kind=kind, name=name, created_at=now_iso(), **fields)
        return bool(created)

    async def exists(self, job_id: str) -> bool:
        return bool(await self.redis.exists(keys.job_summary(job_id)))

    async def update(self, job_id: str, **fields: Any) -> None:
        key = keys.job_summary(job_id)
        mapping = {k: _encode(v) for k, v in fields.items()}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, SUMMARY_TTL_SECONDS)
            await pipe.execute()

    async def fail(self, job_id: str, error: str) -> None:
        """Failed is final: the first error is the one the user sees."""
        key = keys.job_summary(job_id)
        await self.redis.hsetnx(key, "error", error)  # type: ignore[misc]
        await self.update(job_id, state="failed", finished_at=now_iso())

    async def add(self, job_id: str, **increments: int) -> None:
        key = keys.job_summary(job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            for field, amount in increments.items():
                if amount:
                    pipe.hincrby(key, field, amount)
            await pipe.execute()

    async def get(self, job_id: str) -> dict[str, str] | None:
        raw = await self.redis.hgetall(keys.job_summary(job_id))  # type: ignore[misc]
        if not raw:
            return None
        return {k.decode(): v.decode() for k, v in raw.items()}


def _encode(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)
