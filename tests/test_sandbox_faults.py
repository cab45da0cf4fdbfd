"""Injected faults, latency and the requests-per-second limit of the sandbox."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET

import aiohttp
import pytest

from ogangi.sandbox import FaultKind, FaultPlan, SandboxConfig
from ogangi.sandbox.faults import RateLimiter
from ogangi.sandbox.stats import SlidingWindowMax
from ogangi.sandbox.testing import SandboxClient, sandbox_client

ROW = b'"13056708084","55500","C","UTF-8","UTC","Hi"\r\n'


def always(kind: FaultKind, **plan: object) -> SandboxConfig:
    return SandboxConfig(faults=FaultPlan(rates={kind: 1.0}, **plan))  # type: ignore[arg-type]


def outcomes(api: SandboxClient) -> dict[str, int]:
    return api.sandbox.state.stats.to_json(time.time())["routes"]["sendSMSByFile"]


async def test_http_503_answers_503_and_processes_nothing() -> None:
    """``http_503``: a bare 503; no message is recorded."""
    async with sandbox_client(always(FaultKind.HTTP_503)) as api:
        reply = await api.upload(ROW)
        assert reply.http_status == 503
        assert len(api.sandbox.ledger) == 0
        assert outcomes(api) == {"http_503": 1}


async def test_error_xml_answers_error_and_processes_nothing() -> None:
    """``error_xml``: HTTP 200 with status ERROR; no message is recorded."""
    async with sandbox_client(always(FaultKind.ERROR_XML)) as api:
        reply = await api.upload(ROW)
        assert len(api.sandbox.ledger) == 0
    assert (reply.http_status, reply.status) == (200, "ERROR")
    assert reply.error == "injected fault: error_xml"


async def test_garbage_body_is_not_xml_but_the_send_happened() -> None:
    """``garbage_body``: a 200 no XML parser accepts, after the messages were recorded."""
    async with sandbox_client(always(FaultKind.GARBAGE_BODY)) as api:
        reply = await api.upload(ROW)
        assert len(api.sandbox.ledger) == 1
    assert reply.http_status == 200
    with pytest.raises(ET.ParseError):
        ET.fromstring(reply.body)


async def test_rate_limit_429_carries_retry_after() -> None:
    """``rate_limit_429``: HTTP 429 with the plan's ``Retry-After``; nothing recorded."""
    async with sandbox_client(always(FaultKind.RATE_LIMIT_429, retry_after_seconds=3)) as api:
        reply = await api.upload(ROW)
        assert len(api.sandbox.ledger) == 0
    assert (reply.http_status, reply.headers["Retry-After"]) == (429, "3")


async def test_timeout_before_accept_drops_the_connection_without_recording() -> None:
    """``timeout_before_accept``: a stall, then a dropped socket; nothing was sent."""
    config = always(FaultKind.TIMEOUT_BEFORE_ACCEPT, hang_seconds=0.2)
    async with sandbox_client(config) as api:
        started = time.monotonic()
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await api.upload(ROW)
        assert time.monotonic() - started >= 0.2
        assert len(api.sandbox.ledger) == 0


async def test_timeout_before_accept_may_end_with_503() -> None:
    """With ``drop_connection=False`` the stall ends in a 503 instead."""
    config = always(FaultKind.TIMEOUT_BEFORE_ACCEPT, hang_seconds=0.1, drop_connection=False)
    async with sandbox_client(config) as api:
        reply = await api.upload(ROW)
        assert len(api.sandbox.ledger) == 0
    assert reply.http_status == 503


async def test_timeout_after_accept_records_then_outlasts_the_client() -> None:
    """``timeout_after_accept``: the messages are recorded, the answer never comes in time."""
    config = always(FaultKind.TIMEOUT_AFTER_ACCEPT, hang_seconds=30)
    async with sandbox_client(config) as api:
        with pytest.raises(asyncio.TimeoutError):
            await api.upload(ROW, timeout=0.3)
        assert len(api.sandbox.ledger) == 1


async def test_timeout_after_accept_can_drop_at_once() -> None:
    """With no stall, the accepted call ends in a dropped connection (an ambiguous outcome)."""
    config = always(FaultKind.TIMEOUT_AFTER_ACCEPT, hang_seconds=0)
    async with sandbox_client(config) as api:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await api.upload(ROW)
        assert len(api.sandbox.ledger) == 1


async def test_script_decides_the_next_calls_before_the_rates() -> None:
    """A plan's ``script`` gives the outcome of the next eligible calls, in order."""
    plan = FaultPlan(script=(FaultKind.HTTP_503, None, FaultKind.ERROR_XML))
    async with sandbox_client(SandboxConfig(faults=plan)) as api:
        replies = [await api.upload(ROW) for _ in range(4)]
    assert [r.http_status for r in replies] == [503, 200, 200, 200]
    assert [r.status for r in replies[1:]] == ["OK", "ERROR", "OK"]


async def test_seeded_rates_repeat_exactly() -> None:
    """The same plan and seed give the same fault sequence on every run."""
    plan = FaultPlan(rates={FaultKind.HTTP_503: 0.3, FaultKind.ERROR_XML: 0.3}, seed=11)

    async def run() -> list[tuple[int, str]]:
        async with sandbox_client(SandboxConfig(faults=plan)) as api:
            replies = [await api.call("GET", "getBroadcast", "8", "1") for _ in range(20)]
        return [(r.http_status, r.body[-60:].decode(errors="replace")) for r in replies]

    first, second = await run(), await run()
    assert first == second
    assert {status for status, _ in first} == {200, 503}


async def test_faults_leave_routes_outside_the_plan_alone() -> None:
    """By default getShortcodes is not in the plan's routes; plans can name routes."""
    async with sandbox_client(always(FaultKind.HTTP_503)) as api:
        untouched = await api.call("GET", "getShortcodes", "8", "sandbox")
        api.sandbox.config.faults = FaultPlan(
            rates={FaultKind.HTTP_503: 1.0}, routes=frozenset({"getShortcodes"})
        )
        hit = await api.call("GET", "getShortcodes", "8", "sandbox")
        spared = await api.upload(ROW)
    assert (untouched.status, hit.http_status, spared.status) == ("OK", 503, "OK")


async def test_latency_delays_each_call() -> None:
    """``latency_seconds`` (+ up to ``jitter_seconds``) is added before the call is handled."""
    plan = FaultPlan(latency_seconds=0.15, jitter_seconds=0.05, seed=1)
    async with sandbox_client(SandboxConfig(faults=plan)) as api:
        started = time.monotonic()
        reply = await api.upload(ROW)
        elapsed = time.monotonic() - started
    assert reply.status == "OK"
    assert 0.15 <= elapsed < 1.0


async def test_requests_above_the_rps_limit_get_429_with_retry_after() -> None:
    """``rps_limit``: the (N+1)-th call within a second is 429 with ``Retry-After``."""
    async with sandbox_client(SandboxConfig(rps_limit=3)) as api:
        replies = [await api.call("GET", "getShortcodes", "8", "sandbox") for _ in range(5)]
        stats = await api.control("GET", "stats")
    assert [r.http_status for r in replies] == [200, 200, 200, 429, 429]
    assert replies[3].headers["Retry-After"] == "1"
    assert stats["max_requests_in_any_1s_window"] == 5
    assert stats["max_admitted_in_any_1s_window"] == 3
    assert stats["routes"]["getShortcodes"] == {"OK": 3, "rate_limited": 2}


def test_rate_limiter_window_slides() -> None:
    """At most N admitted in any half-open 1 s window; the wait is to the oldest's expiry."""
    limiter = RateLimiter()
    assert [limiter.admit(t, 2) for t in (0.0, 0.5, 0.9)] == [None, None, 1]
    assert limiter.admit(1.0, 2) is None  # the call at 0.0 left the window (0.0, 1.0]
    assert limiter.admit(1.2, 2) == 1
    assert limiter.admit(1.2, None) is None  # no limit


def test_window_counter_reports_the_busiest_second() -> None:
    """The max counts events in any (t-1, t] window, not in calendar seconds."""
    window = SlidingWindowMax()
    for t in (0.0, 0.6, 1.0, 1.5, 1.55, 3.0):
        window.add(t)
    assert window.max == 4  # 0.6, 1.0, 1.5, 1.55


@pytest.mark.parametrize(
    "plan",
    [
        {"rates": {"http_503": 0.7, "error_xml": 0.4}},
        {"rates": {"meteor_strike": 0.1}},
        {"rates": {"http_503": -0.1}},
        {"routes": ["sendSMS"]},
        {"latency_seconds": -1},
    ],
)
def test_invalid_fault_plans_are_refused(plan: dict[str, object]) -> None:
    """Plans that cannot mean anything are refused when built, not when applied."""
    with pytest.raises(ValueError):
        FaultPlan.from_json(plan)
