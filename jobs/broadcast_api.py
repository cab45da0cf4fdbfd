"""The producer API of broadcasts: start one from a recipient file, act on it, read its history.

```python
from worker.app import open_pool
from jobs.enqueue import broadcast_action, create_broadcast, job_status

redis = await open_pool("redis://localhost:6379/0")
job_id = await create_broadcast(redis, "spring.xlsx", "Hi {0}", at="2026-12-01 09:00",
                                tz="Europe/Madrid", campaign="spring")
await broadcast_action(redis, job_id, "suspend")   # every open broadcast of the job
await broadcast_action(redis, 17, "resume")        # one broadcast, by the provider's id
status = await job_status(redis, job_id)           # ... "broadcasts": [{"id": 17, ...}]
```

A start time in the past is refused here, before anything is enqueued (and again by the job,
before its provider call). The same file with the same options is one job, as for sends.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from arq.connections import ArqRedis

from jobs.broadcast_payloads import (
    DELETED,
    BroadcastJob,
    BroadcastOptions,
    broadcast_job_id,
    check_campaign,
    default_campaign,
)
from jobs.broadcast_schedule import BroadcastInputError, check_future, parse_start, zone
from jobs.payloads import content_digest
from ogangi.client import OgangiClient
from ogangi.errors import BadSignature, HttpError, OgangiError, ProviderError
from ogangi.models import Broadcast
from worker.broadcast_store import BroadcastStore, provider_account
from worker.jobstore import JobStore
from worker.settings import Settings
from worker.storage import Bucket

Action = Literal["suspend", "resume", "stop", "delete"]
ACTIONS: tuple[Action, ...] = ("suspend", "resume", "stop", "delete")


class ActionRefused(ProviderError):
    """The provider said no to a suspend/resume/stop/delete; the message is its answer."""


@dataclass(frozen=True)
class ActionResult:
    broadcast: int
    job: str | None
    action: str
    status: str
    sent: int | None = None
    expected: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- create -----------------------------------------------------------------------------------


async def create_broadcast(
    redis: ArqRedis,
    source: str | Path | bytes,
    text: str,
    *,
    name: str | None = None,
    at: str | datetime | None = None,
    tz: str | None = None,
    campaign: str | None = None,
    sender: str | None = None,
    region: str | None = None,
    phone_column: str | None = None,
    cap: int | None = None,
    bucket: Bucket | None = None,
    settings: Settings | None = None,
) -> str:
    """Enqueue a broadcast of a recipient file (a path, or bytes with ``name``); returns its id.

    ``at`` is a wall-clock time in ``tz`` (default ``SMSPIPE_TIMEZONE``) or an aware datetime;
    ``campaign`` defaults to the file's name without extension.
    """
    config = settings or Settings()
    if isinstance(source, bytes):
        data, name = source, name or "recipients.csv"
    else:
        path = Path(source)
        data, name = path.read_bytes(), name or path.name
    options = broadcast_options(
        text, name, at=at, tz=tz or config.smspipe_timezone, campaign=campaign, sender=sender,
        region=region, phone_column=phone_column, cap=cap,
    )  # fmt: skip
    job_id = broadcast_job_id(content_digest(data), options)
    if await JobStore(redis).exists(job_id):
        return job_id
    bucket = bucket or Bucket.from_setting(config.smspipe_bucket)
    key = f"uploads/{job_id}/{Path(name).name}"
    await bucket.put(key, data)
    return await enqueue_broadcast(
        redis, BroadcastJob(job_id=job_id, name=name, source=key, options=options)
    )


def broadcast_options(
    text: str,
    file_name: str,
    *,
    at: str | datetime | None = None,
    tz: str = "UTC",
    campaign: str | None = None,
    sender: str | None = None,
    region: str | None = None,
    phone_column: str | None = None,
    cap: int | None = None,
) -> BroadcastOptions:
    """The job's options, checked: ``BroadcastInputError`` for a bad zone, time or campaign."""
    zone(tz)
    start: str | None = None
    if at is not None:
        when = parse_start(at, tz)
        check_future(when)
        start = when.isoformat()
    return BroadcastOptions(
        text=text,
        campaign=check_campaign(campaign) if campaign is not None else default_campaign(file_name),
        start=start,
        sender=sender,
        region=region,
        phone_column=phone_column,
        cap=cap,
    )


async def enqueue_broadcast(redis: ArqRedis, job: BroadcastJob) -> str:
    """Enqueue ``create_broadcast`` for a file already in the bucket."""
    store = JobStore(redis)
    if await store.create(
        job.job_id, "broadcast", job.name, source=job.source, campaign=job.options.campaign
    ):
        await redis.enqueue_job("create_broadcast", job.model_dump(), _job_id=job.job_id)
    return job.job_id


# --- control ----------------------------------------------------------------------------------


async def broadcast_action(
    redis: ArqRedis,
    target: str | int,
    action: Action,
    *,
    client: OgangiClient | None = None,
    account: str | None = None,
    settings: Settings | None = None,
) -> list[ActionResult]:
    """Suspend, resume, stop or delete now: one broadcast (its provider id) or every open
    broadcast of a job (its job id). Recorded in the owning job's history.

    Raises ``ActionRefused`` with the provider's answer when it refuses (e.g. resuming a DONE
    broadcast), after recording the refusal; ``BroadcastInputError`` for an unknown job.
    """
    if action not in ACTIONS:
        raise BroadcastInputError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    if client is None:
        from worker.provider import open_client, resolve_provider

        config = settings or Settings()
        provider = await asyncio.to_thread(resolve_provider, config)
        async with open_client(provider, config) as opened:
            return await broadcast_action(
                redis, target, action, client=opened,
                account=provider_account(provider.base_url, provider.credentials),
            )  # fmt: skip
    if account is None:
        raise ValueError("pass the provider account together with the client")
    store = BroadcastStore(redis)
    results: list[ActionResult] = []
    refused: list[str] = []
    for broadcast_id, job_id in await _targets(store, target, account, action):
        try:
            result = await _act(client, action, broadcast_id, job_id)
        except ProviderError as exc:
            answer = exc.detail or exc.description or str(exc)
            if job_id:
                await store.record(
                    job_id, "action", action=action, broadcast=broadcast_id, ok=False,
                    answer=answer,
                )  # fmt: skip
            if isinstance(exc, BadSignature | HttpError):
                raise
            refused.append(f"the provider refused to {action} broadcast {broadcast_id}: {answer}")
            continue
        except OgangiError as exc:
            if job_id:
                await store.record(
                    job_id, "action", action=action, broadcast=broadcast_id, ok=False,
                    error=str(exc),
                )  # fmt: skip
            raise
        if job_id:
            await _record(store, result)
        results.append(result)
    if refused:
        raise ActionRefused("; ".join(refused), detail=refused[0])
    return results


async def _targets(
    store: BroadcastStore, target: str | int, account: str, action: str
) -> list[tuple[int, str | None]]:
    """(broadcast id, owning job) pairs a target names."""
    if isinstance(target, int) or str(target).strip().isdigit():
        broadcast_id = int(target)
        return [(broadcast_id, await store.owner(account, broadcast_id))]
    job_id = str(target).strip()
    summary = await store.jobs.get(job_id)
    if summary is None or summary.get("kind") != "broadcast":
        raise BroadcastInputError(f"no broadcast job {job_id!r} (give a job id or a broadcast id)")
    parts = await store.parts(job_id)
    open_parts = [p for p in parts if p.id is not None and not p.final]
    if not open_parts:
        shown = ", ".join(f"{p.id or '-'} {p.status}" for p in parts) or "none created"
        raise BroadcastInputError(f"job {job_id} has no open broadcast to {action} ({shown})")
    return [(p.id, job_id) for p in open_parts if p.id is not None]


async def _act(
    client: OgangiClient, action: Action, broadcast_id: int, job_id: str | None
) -> ActionResult:
    if action == "delete":
        await client.delete_broadcast(broadcast_id)
        return ActionResult(broadcast_id, job_id, action, DELETED)
    reply: Broadcast = await getattr(client, f"{action}_broadcast")(broadcast_id)
    return ActionResult(
        broadcast_id, job_id, action, reply.status.value, reply.sent_messages,
        reply.expected_messages,
    )  # fmt: skip


async def _record(store: BroadcastStore, result: ActionResult) -> None:
    assert result.job is not None
    await store.record(
        result.job, "action", action=result.action, broadcast=result.broadcast, ok=True,
        status=result.status, sent=result.sent, expected=result.expected,
    )  # fmt: skip
    parts = await store.parts(result.job)
    for part in parts:
        if part.id == result.broadcast and not part.final:
            part.status = result.status
            part.sent = result.sent if result.sent is not None else part.sent
            part.expected = result.expected if result.expected is not None else part.expected
            if result.status == DELETED:
                part.error = f"deleted by smspipe broadcast delete ({result.broadcast})"
    await store.save_parts(result.job, parts)


async def broadcast_history(
    redis: ArqRedis, job_id: str, limit: int | None = None
) -> list[dict[str, Any]]:
    """The job's recorded events, oldest first: readings, creates, actions, the end."""
    return await BroadcastStore(redis).history(job_id, limit)
