"""One rate limit per provider account, shared by every worker process on every machine.

A GCRA schedule lives in one Redis hash (``keys.ratelimit(account)``) and is advanced by a Lua
script (``ratelimit.lua``) that reads the clock with Redis ``TIME``, so workers on machines with
skewed clocks still share one timeline. ``acquire`` *reserves* the earliest slot that satisfies
both limits and returns how long to wait for it; the sender sleeps exactly that long and sends.
Nobody polls: one round trip per request, however many workers compete.

Why no 1-second window ever holds more than N requests
-------------------------------------------------------
With limit N/s, burst b and margin m, the emission interval is ``T = (1 + m) / N`` and the
tolerance ``tau = b * T``. The script grants slot_j and then sets ``TAT = max(TAT, slot_j) + T``,
so for any two reservations i < j: ``slot_j >= slot_i + (j - i) * T - tau``. Take any half-open
window ``[t, t + 1)`` and the first (i) and last (j) request inside it, sent at
``slot + lateness``, lateness (reply latency, sleep overshoot) differing by at most m seconds:
``(j - i) * T - tau - m < 1``, i.e. ``(j - i) < (1 + m + b*T) / T = N + b``. So the window
holds ``j - i + 1 <= N + b`` requests (for integral N; ``ceil(N) + b`` otherwise). With the
default b = 0 that is N exactly, for every window alignment, not only calendar seconds. The
boundary case (N+1 requests spaced exactly 1/N apart, the first and last exactly 1 s apart) is
excluded by the half-open window and, in practice, by the margin: the (N)th-next request is
scheduled 1 + m s later, so m seconds of jitter still cannot pull it into the window. The margin
costs ``m / (1 + m)`` of the throughput (2% with the default 20 ms). ``wait`` enforces the
premise: a sender that wakes more than m after its slot (starved CPU, an event loop busy parsing
a big reply) does not send late; it gives the slot up and reserves a new one.

Messages are scheduled the same way with a request of c messages advancing the messages TAT by
``c * T_msg`` (paid for *before* the next request, so after an idle period a chunk goes at
once). The average stays at or under M/s, but one request carries its c messages at one
instant, so a 1-second window can hold up to ``M + b + (c_max - 1)`` messages, c_max the
largest chunk; keep chunks well under M if the provider counts messages per window. A chunk
larger than one second's worth is still scheduled (the next request waits ``c / M`` seconds).

The bound is about when senders send; what the provider sees adds the network's jitter, which
the margin must also cover.

Edges: a slot reserved and then abandoned (the sender was cancelled) is only lost throughput.
``penalize`` (HTTP 429) grants no new slot before ``now + Retry-After`` to anyone sharing the
account; slots reserved before the 429 still fire (they will likely get a 429 and retry).
Per-process concurrency is a separate ``asyncio.Semaphore``: take it *before* ``wait`` so a
process never reserves slots it has no free connection for.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import timedelta
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis

from worker import keys

#: Seconds of send-time jitter the window bound tolerates (see the module docstring).
DEFAULT_MARGIN = 0.02
#: How long an idle account's schedule survives its last use (it is only history by then).
IDLE_TTL = 60.0

_SCRIPT = files("worker").joinpath("ratelimit.lua").read_text(encoding="utf-8")

Seconds = float | int | timedelta


def seconds(value: Seconds) -> float:
    """A duration given as seconds or a ``timedelta``, as float seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass(frozen=True)
class Slot:
    """A reserved moment to send, on this process's event-loop clock."""

    at: float


class WaitTooLong(Exception):
    """The next slot is later than the caller's ``max_wait``; nothing was reserved."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"next rate-limit slot is {delay:.3f}s away")
        self.delay = delay


class RateLimiter:
    """The shared schedule of one provider account, seen from one process.

    ``requests_per_second`` / ``messages_per_second``: ``None`` turns that limit off (a 429
    penalty still applies). ``burst``: extra requests (and messages) that may go back to back
    after an idle period; 0 means strict spacing. ``margin``: seconds of jitter tolerated.
    Every limiter built with the same ``account`` on the same Redis shares one schedule, so all
    of them should be built with the same limits.
    """

    def __init__(
        self,
        redis: Redis,
        account: str,
        *,
        requests_per_second: float | None,
        messages_per_second: float | None = None,
        burst: int = 0,
        margin: Seconds = DEFAULT_MARGIN,
    ) -> None:
        for name, rate in (("requests", requests_per_second), ("messages", messages_per_second)):
            if rate is not None and not (rate > 0 and math.isfinite(rate)):
                raise ValueError(f"{name}_per_second must be a positive number or None")
        if burst < 0:
            raise ValueError("burst must be >= 0")
        margin = seconds(margin)
        if margin < 0:
            raise ValueError("margin must be >= 0")
        self.redis = redis
        self.account = account
        self.key = keys.ratelimit(account)
        self.requests_per_second = requests_per_second
        self.messages_per_second = messages_per_second
        self.burst = burst
        self.margin = margin
        #: Slots ``wait`` gave up because it woke too late to use them (see ``wait``).
        self.missed_slots = 0
        self._req_interval_us = _interval_us(requests_per_second, margin)
        self._msg_interval_us = _interval_us(messages_per_second, margin)
        # register_script: EVALSHA, and on NOSCRIPT (a restarted or flushed Redis) load + retry.
        self._script = redis.register_script(_SCRIPT)

    async def acquire(self, messages: int = 1, *, max_wait: Seconds | None = None) -> float:
        """Reserve the earliest slot for one request of ``messages`` messages; seconds to wait.

        With ``max_wait``, a slot further away than that is not reserved: ``WaitTooLong`` says
        how far it was, so a job can be deferred instead of sleeping past its timeout.
        """
        if messages < 0:
            raise ValueError("messages must be >= 0")
        limit_us = -1 if max_wait is None else max(0, int(seconds(max_wait) * 1e6))
        delay_us, reserved = await self._script(
            keys=[self.key],
            args=[
                "acquire",
                int(messages),
                repr(self._req_interval_us),
                repr(self._req_interval_us * self.burst),
                repr(self._msg_interval_us),
                repr(self._msg_interval_us * self.burst),
                limit_us,
                int(IDLE_TTL * 1000),
            ],
        )
        delay = int(delay_us) / 1e6
        if not int(reserved):
            raise WaitTooLong(delay)
        return delay

    async def wait(self, messages: int = 1, *, max_wait: Seconds | None = None) -> float:
        """Reserve a slot and sleep until it; returns the seconds waited. Send right after.

        A wake-up later than ``margin`` past the slot (a starved CPU, a busy event loop) gives
        the slot up and reserves a new one: sending that late could put N+1 requests in one
        window. ``missed_slots`` counts them. With ``margin=0`` this check is off.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self.slot(messages, max_wait=max_wait)
        return loop.time() - started

    async def slot(self, messages: int = 1, *, max_wait: Seconds | None = None) -> Slot:
        """``wait``, returning the slot, for a caller with work to do before it sends: it then
        calls ``keep`` right before sending, which moves it to a new slot if it is late."""
        while True:
            found = await self._sleep_to_slot(messages, max_wait)
            if self.on_time(found):
                return found
            self.missed_slots += 1

    async def keep(self, slot: Slot, messages: int = 1, *, max_wait: Seconds | None = None) -> Slot:
        """``slot`` if it is still on time, else the next one (slept until)."""
        if self.on_time(slot):
            return slot
        self.missed_slots += 1
        return await self.slot(messages, max_wait=max_wait)

    def on_time(self, slot: Slot) -> bool:
        return self.margin <= 0 or asyncio.get_running_loop().time() - slot.at <= self.margin

    async def _sleep_to_slot(self, messages: int, max_wait: Seconds | None) -> Slot:
        loop = asyncio.get_running_loop()
        asked = loop.time()
        delay = await self.acquire(messages, max_wait=max_wait)
        if delay > 0:
            await asyncio.sleep(delay)
        # The slot is no earlier than asked + delay (Redis read its clock after `asked`), so
        # lateness measured from there is overestimated by at most one round trip.
        return Slot(at=asked + delay)

    async def penalize(self, retry_after: Seconds) -> float:
        """No new slot for anyone on this account before ``retry_after`` from now (a 429).

        Returns the seconds the penalty still runs (a longer earlier penalty is kept).
        """
        us = max(0, int(seconds(retry_after) * 1e6))
        remaining: Any = await self._script(
            keys=[self.key], args=["penalize", us, int(IDLE_TTL * 1000)]
        )
        return int(remaining) / 1e6

    def __repr__(self) -> str:
        return (
            f"RateLimiter({self.account!r}, requests_per_second={self.requests_per_second}, "
            f"messages_per_second={self.messages_per_second}, burst={self.burst})"
        )


def _interval_us(rate: float | None, margin: float) -> float:
    """Microseconds between two units at ``rate``/s, widened by the jitter margin; 0 = off."""
    return 0.0 if rate is None else 1e6 * (1.0 + margin) / rate
