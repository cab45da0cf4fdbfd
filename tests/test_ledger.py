"""The exactly-once chunk ledger on a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from worker import keys
from worker.ledger import ChunkLedger, ChunkState, ClaimOutcome, UnknownChunk

DAY = 24 * 3600.0


@pytest.fixture
async def ledger(redis: aioredis.Redis) -> ChunkLedger:
    ledger = ChunkLedger(redis, "job1")
    await ledger.create(["0", "1", "2"], ttl=DAY)
    return ledger


async def test_first_claim_sends_and_records_in_flight(ledger: ChunkLedger) -> None:
    """A pending chunk is claimed for sending, recorded in_flight with attempt and time first."""
    claim = await ledger.claim("0")
    assert claim.outcome is ClaimOutcome.SEND and claim.send
    assert claim.found is ChunkState.PENDING
    entry = await ledger.entry("0")
    assert entry is not None
    assert entry.state is ChunkState.IN_FLIGHT
    assert entry.attempt == claim.attempt
    assert entry.since is not None and entry.since > 1e9


async def test_claim_of_an_unfinished_chunk_is_ambiguous(ledger: ChunkLedger) -> None:
    """Finding in_flight (an attempt died mid-send) does not send again: the chunk is unknown."""
    first = await ledger.claim("0")
    again = await ledger.claim("0")
    assert again.outcome is ClaimOutcome.AMBIGUOUS and not again.send
    assert again.previous_attempt == first.attempt
    assert (await ledger.states())["0"] is ChunkState.UNKNOWN


async def test_claim_after_ambiguous_skips_unknown(ledger: ChunkLedger) -> None:
    """Once unknown, a chunk stays unsent on every later claim, even with resend_unknown."""
    await ledger.claim("0")
    await ledger.claim("0")
    assert (await ledger.claim("0")).outcome is ClaimOutcome.SKIP_UNKNOWN
    assert (await ledger.claim("0", resend_unknown=True)).outcome is ClaimOutcome.SKIP_UNKNOWN


async def test_resend_unknown_sends_an_unfinished_chunk_again(ledger: ChunkLedger) -> None:
    """At-least-once: the in_flight chunk is claimed by a new attempt and sent again."""
    first = await ledger.claim("0")
    again = await ledger.claim("0", resend_unknown=True)
    assert again.outcome is ClaimOutcome.SEND
    assert again.found is ChunkState.IN_FLIGHT and again.previous_attempt == first.attempt
    assert again.attempt != first.attempt
    entry = await ledger.entry("0")
    assert entry is not None and entry.attempt == again.attempt


async def test_released_chunk_is_sent_by_the_next_claim(ledger: ChunkLedger) -> None:
    """A failure before the provider accepted anything returns the chunk to pending."""
    first = await ledger.claim("0")
    assert first.attempt is not None
    assert await ledger.release("0", first.attempt)
    assert (await ledger.states())["0"] is ChunkState.PENDING
    assert (await ledger.claim("0")).outcome is ClaimOutcome.SEND


@pytest.mark.parametrize("final", [ChunkState.DONE, ChunkState.FAILED])
async def test_completed_chunk_is_skipped(ledger: ChunkLedger, final: ChunkState) -> None:
    """A done or failed chunk is never sent again, with or without resend_unknown."""
    claim = await ledger.claim("0")
    assert claim.attempt is not None
    assert await ledger.complete("0", final, claim.attempt)
    for resend in (False, True):
        skipped = await ledger.claim("0", resend_unknown=resend)
        assert skipped.outcome is ClaimOutcome.SKIP_DONE and skipped.found is final


async def test_stale_attempt_cannot_complete(ledger: ChunkLedger) -> None:
    """An attempt presumed dead cannot overwrite what its successor decided."""
    stale = await ledger.claim("0")
    fresh = await ledger.claim("0", resend_unknown=True)
    assert stale.attempt is not None and fresh.attempt is not None
    assert not await ledger.complete("0", ChunkState.DONE, stale.attempt)
    assert not await ledger.release("0", stale.attempt)
    entry = await ledger.entry("0")
    assert entry is not None and entry.state is ChunkState.IN_FLIGHT
    assert entry.attempt == fresh.attempt


async def test_attempt_cannot_complete_after_it_was_declared_unknown(
    ledger: ChunkLedger,
) -> None:
    """A slow attempt finishing after a retry marked its chunk unknown leaves it unknown."""
    slow = await ledger.claim("0")
    await ledger.claim("0")
    assert slow.attempt is not None
    assert not await ledger.complete("0", ChunkState.DONE, slow.attempt)
    assert (await ledger.states())["0"] is ChunkState.UNKNOWN


async def test_repeated_completion_is_accepted(ledger: ChunkLedger) -> None:
    """The holder completing twice (a retried Redis call) is not an error."""
    claim = await ledger.claim("0")
    assert claim.attempt is not None
    assert await ledger.complete("0", ChunkState.DONE, claim.attempt)
    assert await ledger.complete("0", ChunkState.DONE, claim.attempt)
    assert (await ledger.counts())[ChunkState.DONE] == 1


async def test_concurrent_claims_send_once(ledger: ChunkLedger) -> None:
    """Ten workers claiming one chunk at once: exactly one sends."""
    claims = await asyncio.gather(*(ledger.claim("1") for _ in range(10)))
    assert sum(c.send for c in claims) == 1


async def test_create_is_idempotent(ledger: ChunkLedger) -> None:
    """A second create (a re-run prepare_send) adds new chunks and resets none."""
    claim = await ledger.claim("0")
    assert claim.attempt is not None
    await ledger.complete("0", ChunkState.DONE, claim.attempt)
    assert await ledger.create(["0", "1", "2", "3"], ttl=DAY) == 1
    states = await ledger.states()
    assert states == {
        "0": ChunkState.DONE,
        "1": ChunkState.PENDING,
        "2": ChunkState.PENDING,
        "3": ChunkState.PENDING,
    }
    counts = await ledger.counts()
    assert counts[ChunkState.DONE] == 1 and counts[ChunkState.PENDING] == 3


async def test_create_sets_the_ttl(redis: aioredis.Redis) -> None:
    """The ledger and its counts expire after the given TTL."""
    ledger = ChunkLedger(redis, "job2")
    await ledger.create(range(3), ttl=60)
    for key in (keys.ledger("job2"), keys.ledger_counts("job2")):
        assert 59_000 < await redis.pttl(key) <= 60_000


async def test_counts_follow_every_transition(ledger: ChunkLedger) -> None:
    """Per-state counts match the ledger after claims, completions and an ambiguity."""
    a = await ledger.claim("0")
    b = await ledger.claim("1")
    await ledger.claim("2")
    await ledger.claim("2")
    assert a.attempt and b.attempt
    await ledger.complete("0", ChunkState.DONE, a.attempt)
    await ledger.complete("1", "failed", b.attempt)
    counts = await ledger.counts()
    assert counts == {
        ChunkState.PENDING: 0,
        ChunkState.IN_FLIGHT: 0,
        ChunkState.DONE: 1,
        ChunkState.FAILED: 1,
        ChunkState.UNKNOWN: 1,
    }
    states = await ledger.states()
    assert sorted(states.values()) == sorted(s for s, n in counts.items() for _ in range(n))


async def test_all_final_only_when_nothing_pending_or_in_flight(ledger: ChunkLedger) -> None:
    """all_final turns true with the last completion, not before."""
    attempts = []
    for chunk in ("0", "1", "2"):
        claim = await ledger.claim(chunk)
        assert claim.attempt is not None
        attempts.append(claim.attempt)
    for chunk, attempt in zip(("0", "1"), attempts, strict=False):
        await ledger.complete(chunk, ChunkState.DONE, attempt)
        assert not await ledger.all_final()
    await ledger.complete("2", ChunkState.UNKNOWN, attempts[2])
    assert await ledger.all_final()


async def test_job_without_chunks_is_final_at_once(redis: aioredis.Redis) -> None:
    """Every row rejected: an empty ledger exists and is final."""
    ledger = ChunkLedger(redis, "empty")
    assert await ledger.create([], ttl=DAY) == 0
    assert await ledger.all_final()


async def test_all_final_is_false_without_a_ledger(redis: aioredis.Redis) -> None:
    """A job whose ledger was never created (or expired) is not "finished"."""
    assert not await ChunkLedger(redis, "nope").all_final()


async def test_finalize_guard_is_granted_once(ledger: ChunkLedger) -> None:
    """Two chunks finishing together both ask; only one enqueues finalize."""
    granted = await asyncio.gather(*(ledger.try_begin_finalize() for _ in range(5)))
    assert sorted(granted) == [False] * 4 + [True]
    assert not await ledger.try_begin_finalize()


async def test_finalize_guard_expires_with_the_ledger(
    ledger: ChunkLedger, redis: aioredis.Redis
) -> None:
    """The guard lives as long as the ledger, not forever."""
    await ledger.try_begin_finalize()
    assert 0 < await redis.pttl(keys.finalize_guard("job1")) <= DAY * 1000


async def test_claim_of_a_chunk_not_in_the_ledger_raises(ledger: ChunkLedger) -> None:
    """An unknown chunk id is an error, never an implicit pending chunk."""
    with pytest.raises(UnknownChunk, match="no chunk 9"):
        await ledger.claim("9")


async def test_complete_takes_only_final_states(ledger: ChunkLedger) -> None:
    """complete(pending) is a programming error (release is the way back)."""
    claim = await ledger.claim("0")
    assert claim.attempt is not None
    with pytest.raises(ValueError, match="done, failed or unknown"):
        await ledger.complete("0", ChunkState.PENDING, claim.attempt)
