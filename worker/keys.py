"""Every Redis key smspipe writes (arq's own ``arq:*`` keys aside), so they can be found in one place.

All start with ``smspipe:`` so ``SCAN smspipe:*`` shows our state and nothing else's. Add new keys
here rather than formatting names where they are used.
"""

from __future__ import annotations

PREFIX = "smspipe:"


def ratelimit(account: str) -> str:
    """Hash: the shared GCRA schedule of one provider account (requests, messages, penalty)."""
    return f"{PREFIX}ratelimit:{account}"


def ledger(job_id: str) -> str:
    """Hash: chunk id -> ``state[:attempt:ms]``, the exactly-once record of a job's chunks."""
    return f"{PREFIX}ledger:{job_id}"


def ledger_counts(job_id: str) -> str:
    """Hash: state -> number of chunks in it (plus ``total``), kept in step with the ledger."""
    return f"{PREFIX}ledger:{job_id}:counts"


def finalize_guard(job_id: str) -> str:
    """String set once (SET NX) by whoever enqueues the job's finalize."""
    return f"{PREFIX}job:{job_id}:finalize"


def job_summary(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}:summary"


def suppression() -> str:
    """Set of E.164 numbers never to send to."""
    return f"{PREFIX}suppression"


def watcher_claim(name: str) -> str:
    """Claim on one bucket object so that only one watcher enqueues it."""
    return f"{PREFIX}watcher:claim:{name}"


def watcher_pending() -> str:
    """Hash: job id -> where its inbox file waits (uploads/) until the job is final."""
    return f"{PREFIX}watcher:pending"


def watcher_finish(job_id: str) -> str:
    """String set once (SET NX, short TTL) by the watcher moving a final job's input away."""
    return f"{PREFIX}watcher:finish:{job_id}"


def broadcast_parts(job_id: str) -> str:
    """Hash: part number -> id of the broadcast the provider created for it (broadcast jobs)."""
    return f"{PREFIX}job:{job_id}:broadcasts"


def broadcast_history(job_id: str) -> str:
    """List of JSON events (getBroadcast readings, actions), oldest first, bounded."""
    return f"{PREFIX}job:{job_id}:history"


def broadcast_owner(account: str, broadcast_id: int | str) -> str:
    """String: the job that created this broadcast on this provider account."""
    return f"{PREFIX}broadcast:{account}:{broadcast_id}:job"
