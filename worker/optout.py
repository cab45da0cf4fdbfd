"""The account's opt-out list: numbers no send or broadcast ever goes to (a Redis set of
E.164 digits, read by every job when it prepares its rows)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from redis.asyncio import Redis

from jobs import phones
from jobs.recipients import read_suppression
from worker import keys


def normalize_numbers(numbers: list[str], region: str) -> tuple[list[str], list[str]]:
    """(E.164 digits of the valid ones, the ones that are not a phone number)."""
    found = phones.normalize(pd.Series(numbers, dtype="string[pyarrow]"), region)
    valid = found["msisdn"].dropna().astype(str).tolist()
    invalid = [raw for raw, m in zip(numbers, found["msisdn"], strict=True) if pd.isna(m)]
    return valid, invalid


async def add(redis: Redis, numbers: list[str], region: str, file: Path | None = None) -> dict:
    valid, invalid = normalize_numbers(numbers, region) if numbers else ([], [])
    if file is not None:
        valid += sorted(read_suppression(file, region=region))
    added = await redis.sadd(keys.suppression(), *valid) if valid else 0  # type: ignore[misc]
    return {"added": int(added), "already": len(set(valid)) - int(added), "invalid": invalid}


async def remove(redis: Redis, numbers: list[str], region: str) -> dict:
    valid, invalid = normalize_numbers(numbers, region)
    removed = await redis.srem(keys.suppression(), *valid) if valid else 0  # type: ignore[misc]
    return {"removed": int(removed), "invalid": invalid}


async def members(redis: Redis) -> list[str]:
    found = await redis.smembers(keys.suppression())  # type: ignore[misc]
    return sorted(m.decode() for m in found)
