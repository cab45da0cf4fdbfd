"""Broadcast stages on data: prepared recipients -> the JSON ``to`` documents (spec §8), and the
broadcasts' final readings -> one results line per input row.

getBroadcast reports counts, not recipients, so a row's outcome is its broadcast's:

- every message of the broadcast went out (``sentMessages >= expectedMessages``): ``SENT``;
- it ended (ABORTED, deleted, or given up while FORCED_SUSPENDED) before sending any: ``FAILED``;
- it ended part-way: ``UNKNOWN`` (the provider does not say which recipients got one);
- its create call failed: ``FAILED``; the create call's fate is unknown: ``UNKNOWN``.

``provider_status`` holds the broadcast's status, ``chunk`` the broadcast's number in the job
(1, 2, ...; a list over the cap is split), ``message_id`` stays empty (the provider gives none).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from jobs.broadcast_payloads import CREATE_UNKNOWN, DELETED, NOT_CREATED, Part
from jobs.chunks import FAILED, SENT, UNKNOWN, assign_chunks
from jobs.recipients import READY
from ogangi.models import JsonRecipient

_TEXT = "string[pyarrow]"


def json_recipients(frame: pd.DataFrame) -> list[JsonRecipient]:
    """One entry per READY row, text already rendered (the call has no broadcast-level text)."""
    ready = frame[frame["state"] == READY]
    return [
        JsonRecipient(mobile=str(mobile), text=str(text))
        for mobile, text in zip(ready["msisdn"], ready["text"], strict=True)
    ]


def split_parts(frame: pd.DataFrame, cap: int) -> pd.DataFrame:
    """Number READY rows into broadcasts of at most ``cap`` recipients (column ``chunk``)."""
    return assign_chunks(frame, cap)


def row_outcome(part: Part) -> tuple[str, str | None, str | None]:
    """(state, reason, provider_status) of every row of ``part`` (rules in the module doc)."""
    name = f"broadcast {part.id}" if part.id is not None else f"broadcast {part.index}"
    if part.status == NOT_CREATED:
        return FAILED, f"not created: {part.error or 'the create call failed'}", None
    if part.status == CREATE_UNKNOWN:
        return UNKNOWN, part.error or "the create call's outcome is unknown", None
    status = part.status
    if part.expected and part.sent >= part.expected:
        return SENT, None, status
    how = {
        DELETED: "was deleted",
        "ABORTED": "was stopped (ABORTED)",
        "FORCED_SUSPENDED": "was suspended by the provider (FORCED_SUSPENDED) and not resumed",
        "DONE": "ended DONE",
    }.get(status, f"ended {status}")
    if part.sent <= 0:
        return FAILED, f"{name} {how} before sending any message", status
    reason = (
        f"{name} {how} after {part.sent} of {part.expected} messages: "
        "the provider does not say which recipients got one"
    )
    return UNKNOWN, reason, status


def broadcast_results(prepared: pd.DataFrame, parts: Sequence[Part]) -> pd.DataFrame:
    """Final results: READY rows take their broadcast's outcome; other rows keep their verdict.

    ``prepared`` has the columns row, input, msisdn, state, reason, segments, chunk.
    """
    out = prepared.copy()
    for column in ("state", "reason"):
        out[column] = out[column].astype(_TEXT)
    out["message_id"] = pd.array([None] * len(out), dtype=_TEXT)
    out["provider_status"] = pd.array([None] * len(out), dtype=_TEXT)
    ready = (out["state"] == READY).to_numpy()
    if not ready.any():
        return out
    by_index = {part.index: row_outcome(part) for part in parts}
    missing = (UNKNOWN, "no outcome was recorded for this broadcast", None)
    chunk = out.loc[ready, "chunk"].astype("Int64")
    verdicts = [by_index.get(int(c), missing) for c in chunk.to_numpy()]
    out.loc[ready, "state"] = [v[0] for v in verdicts]
    out.loc[ready, "reason"] = [v[1] for v in verdicts]
    out.loc[ready, "provider_status"] = [v[2] for v in verdicts]
    return out


def job_verdict(parts: Sequence[Part]) -> tuple[str, str, str | None]:
    """(state, outcome, error) of a job whose broadcasts are all final.

    ``done`` only when every broadcast sent every message; otherwise ``failed``, ``outcome``
    is the first broadcast's trouble (ABORTED, DELETED, FORCED_SUSPENDED, NOT_CREATED...).
    """
    for part in sorted(parts, key=lambda p: p.index):
        state, reason, _ = row_outcome(part)
        if state != SENT:
            return "failed", part.status, (part.error if part.gave_up else None) or reason
    return "done", "DONE", None
