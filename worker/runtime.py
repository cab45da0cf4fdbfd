"""What a worker process holds for its jobs: one provider client, the bucket, the shared rate
limit, the job store. Built once at start-up, handed to every job through arq's ``ctx``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from ogangi.client import OgangiClient
from worker import metrics
from worker.jobstore import JobStore
from worker.provider import Provider, resolve_provider
from worker.ratelimit import RateLimiter
from worker.settings import Settings
from worker.storage import Bucket

CTX_KEY = "smspipe"


@dataclass
class Runtime:
    settings: Settings
    provider: Provider
    redis: Redis
    bucket: Bucket
    client: OgangiClient
    limiter: RateLimiter
    jobs: JobStore
    #: Per-process cap on requests in flight, on top of the shared rate limit.
    send_slots: asyncio.Semaphore

    @classmethod
    async def start(cls, settings: Settings, redis: Redis) -> Runtime:
        provider = await asyncio.to_thread(resolve_provider, settings)
        credentials = provider.credentials
        account = f"{provider.base_url}|{credentials.instance_id}|{credentials.public_key}"
        return cls(
            settings=settings,
            provider=provider,
            redis=redis,
            bucket=Bucket.from_setting(settings.smspipe_bucket),
            client=OgangiClient(
                provider.base_url,
                credentials,
                timeout=settings.ogangi_timeout_seconds,
                max_connections=settings.smspipe_concurrency,
                on_request=metrics.observe_request,
            ),
            limiter=RateLimiter(
                redis,
                account,
                requests_per_second=settings.smspipe_max_requests_per_second,
                messages_per_second=settings.smspipe_max_messages_per_second,
                margin=settings.smspipe_rate_margin,
            ),
            jobs=JobStore(redis),
            send_slots=asyncio.Semaphore(settings.smspipe_concurrency),
        )

    async def close(self) -> None:
        await self.client.aclose()


def runtime(ctx: dict[str, Any]) -> Runtime:
    rt = ctx[CTX_KEY]
    assert isinstance(rt, Runtime)
    return rt
