"""Broadcast jobs end to end: a real redis-server, the sandbox over HTTP, files on disk.

Each test creates broadcasts through the producer API (``jobs.enqueue``), lets arq workers run
``create_broadcast`` and ``track_broadcast``, and checks what a user sees: the job's status,
its history, its results file, and the broadcasts the provider (the sandbox) holds.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from arq.connections import ArqRedis

from jobs.broadcast_api import enqueue_broadcast
from jobs.broadcast_payloads import BroadcastJob, BroadcastOptions
from jobs.broadcast_schedule import BroadcastInputError
from jobs.enqueue import (
    ActionRefused,
    broadcast_action,
    broadcast_history,
    create_broadcast,
    job_status,
)
from jobs.results import read_results
from ogangi.sandbox import SandboxConfig, running_sandbox
from tests.broadcast_helpers import (
    MESSY,
    MESSY_READY,
    Clock,
    broadcasts,
    fast_settings,
    job_broadcast_id,
    until,
    worker_running,
)
from tests.pipeline import run_worker_until_idle, wait_for_job
from worker.app import open_pool
from worker.settings import Settings
from worker.storage import Bucket


async def test_a_messy_spreadsheet_becomes_a_broadcast_that_reaches_done(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """messy.xlsx: one broadcast of its 11 valid rows reaches DONE; every input row is reported."""
    async with running_sandbox() as sandbox:
        settings = fast_settings(sandbox, tmp_path)
        pool: ArqRedis = await open_pool(redis_url)
        job_id = await create_broadcast(pool, MESSY, "Hi {0}", settings=settings)
        await run_worker_until_idle(settings, redis_url)
        status = await job_status(pool, job_id)
        history = await broadcast_history(pool, job_id)
        await pool.aclose()
        [made] = broadcasts(sandbox)
        delivered = sandbox.ledger.entries(source="broadcast")

    assert status is not None and status["state"] == "done", status
    assert made.status.value == "DONE" and made.sent == made.expected == MESSY_READY
    assert (made.spec.campaign, made.spec.owner, made.spec.sender) == ("messy", "sandbox", "55500")
    assert status["outcome"] == "DONE" and status["error"] is None
    assert [(b["id"], b["status"], b["sent"]) for b in status["broadcasts"]] == [
        (made.id, "DONE", MESSY_READY)
    ]
    assert status["counts"] == {
        "sent": 11, "rejected": 4, "duplicate": 1, "suppressed": 0, "failed": 0, "unknown": 0,
    }  # fmt: skip
    results = read_results(status["results"], restore=True)
    assert Path(status["results"]).name == f"messy.{job_id}.csv"
    assert list(results["row"]) == list(range(1, 17))
    sent = results[results["state"] == "SENT"]
    assert set(sent["msisdn"]) == {entry.to for entry in delivered}
    assert set(sent["provider_status"]) == {"DONE"} and set(sent["chunk"]) == {1}
    assert {entry.text for entry in delivered} >= {"Hi Ana", "Hi Zoë 😀"}  # rendered per row
    events = [e["event"] for e in history]
    assert events[0] == "created" and events[-1] == "finished" and "reading" in events


async def test_a_broadcast_suspended_midway_and_resumed_finishes(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """Suspended after a few messages it sends no more; resumed (by job id) it reaches DONE."""
    async with running_sandbox(SandboxConfig(broadcast_rate=10)) as sandbox:
        settings = fast_settings(sandbox, tmp_path)
        pool: ArqRedis = await open_pool(redis_url)
        job_id = await create_broadcast(pool, MESSY, "Hi {0}", settings=settings)
        async with worker_running(settings, redis_url):
            broadcast_id = await job_broadcast_id(pool, job_id)
            await until(lambda: broadcasts(sandbox)[0].sent >= 3, what="3 messages sent")
            [suspended] = await broadcast_action(pool, broadcast_id, "suspend", settings=settings)
            held = broadcasts(sandbox)[0].sent
            await asyncio.sleep(0.5)
            still = broadcasts(sandbox)[0].sent
            paused = await job_status(pool, job_id)
            [resumed] = await broadcast_action(pool, job_id, "resume", settings=settings)
            status = await wait_for_job(pool, job_id, timeout=10)
        history = await broadcast_history(pool, job_id)
        await pool.aclose()
        [made] = broadcasts(sandbox)

    assert (suspended.status, suspended.job) == ("SUSPENDED", job_id)
    assert 3 <= held == still < MESSY_READY
    assert paused is not None and paused["broadcasts"][0]["status"] == "SUSPENDED"
    assert resumed.status == "SENDING"
    assert status["state"] == "done" and status["counts"]["sent"] == MESSY_READY, status
    assert made.status.value == "DONE" and made.sent == MESSY_READY
    actions = [(e["action"], e["ok"]) for e in history if e["event"] == "action"]
    assert actions == [("suspend", True), ("resume", True)]
    readings = [e["status"] for e in history if e["event"] == "reading"]
    assert "SUSPENDED" in readings and readings[-1] == "DONE"


async def test_a_stopped_broadcast_ends_aborted_and_so_does_its_job(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """Stopped midway: ABORTED at the provider, the job fails with that outcome, rows UNKNOWN."""
    async with running_sandbox(SandboxConfig(broadcast_rate=10)) as sandbox:
        settings = fast_settings(sandbox, tmp_path)
        pool: ArqRedis = await open_pool(redis_url)
        job_id = await create_broadcast(pool, MESSY, "Hi {0}", settings=settings)
        async with worker_running(settings, redis_url):
            broadcast_id = await job_broadcast_id(pool, job_id)
            await until(lambda: broadcasts(sandbox)[0].sent >= 2, what="2 messages sent")
            [stopped] = await broadcast_action(pool, broadcast_id, "stop", settings=settings)
            status = await wait_for_job(pool, job_id, timeout=10)
        await pool.aclose()
        [made] = broadcasts(sandbox)

    assert stopped.status == "ABORTED" and made.status.value == "ABORTED"
    assert status["state"] == "failed" and status["outcome"] == "ABORTED", status
    assert f"stopped (ABORTED) after {made.sent} of 11 messages" in status["error"]
    assert status["broadcasts"][0]["status"] == "ABORTED"
    results = read_results(status["results"])
    ready = results[results["chunk"].notna()]
    assert set(ready["state"]) == {"UNKNOWN"} and set(ready["provider_status"]) == {"ABORTED"}
    assert status["counts"]["unknown"] == MESSY_READY


async def test_a_scheduled_broadcast_stays_scheduled_until_its_time(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """--at in two hours (Caracas time): SCHEDULED, nothing sent; when the time comes, DONE."""
    clock = Clock()
    async with running_sandbox(clock=clock) as sandbox:
        settings = fast_settings(sandbox, tmp_path)
        caracas = ZoneInfo("America/Caracas")
        at = (datetime.now(caracas) + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M")
        pool: ArqRedis = await open_pool(redis_url)
        job_id = await create_broadcast(
            pool, MESSY, "Hi {0}", at=at, tz="America/Caracas", settings=settings
        )
        async with worker_running(settings, redis_url):
            await job_broadcast_id(pool, job_id)

            async def three_readings() -> bool:
                history = await broadcast_history(pool, job_id)
                return sum(e["event"] == "reading" for e in history) >= 3

            await until(three_readings, what="three readings")
            waiting = await job_status(pool, job_id)
            [item] = broadcasts(sandbox)
            scheduled, sent_before = item.status.value, len(sandbox.ledger)
            clock.now = item.start_at + 1  # its time comes
            status = await wait_for_job(pool, job_id, timeout=10)
        await pool.aclose()

    wanted = datetime.strptime(at, "%Y-%m-%d %H:%M").replace(tzinfo=caracas)
    assert item.start_at == wanted.timestamp()  # sent as the provider's UTC wall-clock time
    assert scheduled == "SCHEDULED" and sent_before == 0
    assert waiting is not None and waiting["state"] == "sending"
    assert waiting["broadcasts"][0]["status"] == "SCHEDULED"
    assert waiting["start"] == wanted.astimezone(ZoneInfo("UTC")).isoformat()
    assert status["state"] == "done" and status["counts"]["sent"] == MESSY_READY, status


async def test_a_start_time_in_the_past_is_refused_before_anything_is_queued(
    tmp_path: Path, redis: object, redis_url: str
) -> None:
    """--at in the past: a clear error from the producer API, and no job at all."""
    pool: ArqRedis = await open_pool(redis_url)
    settings = Settings(smspipe_bucket=str(tmp_path / "bucket"))
    with pytest.raises(BroadcastInputError, match="is in the past"):
        await create_broadcast(pool, MESSY, "Hi {0}", at="2020-01-01 09:00", settings=settings)
    keys = await pool.keys("smspipe:*")
    await pool.aclose()
    assert keys == []


async def test_a_job_whose_start_time_passed_in_the_queue_creates_nothing(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """A start time that passed while the job waited: refused before the provider call."""
    async with running_sandbox() as sandbox:
        settings = fast_settings(sandbox, tmp_path)
        bucket = Bucket.from_setting(settings.smspipe_bucket)
        await bucket.put("uploads/late/messy.xlsx", MESSY.read_bytes())
        options = BroadcastOptions(text="Hi {0}", campaign="late", start="2020-01-01T09:00:00+00:00")
        job = BroadcastJob(job_id="blate", name="messy.xlsx", source="uploads/late/messy.xlsx",
                           options=options)  # fmt: skip
        pool: ArqRedis = await open_pool(redis_url)
        await enqueue_broadcast(pool, job)
        await run_worker_until_idle(settings, redis_url)
        status = await job_status(pool, "blate")
        await pool.aclose()
        made = broadcasts(sandbox)

    assert made == []
    assert status is not None and status["state"] == "failed"
    assert "2020-01-01 09:00 UTC is in the past" in status["error"]
    results = read_results(status["results"])
    assert results["state"].value_counts().to_dict() == {"FAILED": 11, "REJECTED": 4, "DUPLICATE": 1}


async def test_a_list_over_the_cap_is_split_into_broadcasts_of_one_campaign(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """Cap 4, 11 valid rows: three broadcasts (4, 4, 3) under one campaign, and the job says so."""
    async with running_sandbox() as sandbox:
        settings = fast_settings(sandbox, tmp_path, smspipe_broadcast_cap=4)
        pool: ArqRedis = await open_pool(redis_url)
        job_id = await create_broadcast(pool, MESSY, "Hi {0}", campaign="spring", settings=settings)
        await run_worker_until_idle(settings, redis_url)
        status = await job_status(pool, job_id)
        await pool.aclose()
        made = broadcasts(sandbox)

    assert status is not None and status["state"] == "done", status
    assert [(b.spec.campaign, b.expected, b.status.value) for b in made] == [
        ("spring", 4, "DONE"), ("spring", 4, "DONE"), ("spring", 3, "DONE"),
    ]  # fmt: skip
    assert [b["id"] for b in status["broadcasts"]] == [b.id for b in made]
    assert "split into 3 broadcasts under campaign 'spring'" in status["note"]
    assert status["chunks"] == {"total": 3, "done": 3}
    results = read_results(status["results"])
    assert Path(status["results"]).name == f"spring.{job_id}.csv"
    assert results["chunk"].value_counts().to_dict() == {1: 4, 2: 4, 3: 3}
    assert status["counts"]["sent"] == MESSY_READY


async def test_a_broadcast_the_provider_suspends_is_reported_and_given_up_after_the_deadline(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """FORCED_SUSPENDED after 4 messages: a warning while waiting, the job fails at the deadline."""
    config = SandboxConfig(force_suspend_after=4, broadcast_rate=100)
    async with running_sandbox(config) as sandbox:
        settings = fast_settings(sandbox, tmp_path, smspipe_broadcast_forced_deadline=0.5)
        pool: ArqRedis = await open_pool(redis_url)
        job_id = await create_broadcast(pool, MESSY, "Hi {0}", settings=settings)
        async with worker_running(settings, redis_url):

            async def warned() -> dict[str, object] | None:
                status = await job_status(pool, job_id)
                return status if status and status.get("warning") else None

            waiting = await until(warned, what="a warning")
            status = await wait_for_job(pool, job_id, timeout=10)
        await pool.aclose()
        [made] = broadcasts(sandbox)

    assert made.status.value == "FORCED_SUSPENDED" and made.sent == 4
    assert waiting["state"] == "sending"
    assert "suspended by the provider (FORCED_SUSPENDED) after 4 of 11" in waiting["warning"]
    assert status["state"] == "failed" and status["outcome"] == "FORCED_SUSPENDED", status
    assert "stayed FORCED_SUSPENDED" in status["error"]
    assert status["counts"]["unknown"] == MESSY_READY


async def test_a_deleted_broadcast_ends_its_job(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """Deleted midway: the action is recorded, the job ends failed with outcome DELETED."""
    async with running_sandbox(SandboxConfig(broadcast_rate=10)) as sandbox:
        settings = fast_settings(sandbox, tmp_path)
        pool: ArqRedis = await open_pool(redis_url)
        job_id = await create_broadcast(pool, MESSY, "Hi {0}", settings=settings)
        async with worker_running(settings, redis_url):
            broadcast_id = await job_broadcast_id(pool, job_id)
            await until(lambda: broadcasts(sandbox)[0].sent >= 2, what="2 messages sent")
            [deleted] = await broadcast_action(pool, broadcast_id, "delete", settings=settings)
            status = await wait_for_job(pool, job_id, timeout=10)
        history = await broadcast_history(pool, job_id)
        await pool.aclose()
        left = broadcasts(sandbox)

    assert deleted.status == "DELETED" and left == []
    assert status["state"] == "failed" and status["outcome"] == "DELETED", status
    assert "was deleted after" in status["error"]
    assert ("delete", True) in [(e["action"], e["ok"]) for e in history if e["event"] == "action"]


async def test_an_impossible_transition_is_refused_with_the_providers_answer(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """Resuming a DONE broadcast: the provider's reason, recorded in the job's history."""
    async with running_sandbox() as sandbox:
        settings = fast_settings(sandbox, tmp_path)
        pool: ArqRedis = await open_pool(redis_url)
        job_id = await create_broadcast(pool, MESSY, "Hi {0}", settings=settings)
        await run_worker_until_idle(settings, redis_url)
        broadcast_id = await job_broadcast_id(pool, job_id)
        with pytest.raises(ActionRefused) as refused:
            await broadcast_action(pool, broadcast_id, "resume", settings=settings)
        history = await broadcast_history(pool, job_id)
        await pool.aclose()

    assert str(refused.value) == (
        f"the provider refused to resume broadcast {broadcast_id}: "
        f"broadcast {broadcast_id} is DONE and cannot be resumed"
    )
    assert history[-1]["event"] == "action" and history[-1]["ok"] is False
    assert history[-1]["answer"] == f"broadcast {broadcast_id} is DONE and cannot be resumed"
