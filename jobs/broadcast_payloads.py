"""What a broadcast job carries through the queue and keeps in its summary: JSON, never secrets.

``BroadcastJob`` is the payload of ``create_broadcast``; its id comes from the file's content and
the options, so the same request twice is one job (and one set of broadcasts), as for sends.
``Part`` is what the job knows about one of its broadcasts (one per ``cap`` recipients).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobs.broadcast_schedule import BroadcastInputError

#: Statuses of ours, beside the provider's (spec §9.4).
DELETED = "DELETED"  # the provider no longer knows the broadcast (deleted)
NOT_CREATED = "NOT_CREATED"  # the create call failed (or was never made): nothing was sent
CREATE_UNKNOWN = "CREATE_UNKNOWN"  # the create call's fate is unknown: it may exist
PENDING = "PENDING"  # created, not read yet
#: Statuses after which a broadcast changes no more.
FINAL_STATUSES = frozenset({"DONE", "ABORTED", DELETED, NOT_CREATED, CREATE_UNKNOWN})
#: Longest campaign name accepted (the vendor's limit for list names; §7.2).
MAX_CAMPAIGN = 200


class BroadcastOptions(BaseModel):
    """Everything that changes what a broadcast job does: part of its identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1)
    campaign: str = Field(min_length=1, max_length=MAX_CAMPAIGN)
    #: UTC instant (ISO 8601) the broadcast starts at; None starts it at once.
    start: str | None = None
    sender: str | None = None
    region: str | None = None
    phone_column: str | None = None
    #: Recipients per broadcast; None takes ``SMSPIPE_BROADCAST_CAP``.
    cap: int | None = Field(default=None, ge=1)


class BroadcastJob(BaseModel):
    """The payload of ``create_broadcast``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str
    name: str
    source: str  # bucket key of the recipient file
    options: BroadcastOptions


def broadcast_job_id(digest: str, options: BroadcastOptions) -> str:
    """Same file bytes + same options = same id ("b" tells it from a send job's "s")."""
    canonical = json.dumps(options.model_dump(), sort_keys=True, separators=(",", ":"))
    return "b" + hashlib.sha256(f"{digest}\n{canonical}".encode()).hexdigest()[:20]


def track_job_id(job_id: str, seq: int) -> str:
    """Each tracker run enqueues the next under a new, deterministic id (a re-run dedupes)."""
    return f"{job_id}:track:{seq}"


def check_campaign(name: str) -> str:
    """The campaign travels as a path segment: not empty, no '/', not the word 'null'."""
    value = name.strip()
    if not value:
        raise BroadcastInputError("the campaign name is empty")
    if "/" in value:
        raise BroadcastInputError(f"campaign {value!r} contains '/', which the API cannot carry")
    if value.lower() == "null":
        raise BroadcastInputError("'null' cannot be a campaign name (the API reads it as none)")
    if len(value) > MAX_CAMPAIGN:
        raise BroadcastInputError(f"the campaign name is longer than {MAX_CAMPAIGN} characters")
    return value


def default_campaign(file_name: str) -> str:
    """A campaign named after the file (``spring-sale.xlsx`` -> ``spring-sale``)."""
    stem = Path(file_name).stem.strip().replace("/", "-")
    return stem if stem and stem.lower() != "null" else "broadcast"


@dataclass
class Part:
    """One broadcast of a job, as last read (``status`` is the provider's or one of ours)."""

    index: int
    id: int | None = None
    status: str = PENDING
    expected: int = 0
    sent: int = 0
    start: str | None = None
    end: str | None = None
    error: str | None = None
    #: Consecutive ERROR answers to getBroadcast (three mean it was deleted).
    errors: int = 0
    #: When (epoch seconds) it was first seen FORCED_SUSPENDED in the current stretch.
    forced_since: float | None = None
    #: The job stopped waiting for it (FORCED_SUSPENDED past the deadline).
    gave_up: bool = False

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES or self.gave_up

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Part:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})

    def public(self) -> dict[str, Any]:
        """What ``status --json`` shows of it."""
        return {
            "index": self.index,
            "id": self.id,
            "status": self.status,
            "expected": self.expected,
            "sent": self.sent,
            "start": self.start,
            "end": self.end,
            "error": self.error,
        }


def parts_from_text(raw: str | None) -> list[Part]:
    if not raw:
        return []
    return [Part.from_json(doc) for doc in json.loads(raw)]


def parts_to_text(parts: list[Part]) -> str:
    return json.dumps([p.to_json() for p in sorted(parts, key=lambda p: p.index)])
