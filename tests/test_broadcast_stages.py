"""Broadcast stages on data: start times, polling delays, and what each row's outcome is."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from jobs.broadcast import broadcast_results, job_verdict, row_outcome
from jobs.broadcast_payloads import CREATE_UNKNOWN, DELETED, NOT_CREATED, Part, check_campaign
from jobs.broadcast_schedule import (
    BroadcastInputError,
    check_future,
    parse_start,
    poll_delay,
    provider_start,
)


def test_a_wall_clock_start_is_read_in_its_zone_and_sent_in_the_providers() -> None:
    """09:00 in Madrid (CET) is 08:00 UTC, sent as 01-12-2026 03:00 to a Caracas provider."""
    start = parse_start("2026-12-01 09:00", "Europe/Madrid")
    assert start == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert provider_start(start, "UTC") == "01-12-2026 08:00"
    assert provider_start(start, "America/Caracas") == "01-12-2026 04:00"


def test_an_explicit_offset_wins_over_the_zone() -> None:
    """An ISO time with an offset means that instant, whatever --tz says."""
    assert parse_start("2026-12-01T09:00+02:00", "America/Caracas") == datetime(
        2026, 12, 1, 7, 0, tzinfo=UTC
    )


def test_seconds_round_up_so_a_broadcast_never_starts_early() -> None:
    """The provider counts minutes: 09:00:30 becomes 09:01, not 09:00."""
    assert parse_start("2026-12-01 09:00:30", "UTC") == datetime(2026, 12, 1, 9, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "tz", "message"),
    [
        ("tomorrow at nine", "UTC", "is not a date and time"),
        ("2026-12-01 09:00", "Mars/Olympus", "unknown time zone"),
    ],
)
def test_unreadable_starts_and_zones_are_refused(value: str, tz: str, message: str) -> None:
    """A typo in --at or --tz is an error naming what was wrong."""
    with pytest.raises(BroadcastInputError, match=message):
        parse_start(value, tz)


def test_a_start_in_the_past_is_refused() -> None:
    """A start before now would start at once: refused, saying so."""
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with pytest.raises(BroadcastInputError, match="is in the past"):
        check_future(datetime(2026, 12, 1, 9, 0, tzinfo=UTC), now)
    check_future(datetime(2026, 12, 1, 9, 1, tzinfo=UTC), now)


def test_polling_backs_off_to_its_cap_and_wakes_for_a_scheduled_start() -> None:
    """0.5 s growing x1.5 to 30 s; a start 2 s away is looked at in 2 s, not 30."""
    delays = [poll_delay(step, first=0.5, most=30) for step in range(12)]
    assert delays[:3] == [0.5, 0.75, 1.125] and delays[-1] == 30
    assert delays == sorted(delays)
    assert poll_delay(20, first=0.5, most=30, until_start=2.0) == 2.0
    assert poll_delay(20, first=0.5, most=30, until_start=-5.0) == 0.5


def test_campaign_names_the_api_cannot_carry_are_refused() -> None:
    """The campaign is a path segment: '/' and 'null' cannot travel."""
    for bad in ("a/b", "null", " "):
        with pytest.raises(BroadcastInputError):
            check_campaign(bad)
    assert check_campaign(" Promo de año ") == "Promo de año"


@pytest.mark.parametrize(
    ("part", "state"),
    [
        (Part(1, 7, "DONE", expected=3, sent=3), "SENT"),
        (Part(1, 7, "ABORTED", expected=3, sent=0), "FAILED"),
        (Part(1, 7, "ABORTED", expected=3, sent=2), "UNKNOWN"),
        (Part(1, 7, DELETED, expected=3, sent=3), "SENT"),
        (Part(1, 7, "FORCED_SUSPENDED", expected=3, sent=1, gave_up=True), "UNKNOWN"),
        (Part(1, None, NOT_CREATED, error="provider answered ERROR"), "FAILED"),
        (Part(1, None, CREATE_UNKNOWN, error="ambiguous"), "UNKNOWN"),
    ],
)
def test_a_rows_outcome_is_its_broadcasts(part: Part, state: str) -> None:
    """All sent: SENT; ended before any: FAILED; part-way: UNKNOWN (the provider won't say who)."""
    assert row_outcome(part)[0] == state


def test_results_keep_every_row_and_number_rows_by_broadcast() -> None:
    """READY rows take their broadcast's outcome; rejected rows keep theirs."""
    prepared = pd.DataFrame(
        {
            "row": [1, 2, 3],
            "input": ["a", "b", "c"],
            "msisdn": ["13055550101", None, "13055550102"],
            "state": ["READY", "REJECTED", "READY"],
            "reason": [None, "NOT_A_NUMBER", None],
            "segments": [1, None, 1],
            "chunk": pd.array([1, None, 2], dtype="Int64"),
        }
    )
    parts = [Part(1, 5, "DONE", expected=1, sent=1), Part(2, 6, "ABORTED", expected=1, sent=0)]
    results = broadcast_results(prepared, parts)
    assert list(results["state"]) == ["SENT", "REJECTED", "FAILED"]
    assert list(results["provider_status"].fillna("")) == ["DONE", "", "ABORTED"]
    assert results.loc[2, "reason"] == "broadcast 6 was stopped (ABORTED) before sending any message"
    assert job_verdict(parts)[:2] == ("failed", "ABORTED")
    assert job_verdict(parts[:1]) == ("done", "DONE", None)
