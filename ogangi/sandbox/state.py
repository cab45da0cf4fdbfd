"""Everything a running sandbox remembers, and the clock it reads."""

from __future__ import annotations

import copy
import dataclasses
import random
import time
import uuid
import zoneinfo
from collections.abc import Callable, Sequence

from ogangi.sandbox.broadcasts import Broadcast, BroadcastBook, Recipient
from ogangi.sandbox.columns import Column, int_strings
from ogangi.sandbox.config import SandboxConfig
from ogangi.sandbox.faults import FaultInjector, RateLimiter
from ogangi.sandbox.ledger import Ledger
from ogangi.sandbox.stats import RequestStats


class SandboxState:
    """Ledger, broadcasts, counters and fault machinery of one sandbox.

    ``clock`` (epoch seconds) is the simulated time of broadcasts and ledger stamps; a test may
    replace it to move that time by hand. Request pacing (limit, stats) keeps the real clock.
    ``reset()`` returns everything, config included, to how the sandbox started.
    """

    def __init__(self, config: SandboxConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self._initial = copy.deepcopy(config)
        self.ledger = Ledger(config.ledger_path)
        self.broadcasts = BroadcastBook(
            emit=self._broadcast_sent,
            rate=lambda: self.config.broadcast_rate,
            force_after=lambda: self.config.force_suspend_after,
        )
        self.ledger.sync = lambda: self.broadcasts.advance_all(self.clock())
        self.stats = RequestStats()
        self.faults = FaultInjector()
        self.limiter = RateLimiter()
        # Counting up from a random negative start: unique, signed 64-bit, and negative like the
        # doc samples, so a client that assumes unsigned ids fails here and not in production.
        self._next_message = -(1 << 63) + 1 + random.getrandbits(62)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.config.timezone)

    def message_ids(self, count: int) -> list[str]:
        """``count`` fresh ids: signed 64-bit decimal strings, unique for this sandbox's life."""
        start = self._take_ids(count)
        return list(map(str, range(start, start + count)))

    def message_id_column(self, count: int) -> Column:
        """``message_ids(count)`` as an Arrow column (from the same counter)."""
        return int_strings(self._take_ids(count), count)

    def _take_ids(self, count: int) -> int:
        start = self._next_message
        self._next_message += count
        return start

    @staticmethod
    def request_id() -> str:
        return uuid.uuid4().hex

    def _broadcast_sent(self, item: Broadcast, batch: Sequence[Recipient], at: float) -> None:
        ids = self.message_ids(len(batch))
        sender = item.spec.sender
        self.ledger.record(
            "broadcast",
            [(mid, r.mobile, sender, r.text) for mid, r in zip(ids, batch, strict=True)],
            request_id=item.spec.request_id,
            at=at,
            broadcast_id=item.id,
        )

    def reset(self) -> None:
        for f in dataclasses.fields(self.config):
            if f.name != "ledger_path":
                setattr(self.config, f.name, copy.deepcopy(getattr(self._initial, f.name)))
        self.ledger.clear()
        self.broadcasts.reset()
        self.stats = RequestStats()
        self.faults = FaultInjector()
        self.limiter.reset()
