"""Request counters as the provider would see them, for assertions about clients' pacing.

"Max requests in any 1 s window" is measured on arrival at the sandbox, so a rate-limit test can
check what the provider experienced, not what the workers believe they sent.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any


class SlidingWindowMax:
    """Largest number of events ever seen inside one half-open 1-second window (t-1, t]."""

    def __init__(self) -> None:
        self._times: deque[float] = deque()
        self.max = 0

    def add(self, now: float) -> None:
        times = self._times
        while times and times[0] <= now - 1.0:
            times.popleft()
        times.append(now)
        self.max = max(self.max, len(times))

    def current(self, now: float) -> int:
        return sum(1 for t in self._times if t > now - 1.0)


class RequestStats:
    """Counts per route and outcome, plus per-second windows of arrivals and admitted calls.

    Times are wall-clock seconds, so "calendar second" means a whole second of the epoch.
    """

    def __init__(self) -> None:
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.arrivals = SlidingWindowMax()
        self.admitted = SlidingWindowMax()
        self._second = 0
        self._in_second = 0
        self.calendar_second_max = 0
        self.total = 0

    def arrive(self, now: float) -> None:
        self.total += 1
        self.arrivals.add(now)
        second = int(now)
        if second != self._second:
            self._second, self._in_second = second, 0
        self._in_second += 1
        self.calendar_second_max = max(self.calendar_second_max, self._in_second)

    def admit(self, now: float) -> None:
        self.admitted.add(now)

    def record(self, route: str, outcome: str) -> None:
        self.outcomes[(route, outcome)] += 1

    def to_json(self, now: float) -> dict[str, Any]:
        routes: dict[str, dict[str, int]] = {}
        for (route, outcome), count in sorted(self.outcomes.items()):
            routes.setdefault(route, {})[outcome] = count
        return {
            "total_requests": self.total,
            "routes": routes,
            "max_requests_in_any_1s_window": self.arrivals.max,
            "max_admitted_in_any_1s_window": self.admitted.max,
            "max_requests_in_a_calendar_second": self.calendar_second_max,
            "requests_in_last_1s": self.arrivals.current(now),
        }
