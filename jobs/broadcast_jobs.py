"""The broadcast jobs: ``create_broadcast`` -> ``track_broadcast`` (re-enqueued) -> results.

``create_broadcast`` reads and normalizes the file exactly as a send does, splits the READY rows
into broadcasts of at most ``cap`` recipients, and creates each with createBroadcastFromJson.

Exactly once: a create is not idempotent (a repeat is a second broadcast), so each part has a
ledger entry (``worker.ledger``) that goes ``in_flight`` before its call. The id the provider
answers is stored (``BroadcastStore.created``) before the entry goes ``done``; a re-run reuses
stored ids, and one that finds ``in_flight`` without an id cannot know whether the provider
created it: that part ends CREATE_UNKNOWN and the job fails saying so, rather than risk a second
broadcast. An ambiguous answer (timeout after sending, 502/504, garbage) is treated the same;
only failures that prove nothing was accepted (connection refused, 503, 429) are retried.

``track_broadcast`` reads every unfinished broadcast of the job, records each reading in the
job's history, and enqueues itself again (deferred, backing off) until all are final; then it
writes ``results/<campaign>.<job>.csv`` and the summary (rules in ``jobs.broadcast``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import structlog
from arq import Retry
from arq.connections import ArqRedis

from jobs import chunks
from jobs.broadcast import broadcast_results, job_verdict, json_recipients, split_parts
from jobs.broadcast_payloads import (
    CREATE_UNKNOWN,
    DELETED,
    NOT_CREATED,
    BroadcastJob,
    Part,
    track_job_id,
)
from jobs.broadcast_schedule import (
    BroadcastInputError,
    check_future,
    poll_delay,
    provider_start,
)
from jobs.payloads import FINAL_JOB_STATES
from jobs.readers import RecipientFileError
from jobs.recipients import READY
from jobs.reporting import publish_results
from jobs.send import backoff, work_key
from jobs.sourcing import nothing_to_send, read_recipients, resolve_sender
from jobs.text import TemplateError
from ogangi.errors import (
    AmbiguousError,
    BadSignature,
    HttpError,
    OgangiError,
    ProviderError,
    RateLimited,
    TransientError,
)
from ogangi.models import Broadcast
from worker import keys
from worker.broadcast_store import BroadcastStore, iso, provider_account
from worker.jobstore import now_iso
from worker.ledger import ChunkLedger, ChunkState, ClaimOutcome
from worker.ratelimit import WaitTooLong
from worker.runtime import Runtime, runtime

log = structlog.get_logger("smspipe.broadcast")

#: Columns kept for the results and the creates (texts are needed until every part exists).
PREPARED_COLUMNS = (*chunks.PREPARED_COLUMNS, "text")
#: Consecutive ERROR answers to getBroadcast after which a broadcast counts as deleted.
DELETED_AFTER_ERRORS = 3
LEDGER_TTL_SECONDS = 30 * 24 * 3600


def prepared_key(job_id: str) -> str:
    return work_key(job_id, "prepared.parquet")


def account(rt: Runtime) -> str:
    return provider_account(rt.provider.base_url, rt.provider.credentials)


@dataclass(frozen=True)
class Start:
    """The requested start: the UTC instant, and what the provider is sent."""

    at: datetime
    provider: str


# --- create -----------------------------------------------------------------------------------


async def create_broadcast(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    """Prepare the list, create its broadcast(s) once each, then start tracking them."""
    rt = runtime(ctx)
    job = BroadcastJob.model_validate(payload)
    store = BroadcastStore(rt.redis)
    summary = await rt.jobs.get(job.job_id) or {}
    if summary.get("state") in FINAL_JOB_STATES:
        return summary["state"]
    if summary.get("state", "queued") == "queued":
        await rt.jobs.update(job.job_id, state="preparing", started_at=now_iso())
    frame: pd.DataFrame | None = None
    created = await store.created_ids(job.job_id)
    try:
        frame = await _prepared(rt, job)
        if not (frame["state"] == READY).any():
            raise RecipientFileError(job.name, nothing_to_send(frame))
        # A past start is refused before any provider call (not on a re-run that finds
        # broadcasts already created: those exist and are tracked whatever the time is now).
        start = _start(rt, job, check=not created)
        sender = summary.get("sender") or await resolve_sender(rt, job.options.sender)
    except (RecipientFileError, TemplateError, BroadcastInputError, OgangiError) as exc:
        await rt.jobs.fail(job.job_id, str(exc))
        if frame is not None:
            await _write_results(rt, job.job_id, job.options.campaign, frame, [], state="failed")
            await rt.bucket.delete_prefix(f"work/{job.job_id}/")
        log.warning("broadcast job failed before creating", job=job.job_id, error=str(exc))
        return "failed"

    total = chunks.chunk_count(frame)
    counts = chunks.final_counts(frame)
    cap = job.options.cap or rt.settings.smspipe_broadcast_cap
    ready = int(frame["chunk"].notna().sum())
    note = (
        f"{ready} recipients are over the cap of {cap} per broadcast: split into {total} "
        f"broadcasts under campaign {job.options.campaign!r}"
        if total > 1
        else None
    )
    await rt.jobs.update(
        job.job_id,
        rows=len(frame),
        ready=ready,
        rejected=counts["rejected"],
        duplicate=counts["duplicate"],
        suppressed=counts["suppressed"],
        sender=sender,
        campaign=job.options.campaign,
        chunks_total=total,
        **({"start": start.at.isoformat()} if start else {}),
        **({"note": note} if note else {}),
    )
    ledger = ChunkLedger(rt.redis, job.job_id)
    if await ledger.create(range(1, total + 1), ttl=LEDGER_TTL_SECONDS) and note:
        await store.record(job.job_id, "split", parts=total, cap=cap, ready=ready)
        log.info("list split over the broadcast cap", job=job.job_id, parts=total, cap=cap)

    ended = {p.index for p in await store.parts(job.job_id) if p.id is None and p.final}
    for index in range(1, total + 1):
        if index in created:
            continue
        if index in ended or not await _create_part(
            ctx, rt, job, frame, index, total, sender, start
        ):
            break  # later parts are not created: the job reports them NOT_CREATED

    created = await store.created_ids(job.job_id)
    if not created:
        return await finish(rt, job.job_id)
    await rt.jobs.update(job.job_id, state="sending")
    pool: ArqRedis = ctx["redis"]
    await pool.enqueue_job(
        "track_broadcast", job.job_id, 0, 0,
        _job_id=track_job_id(job.job_id, 0),
        _defer_by=rt.settings.smspipe_broadcast_poll_min,
    )  # fmt: skip
    return "sending"


async def _prepared(rt: Runtime, job: BroadcastJob) -> pd.DataFrame:
    """The prepared rows, numbered into parts; read once, then the stored copy (re-runs must
    split exactly as the first run did, whatever changed in the suppression list since)."""
    key = prepared_key(job.job_id)
    if await rt.bucket.exists(key):
        return chunks.from_parquet(await rt.bucket.get(key))
    opts = job.options
    rows = await read_recipients(
        rt, job.source, opts.text, region=opts.region, phone_column=opts.phone_column
    )
    frame = split_parts(rows, opts.cap or rt.settings.smspipe_broadcast_cap)
    frame = frame[list(PREPARED_COLUMNS)]
    if not await rt.bucket.put(key, chunks.to_parquet(frame), if_absent=True):
        return chunks.from_parquet(await rt.bucket.get(key))
    return frame


def _start(rt: Runtime, job: BroadcastJob, *, check: bool) -> Start | None:
    if job.options.start is None:
        return None
    at = datetime.fromisoformat(job.options.start)
    if check:
        check_future(at)
    return Start(at, provider_start(at, rt.settings.ogangi_timezone))


async def _create_part(
    ctx: dict[str, Any],
    rt: Runtime,
    job: BroadcastJob,
    frame: pd.DataFrame,
    index: int,
    total: int,
    sender: str,
    start: Start | None,
) -> bool:
    """One createBroadcastFromJson, at most once; True when the broadcast exists."""
    job_id = job.job_id
    what = f"broadcast {index} of {total}" if total > 1 else "the broadcast"
    ledger = ChunkLedger(rt.redis, job_id)
    try:
        await rt.limiter.wait(0, max_wait=rt.settings.smspipe_job_timeout / 3)
    except WaitTooLong as exc:
        raise Retry(defer=exc.delay) from None
    claim = await ledger.claim(index)
    if claim.outcome is ClaimOutcome.AMBIGUOUS:
        reason = (
            f"ambiguous: a worker stopped while creating {what}; the provider may have created "
            "it, so it is not created again (look for it at the provider before re-sending)"
        )
        await _part_ended(rt, job_id, index, CREATE_UNKNOWN, reason)
        return False
    if claim.outcome is not ClaimOutcome.SEND:
        # Settled by an earlier run that stopped before reporting it (the id, had there been
        # one, is stored before the ledger says done).
        if claim.found is ChunkState.FAILED:
            await _part_ended(rt, job_id, index, NOT_CREATED, f"creating {what} failed")
        else:
            reason = f"ambiguous: the outcome of creating {what} is unknown; not created again"
            await _part_ended(rt, job_id, index, CREATE_UNKNOWN, reason)
        return False
    assert claim.attempt is not None
    attempt = claim.attempt

    try:
        if start is not None:
            check_future(start.at)
        rows = frame[frame["chunk"] == index]
        created = await rt.client.create_broadcast_from_json(
            json_recipients(rows),
            shortcode=sender,
            campaign=job.options.campaign,
            start=start.provider if start else None,
        )
    except TransientError as exc:
        job_try = int(ctx.get("job_try", 1))
        if job_try < rt.settings.smspipe_max_tries:
            await ledger.release(index, attempt)
            await rt.jobs.add(job_id, retries=1)
            if isinstance(exc, RateLimited):
                await rt.limiter.penalize(exc.retry_after if exc.retry_after is not None else 1.0)
            delay = exc.retry_after if isinstance(exc, RateLimited) and exc.retry_after else None
            log.info("broadcast create will be retried", job=job_id, part=index, error=str(exc))
            raise Retry(defer=max(delay or backoff(job_try), 0.05)) from None
        await ledger.complete(index, ChunkState.FAILED, attempt)
        await _part_ended(rt, job_id, index, NOT_CREATED, f"gave up after {job_try} tries: {exc}")
        return False
    except AmbiguousError as exc:
        await ledger.complete(index, ChunkState.UNKNOWN, attempt)
        reason = (
            f"ambiguous: creating {what} got no usable answer ({exc}); the provider may have "
            "created it, so it is not retried (look for it at the provider before re-sending)"
        )
        await _part_ended(rt, job_id, index, CREATE_UNKNOWN, reason)
        return False
    except (OgangiError, BroadcastInputError) as exc:  # ERROR, bad signature, past start...
        await ledger.complete(index, ChunkState.FAILED, attempt)
        await _part_ended(rt, job_id, index, NOT_CREATED, str(exc))
        return False

    # The id first, the ledger second: a crash between them leaves the id to be reused.
    store = BroadcastStore(rt.redis)
    await store.created(job_id, index, created.id, account(rt))
    await ledger.complete(index, ChunkState.DONE, attempt)
    part = _reading(Part(index=index, id=created.id), created)
    await _save_part(rt, job_id, part)
    await store.record(
        job_id, "created", index=index, broadcast=created.id, status=part.status,
        expected=part.expected, start=part.start,
    )  # fmt: skip
    log.info("broadcast created", job=job_id, part=index, broadcast=created.id, status=part.status)
    return True


async def _part_ended(rt: Runtime, job_id: str, index: int, status: str, reason: str) -> None:
    """A part that will never send: recorded in its entry, the history and the job's error."""
    await _save_part(rt, job_id, Part(index=index, status=status, error=reason))
    await BroadcastStore(rt.redis).record(job_id, "create_failed", index=index, status=status,
                                          error=reason)
    await _note_error(rt, job_id, reason)
    log.warning("broadcast not created", job=job_id, part=index, status=status, error=reason)


async def _save_part(rt: Runtime, job_id: str, part: Part) -> None:
    store = BroadcastStore(rt.redis)
    parts = {p.index: p for p in await store.parts(job_id)}
    parts[part.index] = part
    await store.save_parts(job_id, list(parts.values()))


async def _note_error(rt: Runtime, job_id: str, error: str) -> None:
    """The first error is the one the user sees; the state is decided at the end."""
    await rt.redis.hsetnx(keys.job_summary(job_id), "error", error)  # type: ignore[misc]


def _reading(part: Part, b: Broadcast) -> Part:
    part.status = b.status.value if b.status.value != "UNKNOWN" else (b.raw_status or "UNKNOWN")
    part.expected = b.expected_messages if b.expected_messages is not None else part.expected
    part.sent = b.sent_messages if b.sent_messages is not None else part.sent
    part.start = b.start_date.isoformat() if b.start_date else part.start
    part.end = b.end_date.isoformat() if b.end_date else None
    part.errors = 0
    return part


# --- track ------------------------------------------------------------------------------------


async def track_broadcast(ctx: dict[str, Any], job_id: str, seq: int = 0, step: int = 0) -> str:
    """Read the job's unfinished broadcasts once; finish, or come back later (never blocks)."""
    rt = runtime(ctx)
    summary = await rt.jobs.get(job_id)
    if summary is None or summary.get("state") in FINAL_JOB_STATES:
        return summary["state"] if summary else "gone"
    changed, until_start = False, None
    try:
        changed, until_start, all_final = await _read_all(rt, job_id)
    except WaitTooLong:
        all_final = False  # the account's rate is taken: look again later
    except Exception:  # a bug or Redis trouble must not end the tracking for good
        log.exception("broadcast reading failed", job=job_id)
        all_final = False
    if all_final:
        try:
            return await finish(rt, job_id)
        except Exception:  # e.g. the bucket is unreachable: try again on the next run
            log.exception("finishing the broadcast job failed", job=job_id)
    next_step = 0 if changed else step + 1
    delay = poll_delay(
        next_step,
        first=rt.settings.smspipe_broadcast_poll_min,
        most=rt.settings.smspipe_broadcast_poll_max,
        until_start=until_start,
    )
    pool: ArqRedis = ctx["redis"]
    await pool.enqueue_job(
        "track_broadcast", job_id, seq + 1, next_step,
        _job_id=track_job_id(job_id, seq + 1), _defer_by=delay,
    )  # fmt: skip
    return "tracking"


async def _read_all(rt: Runtime, job_id: str) -> tuple[bool, float | None, bool]:
    """One reading of every open broadcast: (anything changed, seconds to a start, all final)."""
    store = BroadcastStore(rt.redis)
    parts = await store.parts(job_id)
    changed = False
    until: list[float] = []
    max_wait = rt.settings.smspipe_job_timeout / 3
    for part in parts:
        if part.final or part.id is None:
            continue
        before = (part.status, part.sent)
        await rt.limiter.wait(0, max_wait=max_wait)
        await _read_one(rt, store, job_id, part)
        _watch_forced(rt, job_id, part)
        changed |= part.status != before[0]
        if part.status == "SCHEDULED" and part.start:
            until.append(datetime.fromisoformat(part.start).timestamp() - time.time())
    sent = sum(p.sent for p in parts)
    done = sum(p.final for p in parts)
    await store.save_parts(job_id, parts, sent=sent, chunks_done=done, **_warning(rt, parts))
    return changed, min(until) if until else None, all(p.final for p in parts)


async def _read_one(rt: Runtime, store: BroadcastStore, job_id: str, part: Part) -> None:
    assert part.id is not None
    try:
        reading = await rt.client.get_broadcast(part.id)
    except ProviderError as exc:
        if isinstance(exc, BadSignature | HttpError):
            await store.record(job_id, "error", index=part.index, broadcast=part.id, error=str(exc))
            return
        # The provider answers ERROR for a deleted broadcast (§5.4); one ERROR could be a glitch.
        part.errors += 1
        if part.errors >= DELETED_AFTER_ERRORS:
            part.status = DELETED
            part.error = f"the provider no longer knows broadcast {part.id}: deleted"
        await store.record(
            job_id, "reading", index=part.index, broadcast=part.id, status=part.status,
            error=exc.detail or str(exc),
        )  # fmt: skip
        return
    except OgangiError as exc:  # transient or ambiguous: a GET, so simply read again later
        await store.record(job_id, "error", index=part.index, broadcast=part.id, error=str(exc))
        return
    _reading(part, reading)
    await store.record(
        job_id, "reading", index=part.index, broadcast=part.id, status=part.status,
        expected=part.expected, sent=part.sent, start=part.start, end=part.end,
    )  # fmt: skip


def _watch_forced(rt: Runtime, job_id: str, part: Part) -> None:
    """FORCED_SUSPENDED: said loudly, waited on until the deadline, then given up."""
    if part.status != "FORCED_SUSPENDED":
        part.forced_since = None
        return
    now = time.time()
    deadline = rt.settings.smspipe_broadcast_forced_deadline
    if part.forced_since is None:
        part.forced_since = now
        log.warning(
            "broadcast suspended by the provider (FORCED_SUSPENDED)",
            job=job_id, broadcast=part.id, sent=part.sent, expected=part.expected,
            gives_up_at=iso(now + deadline),
        )  # fmt: skip
    if now - part.forced_since >= deadline:
        part.gave_up = True
        part.error = (
            f"broadcast {part.id} stayed FORCED_SUSPENDED (suspended by the provider) for more "
            f"than {deadline:g} s after {part.sent} of {part.expected} messages"
        )
        log.warning("gave up on a FORCED_SUSPENDED broadcast", job=job_id, broadcast=part.id)


def _warning(rt: Runtime, parts: list[Part]) -> dict[str, str]:
    forced = [p for p in parts if p.status == "FORCED_SUSPENDED" and p.forced_since is not None]
    if not forced:
        return {"warning": ""}
    deadline = rt.settings.smspipe_broadcast_forced_deadline
    text = "; ".join(
        f"broadcast {p.id} was suspended by the provider (FORCED_SUSPENDED) after {p.sent} of "
        f"{p.expected} messages"
        + ("" if p.gave_up else
           f": the job gives up at {iso((p.forced_since or 0) + deadline)} unless it is resumed")
        for p in forced
    )  # fmt: skip
    return {"warning": text}


# --- finish -----------------------------------------------------------------------------------


async def finish(rt: Runtime, job_id: str) -> str:
    """Every broadcast is final (or none exists): results file, summary, history."""
    summary = await rt.jobs.get(job_id) or {}
    if summary.get("state") in FINAL_JOB_STATES:
        return summary["state"]
    store = BroadcastStore(rt.redis)
    prepared = chunks.from_parquet(await rt.bucket.get(prepared_key(job_id)))
    parts = {p.index: p for p in await store.parts(job_id)}
    total = int(summary.get("chunks_total") or 0)
    first_failure = min((i for i, p in parts.items() if p.id is None), default=None)
    for index in range(1, total + 1):
        if index not in parts:
            why = (
                f"broadcast {first_failure} of {total} failed, so no later one was created"
                if first_failure
                else None
            )
            parts[index] = Part(index=index, status=NOT_CREATED, error=why)
    ordered = [parts[i] for i in sorted(parts)]
    state, outcome, error = job_verdict(ordered)
    campaign = summary.get("campaign") or job_id
    await store.save_parts(job_id, ordered, outcome=outcome)
    await _write_results(rt, job_id, campaign, prepared, ordered, state=state, error=error)
    await store.record(job_id, "finished", state=state, outcome=outcome, error=error)
    await rt.bucket.delete_prefix(f"work/{job_id}/")
    return state


async def _write_results(
    rt: Runtime,
    job_id: str,
    campaign: str,
    prepared: pd.DataFrame,
    parts: list[Part],
    *,
    state: str,
    error: str | None = None,
) -> None:
    if parts:
        results = broadcast_results(prepared, parts)
    else:  # failed before any create: every READY row is FAILED with the job's error
        summary = await rt.jobs.get(job_id) or {}
        results = chunks.mark_unsent(prepared, f"not sent: {summary.get('error', 'job failed')}")
    if error:
        await _note_error(rt, job_id, error)
    await publish_results(rt, job_id, campaign, results, state=state)
