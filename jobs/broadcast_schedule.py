"""When a broadcast starts, and how often its job looks at it: plain functions on times.

A start time is given as a wall-clock time in a stated zone (``--at "2026-12-01 09:00" --tz
Europe/Madrid``), kept as a UTC instant in the job, and sent as the provider's
``dd-MM-yyyy HH:mm`` in the provider's zone (``OGANGI_TIMEZONE``): the API's date carries no zone.
"""

from __future__ import annotations

import math
import zoneinfo
from datetime import UTC, datetime, timedelta

#: The provider's start date format (spec §5.3); minutes only.
PROVIDER_FORMAT = "%d-%m-%Y %H:%M"
#: The forms ``--at`` takes besides ISO 8601 (which ``datetime.fromisoformat`` reads).
_OTHER_FORMATS = (PROVIDER_FORMAT, "%d-%m-%Y %H:%M:%S", "%Y/%m/%d %H:%M")
#: Growth of the polling delay while a reading brings nothing new.
POLL_GROWTH = 1.5


class BroadcastInputError(ValueError):
    """A broadcast request the user must fix (a past or unreadable start time, a bad zone...)."""


def zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise BroadcastInputError(
            f"unknown time zone {name!r}: use an IANA name such as UTC or America/Caracas"
        ) from None


def parse_start(value: str | datetime, tz: str = "UTC") -> datetime:
    """The UTC instant of ``value``; a time without an offset is read in ``tz``.

    The provider counts in whole minutes, so seconds round *up* to the next minute: a broadcast
    never starts before the time asked for.
    """
    local = zone(tz)
    if isinstance(value, datetime):
        when = value
    else:
        when = _parse_text(value.strip())
    if when.tzinfo is None:
        when = when.replace(tzinfo=local)
    when = when.astimezone(UTC)
    if when.second or when.microsecond:
        when = when.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return when


def _parse_text(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for fmt in _OTHER_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise BroadcastInputError(
        f"start time {text!r} is not a date and time like '2026-12-01 09:00'"
    )


def check_future(start: datetime, now: datetime | None = None) -> None:
    """Refuse a start that is not in the future: the provider would start at once instead."""
    now = now or datetime.now(UTC)
    if start <= now:
        raise BroadcastInputError(
            f"start time {start:%Y-%m-%d %H:%M} UTC is in the past (now {now:%Y-%m-%d %H:%M:%S}"
            " UTC): nothing was created; give a later --at, or none to start now"
        )


def provider_start(start: datetime, provider_zone: str) -> str:
    """``start`` (aware) as the provider's wall-clock ``dd-MM-yyyy HH:mm`` in its zone."""
    return start.astimezone(zone(provider_zone)).strftime(PROVIDER_FORMAT)


def poll_delay(
    step: int, *, first: float, most: float, until_start: float | None = None
) -> float:
    """Seconds before the next getBroadcast: ``first * 1.5**step``, at most ``most``.

    ``until_start`` (a SCHEDULED broadcast) brings the next look forward to its start time.
    """
    exponent = min(step, 64)  # 1.5**64 is far beyond any cap; avoids overflow
    delay = min(most, first * POLL_GROWTH**exponent)
    if until_start is not None and math.isfinite(until_start):
        delay = min(delay, max(first, until_start))
    return max(delay, 0.0)
