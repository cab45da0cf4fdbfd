"""Injected failures, latency and the requests-per-second limit.

The point of the sandbox is to let the pipeline meet every way the provider can misbehave, on
purpose and reproducibly: a plan names per-call probabilities for each fault kind and a seed.

What each kind does to one call (the client-side classification in brackets):

- ``http_503``: HTTP 503, nothing processed [retryable].
- ``rate_limit_429``: HTTP 429 with ``Retry-After``, nothing processed [retryable].
- ``error_xml``: HTTP 200 with status ERROR, nothing processed [permanent].
- ``garbage_body``: processed (messages recorded), then a 200 whose body is not XML [ambiguous].
- ``timeout_before_accept``: stalls ``hang_seconds`` without processing, then drops the
  connection (or answers 503 when ``drop_connection`` is false) [retryable if the client knows
  the body was not read; ambiguous otherwise].
- ``timeout_after_accept``: processed (messages recorded), then stalls ``hang_seconds`` and drops
  the connection (or sends the real answer late) [ambiguous].
"""

from __future__ import annotations

import enum
import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Routes (by their ``<input>`` name) that faults and latency apply to unless a plan says otherwise.
DEFAULT_FAULT_ROUTES = frozenset(
    {
        "sendSMSByFile",
        "createBroadcastFromJson",
        "getBroadcast",
        "suspendBroadcast",
        "resumeBroadcast",
        "stopBroadcast",
        "deleteBroadcast",
    }
)
ALL_ROUTES = DEFAULT_FAULT_ROUTES | {"getShortcodes"}


class FaultKind(str, enum.Enum):
    HTTP_503 = "http_503"
    ERROR_XML = "error_xml"
    GARBAGE_BODY = "garbage_body"
    RATE_LIMIT_429 = "rate_limit_429"
    TIMEOUT_BEFORE_ACCEPT = "timeout_before_accept"
    TIMEOUT_AFTER_ACCEPT = "timeout_after_accept"

    @property
    def processes_request(self) -> bool:
        """Whether the sandbox acts on the call (records messages) despite the fault."""
        return self in (FaultKind.GARBAGE_BODY, FaultKind.TIMEOUT_AFTER_ACCEPT)


@dataclass(frozen=True)
class FaultPlan:
    """Which faults to inject, how often, and on which routes.

    ``rates`` are per-call probabilities (their sum at most 1). ``script`` lists the outcome of
    the next eligible calls in order (``None`` = no fault) before the rates take over; it is what
    a test uses for "the first call fails, the retry succeeds". A new plan restarts the seeded
    random sequence and the script.
    """

    rates: Mapping[FaultKind, float] = field(default_factory=dict)
    script: tuple[FaultKind | None, ...] = ()
    seed: int | None = None
    latency_seconds: float = 0.0
    jitter_seconds: float = 0.0
    hang_seconds: float = 30.0
    drop_connection: bool = True
    retry_after_seconds: int = 1
    routes: frozenset[str] = DEFAULT_FAULT_ROUTES

    def __post_init__(self) -> None:
        rates = {FaultKind(kind): float(rate) for kind, rate in self.rates.items()}
        if any(not 0.0 <= rate <= 1.0 for rate in rates.values()):
            raise ValueError("fault rates are probabilities between 0 and 1")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError("fault rates add up to more than 1")
        unknown = set(self.routes) - ALL_ROUTES
        if unknown:
            raise ValueError(f"unknown routes in fault plan: {sorted(unknown)}")
        if min(self.latency_seconds, self.jitter_seconds, self.hang_seconds) < 0:
            raise ValueError("latency, jitter and hang must not be negative")
        if self.retry_after_seconds < 0:
            raise ValueError("retry_after_seconds must not be negative")
        object.__setattr__(self, "rates", rates)
        object.__setattr__(
            self, "script", tuple(None if k is None else FaultKind(k) for k in self.script)
        )
        object.__setattr__(self, "routes", frozenset(self.routes))

    def to_json(self) -> dict[str, Any]:
        return {
            "rates": {kind.value: rate for kind, rate in self.rates.items()},
            "script": [None if kind is None else kind.value for kind in self.script],
            "seed": self.seed,
            "latency_seconds": self.latency_seconds,
            "jitter_seconds": self.jitter_seconds,
            "hang_seconds": self.hang_seconds,
            "drop_connection": self.drop_connection,
            "retry_after_seconds": self.retry_after_seconds,
            "routes": sorted(self.routes),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> FaultPlan:
        """Build a plan from the control API's JSON; raises ``ValueError`` on unknown fields."""
        known = set(cls.__dataclass_fields__)
        unknown = set(doc) - known
        if unknown:
            raise ValueError(f"unknown fault plan fields: {sorted(unknown)}")
        values = dict(doc)
        if "script" in values:
            values["script"] = tuple(values["script"])
        if "routes" in values:
            values["routes"] = frozenset(values["routes"])
        return cls(**values)


class FaultInjector:
    """Draws the fault (if any) for each eligible call, reproducibly for a seeded plan."""

    def __init__(self) -> None:
        self._plan: FaultPlan | None = None
        self._rng = random.Random()
        self._script: deque[FaultKind | None] = deque()

    def _adopt(self, plan: FaultPlan) -> None:
        if plan is not self._plan:
            self._plan = plan
            self._rng = random.Random(plan.seed)
            self._script = deque(plan.script)

    def choose(self, plan: FaultPlan, route: str) -> FaultKind | None:
        self._adopt(plan)
        if route not in plan.routes:
            return None
        if self._script:
            return self._script.popleft()
        if not plan.rates:
            return None
        draw = self._rng.random()
        for kind, rate in plan.rates.items():
            if draw < rate:
                return kind
            draw -= rate
        return None

    def latency(self, plan: FaultPlan, route: str) -> float:
        self._adopt(plan)
        if route not in plan.routes:
            return 0.0
        jitter = self._rng.uniform(0.0, plan.jitter_seconds) if plan.jitter_seconds else 0.0
        return plan.latency_seconds + jitter


class RateLimiter:
    """At most ``limit`` admitted calls in any 1-second window (half-open, sliding)."""

    def __init__(self) -> None:
        self._admitted: deque[float] = deque()

    def admit(self, now: float, limit: float | None) -> int | None:
        """``None`` if the call may proceed, else whole seconds to put in ``Retry-After``."""
        window = self._admitted
        while window and window[0] <= now - 1.0:
            window.popleft()
        if limit is not None and len(window) + 1 > limit:
            return max(1, math.ceil(window[0] + 1.0 - now))
        window.append(now)
        return None

    def reset(self) -> None:
        self._admitted.clear()
