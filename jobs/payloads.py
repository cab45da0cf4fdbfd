"""What travels through the queue: small JSON documents, never pickles, never secrets.

A job payload names a file in the bucket and the options; the worker reads keys and secrets from
its own environment. Ids are derived from content, so enqueueing the same file with the same
options twice is one job, not two campaigns.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field

#: What ``job_status`` reports, in order; the last two are final.
JOB_STATES = ("queued", "preparing", "sending", "done", "failed")
FINAL_JOB_STATES = ("done", "failed")


class SendOptions(BaseModel):
    """Everything that changes what a send job does: part of its identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1)
    sender: str | None = None
    region: str | None = None
    phone_column: str | None = None
    chunk_size: int | None = Field(default=None, ge=1, le=100_000)
    resend_unknown: bool = False


class SendJob(BaseModel):
    """The payload of ``prepare_send``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str
    name: str
    source: str  # bucket key of the recipient file
    options: SendOptions


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def send_job_id(digest: str, options: SendOptions) -> str:
    """Same file bytes + same options = same id (the file's name does not matter)."""
    canonical = json.dumps(options.model_dump(), sort_keys=True, separators=(",", ":"))
    return "s" + hashlib.sha256(f"{digest}\n{canonical}".encode()).hexdigest()[:20]


def chunk_job_id(job_id: str, chunk: int) -> str:
    return f"{job_id}:chunk:{chunk}"


def finalize_job_id(job_id: str) -> str:
    return f"{job_id}:finalize"
