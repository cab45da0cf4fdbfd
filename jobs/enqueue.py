"""The producer API: how other services start a send and follow it.

```python
from worker.app import open_pool
from jobs.enqueue import send_file, job_status

redis = await open_pool("redis://localhost:6379/0")
job_id = await send_file(redis, "spring-sale.xlsx", "Hi {0}, 20% off today")
status = await job_status(redis, job_id)   # {"job": ..., "state": "sending", "counts": {...}}
```

The file is copied into the bucket (``uploads/<job>/``) so any worker on any machine can read
it; the queue carries only its key and the options. The same bytes with the same options give
the same job id, and a second call returns it without starting anything.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis

from jobs.broadcast_api import (  # noqa: F401  (the broadcast half of the producer API)
    ActionRefused,
    broadcast_action,
    broadcast_history,
    create_broadcast,
    enqueue_broadcast,
)
from jobs.payloads import JOB_STATES, SendJob, SendOptions, content_digest, send_job_id
from jobs.readers import RecipientFileError
from jobs.recipients import build_frame, has_sendable_row, open_list
from jobs.sourcing import column_spec, nothing_to_send
from worker.broadcast_store import status_fields as broadcast_status_fields
from worker.jobstore import COUNTS, JobStore
from worker.settings import Settings
from worker.storage import Bucket

STATES = JOB_STATES


async def send_file(
    redis: ArqRedis,
    source: str | Path | bytes,
    text: str,
    *,
    name: str | None = None,
    sender: str | None = None,
    region: str | None = None,
    phone_column: str | None = None,
    chunk_size: int | None = None,
    resend_unknown: bool = False,
    bucket: Bucket | None = None,
    check: bool = True,
) -> str:
    """Enqueue a send of a recipient file (a path, or its bytes with ``name``); returns its id.

    With ``check`` (the default) the file is read here first, so a file that cannot be read, a
    text using a column the file lacks, or a list with no sendable row raises
    ``RecipientFileError`` and nothing is enqueued. It costs one extra read of the file (about
    0.3 s per million CSV rows); pass ``check=False`` to leave every verdict to the worker.
    """
    if isinstance(source, bytes):
        data, name = source, name or "recipients.csv"
    else:
        path = Path(source)
        data, name = path.read_bytes(), name or path.name
    options = SendOptions(
        text=text,
        sender=sender,
        region=region,
        phone_column=phone_column,
        chunk_size=chunk_size,
        resend_unknown=resend_unknown,
    )
    job_id = send_job_id(content_digest(data), options)
    store = JobStore(redis)
    if await store.exists(job_id):
        return job_id  # checked and enqueued before: the same job
    if check:
        await asyncio.to_thread(
            check_sendable, data, name, text, region or Settings().smspipe_default_region,
            phone_column,
        )  # fmt: skip
    bucket = bucket or Bucket.from_setting(Settings().smspipe_bucket)
    key = f"uploads/{job_id}/{Path(name).name}"
    await bucket.put(key, data)
    return await enqueue_send(redis, SendJob(job_id=job_id, name=name, source=key, options=options))


def check_sendable(
    data: bytes, name: str, text: str, region: str, phone_column: str | None
) -> None:
    """The recipient stage on the producer's side: raise what the job would fail with.

    The file is read and its columns checked in full; rows are judged only until one is found
    sendable (the head of a usual list), so the worker does the real work once.
    """
    with tempfile.TemporaryDirectory(prefix="smspipe-check-") as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(data)
        listing = open_list(path, text, region=region, phone_column=column_spec(phone_column))
    if not has_sendable_row(listing):
        frame = build_frame(listing.data, listing.columns, listing.template, region=region)
        raise RecipientFileError(name, nothing_to_send(frame))


async def enqueue_send(redis: ArqRedis, job: SendJob, *, at: datetime | None = None) -> str:
    """Enqueue ``prepare_send`` for a file already in the bucket (the watcher's and the
    intake's way in); ``at`` (zone-aware) holds the job back until then."""
    store = JobStore(redis)
    extra = {"starts_at": at.isoformat()} if at is not None else {}
    if await store.create(job.job_id, "send", job.name, source=job.source, **extra):
        await redis.enqueue_job(
            "prepare_send", job.model_dump(), _job_id=job.job_id, _defer_until=at
        )
    return job.job_id


async def job_status(redis: ArqRedis, job_id: str) -> dict[str, Any] | None:
    """The job as ``smspipe status --json`` shows it, or None for an unknown id."""
    raw = await JobStore(redis).get(job_id)
    if raw is None:
        return None
    return status_document(job_id, raw)


def status_document(job_id: str, raw: dict[str, str]) -> dict[str, Any]:
    def number(key: str) -> int:
        return int(raw.get(key) or 0)

    document: dict[str, Any] = {
        "job": job_id,
        "kind": raw.get("kind", "send"),
        "name": raw.get("name"),
        "state": raw.get("state", "queued"),
        "counts": {key: number(key) for key in COUNTS},
        "rows": number("rows"),
        "ready": number("ready"),
        "chunks": {"total": number("chunks_total"), "done": number("chunks_done")},
        "retries": number("retries"),
        "results": raw.get("results"),
        # Where the input file ended (done/ or failed/) when it came through the bucket inbox.
        "input": raw.get("input"),
        "created_at": raw.get("created_at"),
        "started_at": raw.get("started_at"),
        "finished_at": raw.get("finished_at"),
        "error": raw.get("error"),
    }
    if document["kind"] == "broadcast":
        document.update(broadcast_status_fields(raw))
    return document
