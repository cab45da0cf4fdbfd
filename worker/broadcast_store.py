"""What smspipe remembers about its broadcasts in Redis, beside the job summary.

- which broadcast ids a job created (``keys.broadcast_parts``), written the moment the provider
  answers, before the ledger says done: a re-run reuses them and never creates again;
- which job a broadcast belongs to (``keys.broadcast_owner``), per provider account, so that
  ``smspipe broadcast stop 17`` is recorded in the right job;
- the job's history (``keys.broadcast_history``): every getBroadcast reading and every action,
  oldest first, the newest ``HISTORY_LIMIT`` kept;
- the last reading of each broadcast, as the ``broadcasts`` field of the job summary (what
  ``smspipe status`` shows).
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis.asyncio import Redis

from jobs.broadcast_payloads import DELETED, Part, parts_from_text, parts_to_text
from ogangi.models import Credentials
from worker import keys
from worker.jobstore import SUMMARY_TTL_SECONDS, JobStore

#: Events kept per job: at the slowest polling (30 s) about eight hours of readings.
HISTORY_LIMIT = 1000


def provider_account(base_url: str, credentials: Credentials) -> str:
    """Broadcast ids count per provider account (no secret in it: it names Redis keys)."""
    return f"{base_url.rstrip('/')}|{credentials.instance_id}|{credentials.public_key}"


def iso(at: float | None = None) -> str:
    stamp = time.time() if at is None else at
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp % 1 * 1000):03d}Z"


class BroadcastStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.jobs = JobStore(redis)

    # -- ids --------------------------------------------------------------------------------

    async def created(self, job_id: str, index: int, broadcast_id: int, account: str) -> None:
        """Remember a broadcast the provider just created for part ``index`` of the job."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.broadcast_parts(job_id), str(index), str(broadcast_id))
            pipe.expire(keys.broadcast_parts(job_id), SUMMARY_TTL_SECONDS)
            pipe.set(keys.broadcast_owner(account, broadcast_id), job_id, ex=SUMMARY_TTL_SECONDS)
            await pipe.execute()

    async def created_ids(self, job_id: str) -> dict[int, int]:
        raw = await self.redis.hgetall(keys.broadcast_parts(job_id))  # type: ignore[misc]
        return {int(k): int(v) for k, v in raw.items()}

    async def owner(self, account: str, broadcast_id: int) -> str | None:
        value = await self.redis.get(keys.broadcast_owner(account, broadcast_id))
        return None if value is None else value.decode()

    # -- last readings ------------------------------------------------------------------------

    async def parts(self, job_id: str) -> list[Part]:
        raw = await self.redis.hget(keys.job_summary(job_id), "broadcasts")  # type: ignore[misc]
        return parts_from_text(raw.decode() if raw is not None else None)

    async def save_parts(self, job_id: str, parts: list[Part], **fields: Any) -> None:
        """Store the readings (a DELETED recorded meanwhile by an action is kept)."""
        current = {p.index: p for p in await self.parts(job_id)}
        for part in parts:
            seen = current.get(part.index)
            if seen is not None and seen.status == DELETED:
                part.status = DELETED
        await self.jobs.update(job_id, broadcasts=parts_to_text(parts), **fields)

    # -- history ------------------------------------------------------------------------------

    async def record(self, job_id: str, event: str, **fields: Any) -> None:
        doc = {"at": iso(), "event": event, **{k: v for k, v in fields.items() if v is not None}}
        key = keys.broadcast_history(job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(doc, separators=(",", ":")))
            pipe.ltrim(key, -HISTORY_LIMIT, -1)
            pipe.expire(key, SUMMARY_TTL_SECONDS)
            await pipe.execute()

    async def history(self, job_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        start = -limit if limit else 0
        raw = await self.redis.lrange(keys.broadcast_history(job_id), start, -1)  # type: ignore[misc]
        return [json.loads(item) for item in raw]


def status_fields(raw: dict[str, str]) -> dict[str, Any]:
    """The broadcast-only keys of ``job_status`` (added to the send jobs' keys)."""
    return {
        "campaign": raw.get("campaign"),
        "start": raw.get("start"),
        "outcome": raw.get("outcome"),
        "warning": raw.get("warning") or None,
        "note": raw.get("note") or None,
        "broadcasts": [p.public() for p in parts_from_text(raw.get("broadcasts"))],
    }
