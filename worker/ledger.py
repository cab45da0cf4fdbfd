"""The exactly-once chunk ledger: what the pipeline knows about each chunk of a job.

arq may run ``send_chunk`` again after a crash, so the decision "may I POST this chunk?" lives
in Redis, not in the job::

    pending --claim--> in_flight --complete--> done | failed | unknown
       ^                  |  |
       +----release-------+  +--claim again (the attempt never finished)--> unknown
                                 (or in_flight under a new attempt with resend_unknown)

``in_flight`` is written, with an attempt id and the Redis time, *before* the HTTP call. Finding
it on a later claim means an attempt died somewhere between that write and its completion: the
provider may have the chunk, so it is not sent again unless the job opted into at-least-once.
Only the attempt that holds ``in_flight`` may release or complete it, so a worker that was
presumed dead cannot overwrite what its successor decided. Every step is one Lua call
(``ledger.lua``), and per-state counts are kept in step, so ``all_final`` costs O(1) per chunk.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from worker import keys
from worker.ratelimit import Seconds, seconds

_SCRIPT = files("worker").joinpath("ledger.lua").read_text(encoding="utf-8")
#: Guard lifetime when the ledger has none left (it expired or was never created).
_DEFAULT_GUARD_TTL = 7 * 24 * 3600.0
#: Chunk ids per ``create`` call: keeps one script call (which blocks Redis) short.
_CREATE_BATCH = 5_000


class ChunkState(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"


FINAL_STATES = frozenset({ChunkState.DONE, ChunkState.FAILED, ChunkState.UNKNOWN})


class ClaimOutcome(StrEnum):
    SEND = "send"  # the caller holds in_flight: go ahead and POST
    SKIP_DONE = "skip_done"  # already done or failed: nothing to do
    AMBIGUOUS = "ambiguous"  # an earlier attempt never finished: now unknown, do not send
    SKIP_UNKNOWN = "skip_unknown"  # already unknown: do not send


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    #: The attempt that now holds ``in_flight`` (SEND only); pass it to release/complete.
    attempt: str | None
    #: The state the chunk was found in, and the attempt/time recorded there, if any.
    found: ChunkState
    previous_attempt: str | None = None
    since: float | None = None

    @property
    def send(self) -> bool:
        return self.outcome is ClaimOutcome.SEND


@dataclass(frozen=True)
class Entry:
    state: ChunkState
    attempt: str | None
    #: Redis time (epoch seconds) of the last transition; None while pending.
    since: float | None


class UnknownChunk(LookupError):
    """The chunk is not in the ledger: never created, or the ledger expired."""


class ChunkLedger:
    """The ledger of one job's chunks in Redis (``keys.ledger(job_id)``)."""

    def __init__(self, redis: Redis, job_id: str) -> None:
        self.redis = redis
        self.job_id = job_id
        self._keys = [keys.ledger(job_id), keys.ledger_counts(job_id), keys.finalize_guard(job_id)]
        self._script = redis.register_script(_SCRIPT)

    async def _call(self, *args: Any) -> Any:
        try:
            return await self._script(keys=self._keys, args=args)
        except ResponseError as exc:
            if "smspipe ledger: no chunk" in str(exc):
                raise UnknownChunk(str(exc).removeprefix("smspipe ledger: ")) from None
            raise

    async def create(self, chunk_ids: Iterable[str | int], ttl: Seconds) -> int:
        """Add the chunks as pending; chunks already there keep their state. Returns the added.

        ``ttl`` bounds how long the ledger outlives the job (every create extends it).
        """
        ttl_ms = max(1, int(seconds(ttl) * 1000))
        ids = [str(c) for c in chunk_ids]
        added = 0
        for start in range(0, max(len(ids), 1), _CREATE_BATCH):
            added += int(await self._call("create", ttl_ms, *ids[start : start + _CREATE_BATCH]))
        return added

    async def claim(self, chunk_id: str | int, *, resend_unknown: bool = False) -> Claim:
        """Decide whether this attempt may send the chunk, and if so mark it in_flight first."""
        attempt = secrets.token_hex(8)
        outcome, found, previous, since = await self._call(
            "claim", str(chunk_id), attempt, int(resend_unknown)
        )
        result = ClaimOutcome(_text(outcome))
        return Claim(
            outcome=result,
            attempt=attempt if result is ClaimOutcome.SEND else None,
            found=ChunkState(_text(found)),
            previous_attempt=_text(previous) or None,
            since=int(since) / 1000 if _text(since) else None,
        )

    async def release(self, chunk_id: str | int, attempt: str) -> bool:
        """Back to pending: the attempt failed before the provider could have accepted anything.

        False (and no change) when ``attempt`` no longer holds the chunk.
        """
        return bool(await self._call("release", str(chunk_id), attempt))

    async def complete(self, chunk_id: str | int, state: ChunkState | str, attempt: str) -> bool:
        """Record the final state; only the attempt holding in_flight may (repeats are fine)."""
        final = ChunkState(state)
        if final not in FINAL_STATES:
            raise ValueError(f"complete() takes done, failed or unknown, not {final}")
        return bool(await self._call("complete", str(chunk_id), attempt, final.value))

    async def entry(self, chunk_id: str | int) -> Entry | None:
        value = await self.redis.hget(self._keys[0], str(chunk_id))  # type: ignore[misc]
        return None if value is None else _parse(_text(value))

    async def states(self) -> dict[str, ChunkState]:
        raw = await self.redis.hgetall(self._keys[0])  # type: ignore[misc]
        return {_text(k): _parse(_text(v)).state for k, v in raw.items()}

    async def counts(self) -> dict[ChunkState, int]:
        """Chunks per state (every state present, zeros included)."""
        raw = await self.redis.hgetall(self._keys[1])  # type: ignore[misc]
        stored = {_text(k): int(v) for k, v in raw.items()}
        return {state: stored.get(state.value, 0) for state in ChunkState}

    async def all_final(self) -> bool:
        """Every chunk is done, failed or unknown (False for a ledger that does not exist)."""
        # redis-py's stubs type the asyncio client's replies as "awaitable or not".
        fields = ["pending", "in_flight"]
        pending, in_flight = await self.redis.hmget(self._keys[1], fields)  # type: ignore[misc]
        if pending is None:
            return False
        return int(pending) == 0 and int(in_flight or 0) == 0

    async def try_begin_finalize(self) -> bool:
        """True exactly once per job: whoever gets it enqueues finalize.

        Two chunks finishing together may both see ``all_final()``; this decides between them.
        """
        return bool(await self._call("finalize", int(_DEFAULT_GUARD_TTL * 1000)))


def _parse(value: str) -> Entry:
    state, _, rest = value.partition(":")
    attempt, _, ms = rest.rpartition(":")
    return Entry(
        state=ChunkState(state),
        attempt=attempt or None,
        since=int(ms) / 1000 if ms else None,
    )


def _text(value: bytes | str | int) -> str:
    """Replies are bytes or str depending on the client's ``decode_responses``."""
    return value.decode() if isinstance(value, bytes) else str(value)
