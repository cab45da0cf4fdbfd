"""Broadcast stages on data: prepared recipients -> the JSON ``to`` document (spec §8)."""

from __future__ import annotations

import pandas as pd

from jobs.recipients import READY
from ogangi.models import JsonRecipient


def json_recipients(frame: pd.DataFrame) -> list[JsonRecipient]:
    """One entry per READY row, text already rendered (the call has no broadcast-level text)."""
    ready = frame[frame["state"] == READY]
    return [
        JsonRecipient(mobile=str(mobile), text=str(text))
        for mobile, text in zip(ready["msisdn"], ready["text"], strict=True)
    ]
