"""The send jobs: ``prepare_send`` -> ``send_chunk`` x N -> ``finalize``.

Exactly once: every chunk's ledger entry goes ``in_flight`` before its HTTP call. A re-run that
finds it ``in_flight`` cannot know whether the provider took it, so its rows end UNKNOWN
(``resend_unknown`` opts into at-least-once). Every input row ends in the results file.

Bucket layout of a job: ``work/<job>/prepared.parquet`` (every row and its verdict),
``work/<job>/chunk-<n>.csv`` (the upload), ``work/<job>/out-<n>.parquet`` (what happened to
its rows; written once, the first writer wins), then ``results/<name>.<job>.csv``.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import structlog
from arq import Retry
from arq.connections import ArqRedis

from jobs import chunks
from jobs.cutting import ChunkCutter, PreparedWriter, cut_slice, slice_bounds
from jobs.payloads import SendJob, chunk_job_id, finalize_job_id
from jobs.readers import RecipientFileError
from jobs.recipients import (
    DUPLICATE,
    READY,
    REJECTED,
    SUPPRESSED,
    RecipientList,
    Verdicts,
    describe,
)
from jobs.reporting import publish_results_slices
from jobs.sourcing import judge_recipients, nothing_to_send, resolve_sender, verdict_frame
from jobs.text import TemplateError
from ogangi.errors import (
    AmbiguousError,
    BadSignature,
    OgangiError,
    RateLimited,
    TransientError,
)
from worker import metrics
from worker.jobstore import now_iso
from worker.ledger import ChunkLedger, ChunkState, ClaimOutcome
from worker.memory import give_back_freed_memory
from worker.ratelimit import WaitTooLong
from worker.redact import redact
from worker.runtime import Runtime, runtime
from worker.settings import Settings
from worker.storage import NotFoundError

log = structlog.get_logger("smspipe.send")

#: Backoff of a chunk retried through transient trouble: base * 2**try, capped, with jitter.
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0


def work_key(job_id: str, name: str) -> str:
    return f"work/{job_id}/{name}"


def chunk_key(job_id: str, chunk: int) -> str:
    return work_key(job_id, f"chunk-{chunk:06d}.csv")


def outcome_key(job_id: str, chunk: int) -> str:
    return work_key(job_id, f"out-{chunk:06d}.parquet")


def backoff(job_try: int) -> float:
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, job_try - 1))
    return delay * random.uniform(0.5, 1.5)


# --- prepare ----------------------------------------------------------------------------------


#: Runs of prepare_send and finalize (arq's ``max_tries`` for them): a worker crash or an
#: unforeseen error is met by running the step again; after the last, the job fails.
PREPARE_TRIES = 3
FINALIZE_TRIES = 5


async def prepare_send(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    """Read and judge the file, then cut it into chunks a slice at a time, queueing each chunk
    as soon as its file exists (the first calls go out while the rest is still being cut)."""
    rt = runtime(ctx)
    job = SendJob.model_validate(payload)
    try:
        return await _prepare(ctx, rt, job)
    except Retry:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever it is, the job must not hang
        return await _again_or_fail(ctx, rt, job.job_id, "preparing the list", PREPARE_TRIES, exc)


async def _again_or_fail(
    ctx: dict[str, Any], rt: Runtime, job_id: str, step: str, tries: int, exc: Exception
) -> str:
    """An error nobody planned for (a bug, a bucket or Redis outage longer than the clients'
    own retries): the step runs again later, as after a worker crash (it is safe to repeat);
    the last try fails the job with the error, so that it never hangs in its current state."""
    job_try = int(ctx.get("job_try", 1))
    if job_try < tries:
        delay = backoff(job_try)
        log.warning("step failed; it will run again", job=job_id, step=step, error=repr(exc),
                    job_try=job_try, delay=delay)  # fmt: skip
        raise Retry(defer=delay) from exc
    log.error("step failed; the job fails", job=job_id, step=step, exc_info=exc)
    await rt.jobs.fail(job_id, redact(f"{step} failed: {type(exc).__name__}: {exc}"))
    return "failed"


async def _prepare(ctx: dict[str, Any], rt: Runtime, job: SendJob) -> str:
    summary = await rt.jobs.get(job.job_id)
    if summary and summary.get("state") in ("done", "failed"):
        return summary["state"]
    await rt.jobs.update(job.job_id, state="preparing", started_at=now_iso())
    opts = job.options
    listing: RecipientList | None = None
    verdicts: Verdicts | None = None
    try:
        listing, verdicts = await judge_recipients(
            rt, job.source, opts.text, region=opts.region, phone_column=opts.phone_column
        )
        if not verdicts.counts()[READY]:
            raise RecipientFileError(job.name, nothing_to_send(verdict_frame(verdicts)))
        sender = await resolve_sender(rt, opts.sender)
    except (RecipientFileError, TemplateError, OgangiError) as exc:
        await rt.jobs.fail(job.job_id, str(exc))
        if listing is not None and verdicts is not None:  # every row still gets its verdict
            unsent = _unsent_slices(listing, verdicts, f"not sent: {exc}")
            await publish_results_slices(
                rt, job.job_id, Path(job.name).stem, unsent, state="failed"
            )
        log.warning("job failed in preparation", job=job.job_id, error=str(exc))
        return "failed"
    counts = verdicts.counts()
    chunk_size = opts.chunk_size or rt.settings.smspipe_chunk_size
    total = -(-counts[READY] // chunk_size)
    await rt.jobs.update(
        job.job_id,
        state="sending",
        chunks_total=total,
        rows=len(verdicts),
        ready=counts[READY],
        rejected=counts[REJECTED],
        duplicate=counts[DUPLICATE],
        suppressed=counts[SUPPRESSED],
        sender=sender,
    )
    await ChunkLedger(rt.redis, job.job_id).create(range(1, total + 1), ttl=7 * 24 * 3600)
    pool: ArqRedis = ctx["redis"]

    async def queue(number: int, content: bytes) -> None:
        await rt.bucket.put(chunk_key(job.job_id, number), content)
        await pool.enqueue_job(
            "send_chunk", job.job_id, number, opts.resend_unknown,
            _job_id=chunk_job_id(job.job_id, number),
        )  # fmt: skip

    cutter = ChunkCutter(chunk_size, sender, rt.settings.smspipe_timezone)
    held: tuple[int, bytes] | None = None  # the last chunk waits for the prepared file
    async with _sends_held(rt, len(verdicts)):
        with tempfile.TemporaryDirectory(prefix="smspipe-prepare-") as tmp:
            writer = PreparedWriter(Path(tmp) / "prepared.parquet")
            lo = 0
            for hi in slice_bounds(len(verdicts), chunk_size):
                done = await asyncio.to_thread(cut_slice, listing, verdicts, lo, hi, cutter, writer)
                give_back_freed_memory()  # the slice's description: the next starts from zero
                lo = hi
                for number, content in done:
                    if held is not None:
                        await queue(*held)
                    held = (number, content)
            writer.close()
            del listing, verdicts
            # Finalize reads the prepared file, and it cannot start before the last chunk is
            # queued: the file is in the bucket before that.
            await rt.bucket.put_file(work_key(job.job_id, "prepared.parquet"), writer.path)
    if held is not None:
        await queue(*held)
    log.info("job prepared", job=job.job_id, rows=sum(counts.values()), chunks=total)
    return "sending"


#: Lists of at least this many rows are cut with this worker's sends held (``_sends_held``).
#: A smaller list weighs less than the replies of the sends in flight: its sends go on.
HOLD_SENDS_FROM = 250_000


@asynccontextmanager
async def _sends_held(rt: Runtime, rows: int) -> AsyncIterator[None]:
    """Every send slot of this worker while it cuts a big list: the worker then holds the list
    or replies in flight, never both, and its peak is the larger of the two, not their sum.
    Other workers send the chunks meanwhile; this one's sends wait, their replies unread."""
    taken = 0
    try:
        for _ in range(rt.settings.smspipe_concurrency if rows >= HOLD_SENDS_FROM else 0):
            await rt.send_slots.acquire()
            taken += 1
        yield
    finally:
        for _ in range(taken):
            rt.send_slots.release()


async def _unsent_slices(
    listing: RecipientList, verdicts: Verdicts, reason: str
) -> AsyncIterator[pd.DataFrame]:
    """A job failed before sending: every row, READY ones marked FAILED, a slice at a time."""
    lo = 0
    for hi in slice_bounds(len(verdicts), FINALIZE_SLICE_ROWS, FINALIZE_SLICE_ROWS):
        frame = await asyncio.to_thread(
            describe, listing.data.iloc[lo:hi], listing.columns, listing.template,
            verdicts.slice(lo, hi),
        )  # fmt: skip
        lo = hi
        yield chunks.mark_unsent(frame, reason)


# --- send one chunk ---------------------------------------------------------------------------


async def send_chunk(
    ctx: dict[str, Any], job_id: str, chunk: int, resend_unknown: bool = False
) -> str:
    """One sendSMSByFile call, guarded by the ledger, under the shared rate limit."""
    rt = runtime(ctx)
    try:
        return await _send_chunk(ctx, rt, job_id, chunk, resend_unknown)
    except Retry:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever it is, the job must not hang
        # Run again as after a crash: a chunk claimed before the error is then UNKNOWN.
        step = f"sending chunk {chunk}"
        return await _again_or_fail(ctx, rt, job_id, step, send_chunk_tries(rt.settings), exc)


def send_chunk_tries(settings: Settings) -> int:
    """arq's ``max_tries`` for send_chunk: it counts a Retry as a try, and our own budget
    (``SMSPIPE_MAX_TRIES``) for transient provider trouble decides before arq's does."""
    return settings.smspipe_max_tries + 5


async def _send_chunk(
    ctx: dict[str, Any], rt: Runtime, job_id: str, chunk: int, resend_unknown: bool
) -> str:
    ledger = ChunkLedger(rt.redis, job_id)
    content = await rt.bucket.get(chunk_key(job_id, chunk))
    msisdns = chunks.chunk_msisdns(content)

    summary = await rt.jobs.get(job_id) or {}
    if summary.get("state") == "failed":
        return await _settle_without_sending(ctx, rt, ledger, job_id, chunk, msisdns, summary)

    max_wait = rt.settings.smspipe_job_timeout / 3
    try:
        async with rt.send_slots:
            slot = await metrics.waited(rt.limiter.slot(len(msisdns), max_wait=max_wait))
            claim = await ledger.claim(chunk, resend_unknown=resend_unknown)
            if claim.outcome is ClaimOutcome.SEND:
                assert claim.attempt is not None
                try:  # the claim took a round trip: still on time for the slot?
                    await rt.limiter.keep(slot, len(msisdns), max_wait=max_wait)
                except WaitTooLong:
                    await ledger.release(chunk, claim.attempt)  # nothing was sent
                    raise
                return await _send(
                    ctx, rt, ledger, job_id, chunk, content, msisdns, claim.attempt, resend_unknown
                )
    except WaitTooLong as exc:
        raise Retry(defer=exc.delay) from None

    if claim.outcome is ClaimOutcome.AMBIGUOUS:
        reason = "a worker stopped during the provider call: the provider may have sent it"
        await _record(rt, job_id, chunk, chunks.uniform_outcomes(msisdns, chunks.UNKNOWN, reason))
    await _maybe_finalize(ctx, rt, job_id)
    return str(claim.outcome)


async def _send(
    ctx: dict[str, Any],
    rt: Runtime,
    ledger: ChunkLedger,
    job_id: str,
    chunk: int,
    content: bytes,
    msisdns: pa.Array,
    attempt: str,
    resend_unknown: bool,
) -> str:
    bound = log.bind(job=job_id, chunk=chunk, attempt=attempt)
    try:
        reply = await rt.client.send_sms_by_file_columns(content)
    except (TransientError, AmbiguousError) as exc:
        if isinstance(exc, TransientError) or resend_unknown:
            return await _retry_or_fail(ctx, rt, ledger, job_id, chunk, msisdns, attempt, exc)
        bound.warning("ambiguous provider call", error=str(exc))
        outcome = chunks.uniform_outcomes(msisdns, chunks.UNKNOWN, f"ambiguous: {exc}")
        return await _complete(ctx, rt, ledger, job_id, chunk, attempt, ChunkState.UNKNOWN, outcome)
    except BadSignature as exc:
        await rt.jobs.fail(job_id, str(exc))
        bound.error("signature rejected; job failed", error=str(exc))
        outcome = chunks.uniform_outcomes(msisdns, chunks.FAILED, str(exc))
        return await _complete(ctx, rt, ledger, job_id, chunk, attempt, ChunkState.FAILED, outcome)
    except OgangiError as exc:  # ProviderError (ERROR), HttpError, InvalidParameter: permanent
        bound.warning("provider refused the chunk", error=str(exc))
        outcome = chunks.uniform_outcomes(msisdns, chunks.FAILED, str(exc))
        return await _complete(ctx, rt, ledger, job_id, chunk, attempt, ChunkState.FAILED, outcome)
    outcome = chunks.outcomes_from_reply(msisdns, reply)
    return await _complete(ctx, rt, ledger, job_id, chunk, attempt, ChunkState.DONE, outcome)


async def _retry_or_fail(
    ctx: dict[str, Any],
    rt: Runtime,
    ledger: ChunkLedger,
    job_id: str,
    chunk: int,
    msisdns: pa.Array,
    attempt: str,
    exc: OgangiError,
) -> str:
    """Nothing was accepted: put the chunk back and try later, until the tries run out."""
    job_try = int(ctx.get("job_try", 1))
    if isinstance(exc, RateLimited):
        await rt.limiter.penalize(exc.retry_after if exc.retry_after is not None else 1.0)
    if job_try >= rt.settings.smspipe_max_tries:
        reason = f"gave up after {job_try} tries: {exc}"
        outcome = chunks.uniform_outcomes(msisdns, chunks.FAILED, reason)
        return await _complete(ctx, rt, ledger, job_id, chunk, attempt, ChunkState.FAILED, outcome)
    await ledger.release(chunk, attempt)
    await rt.jobs.add(job_id, retries=1)
    metrics.CHUNK_RETRIES.inc()
    delay = (exc.retry_after or 0.0) if isinstance(exc, RateLimited) else backoff(job_try)
    log.info("chunk will be retried", job=job_id, chunk=chunk, error=str(exc), delay=delay)
    raise Retry(defer=max(delay, 0.05))


async def _settle_without_sending(
    ctx: dict[str, Any],
    rt: Runtime,
    ledger: ChunkLedger,
    job_id: str,
    chunk: int,
    msisdns: pa.Array,
    summary: dict[str, str],
) -> str:
    """The job already failed (e.g. signature rejected): the remaining chunks are not sent."""
    claim = await ledger.claim(chunk)
    if claim.outcome is ClaimOutcome.SEND:
        assert claim.attempt is not None
        reason = f"not sent: the job failed ({summary.get('error', 'see the job')})"
        outcome = chunks.uniform_outcomes(msisdns, chunks.FAILED, reason)
        return await _complete(
            ctx, rt, ledger, job_id, chunk, claim.attempt, ChunkState.FAILED, outcome
        )
    await _maybe_finalize(ctx, rt, job_id)
    return str(claim.outcome)


async def _complete(
    ctx: dict[str, Any],
    rt: Runtime,
    ledger: ChunkLedger,
    job_id: str,
    chunk: int,
    attempt: str,
    state: ChunkState,
    outcome: pd.DataFrame,
) -> str:
    """Outcome first, ledger second: a crash between them leaves the truth in the bucket."""
    await _record(rt, job_id, chunk, outcome)
    if await ledger.complete(chunk, state, attempt):
        await rt.jobs.add(job_id, chunks_done=1, **chunks.outcome_counts(outcome))
    await _maybe_finalize(ctx, rt, job_id)
    return str(state)


async def _record(rt: Runtime, job_id: str, chunk: int, outcome: pd.DataFrame) -> None:
    await rt.bucket.put(outcome_key(job_id, chunk), chunks.to_parquet(outcome), if_absent=True)


async def _maybe_finalize(ctx: dict[str, Any], rt: Runtime, job_id: str) -> None:
    ledger = ChunkLedger(rt.redis, job_id)
    if await ledger.all_final() and await ledger.try_begin_finalize():
        pool: ArqRedis = ctx["redis"]
        await pool.enqueue_job("finalize", job_id, _job_id=finalize_job_id(job_id))


# --- finalize ---------------------------------------------------------------------------------


async def finalize(ctx: dict[str, Any], job_id: str) -> str:
    """Merge every chunk's outcome with the prepared rows into the results file."""
    rt = runtime(ctx)
    try:
        return await _finalize(rt, job_id)
    except Retry:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever it is, the job must not hang
        return await _again_or_fail(ctx, rt, job_id, "writing the results", FINALIZE_TRIES, exc)


async def _finalize(rt: Runtime, job_id: str) -> str:
    summary = await rt.jobs.get(job_id) or {}
    if summary.get("state") == "done":
        return "done"
    state = "failed" if summary.get("state") == "failed" else "done"
    stem = Path(summary.get("name", job_id)).stem
    key = work_key(job_id, "prepared.parquet")
    with tempfile.TemporaryDirectory(prefix="smspipe-finalize-") as tmp:
        prepared = rt.bucket.local_path(key)
        if prepared is None:  # an S3 bucket: read from a local copy, a slice at a time
            prepared = Path(tmp) / "prepared.parquet"
            await rt.bucket.get_file(key, prepared)
        slices = _merged_slices(rt, job_id, prepared)
        await publish_results_slices(rt, job_id, stem, slices, state=state)
    await rt.bucket.delete_prefix(f"work/{job_id}/")
    return state


async def _outcome(rt: Runtime, job_id: str, chunk: int) -> pd.DataFrame | None:
    """A chunk's outcome file, or None when none was written (its rows are then UNKNOWN)."""
    try:
        return chunks.from_parquet(await rt.bucket.get(outcome_key(job_id, chunk)))
    except (NotFoundError, FileNotFoundError):
        return None


#: Rows merged at a time by finalize: memory holds one slice, not the whole list.
FINALIZE_SLICE_ROWS = 100_000


async def _merged_slices(rt: Runtime, job_id: str, prepared: Path) -> AsyncIterator[pd.DataFrame]:
    """The prepared rows in slices, each merged with the outcome files of its chunks."""
    cached: dict[int, pd.DataFrame | None] = {}
    for rows in chunks.parquet_slices(prepared, FINALIZE_SLICE_ROWS):
        numbers = sorted({int(n) for n in rows["chunk"].dropna()})
        for stale in [n for n in cached if n < (numbers[0] if numbers else 0)]:
            del cached[stale]  # chunks run in file order: earlier ones are done with
        parts = []
        for number in numbers:
            if number not in cached:
                cached[number] = await _outcome(rt, job_id, number)
            if cached[number] is not None:
                parts.append(cached[number])
        outcomes = (
            pd.concat(parts, ignore_index=True) if parts else chunks.uniform_outcomes([], "", "")
        )
        yield await asyncio.to_thread(chunks.merge_outcomes, rows, outcomes)
        del rows, outcomes, parts
        give_back_freed_memory()
