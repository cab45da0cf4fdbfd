"""The producer API's queue side: ids, and sends held until their start time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from jobs.enqueue import enqueue_send, job_status
from jobs.payloads import SendJob, SendOptions
from worker import keys
from worker.app import QUEUE, open_pool
from worker.manifest import Manifest


async def test_a_send_with_a_start_time_waits_in_the_queue_until_then(
    redis_url: str, redis: object
) -> None:
    """`at` an hour away: the job is queued, its summary says when, arq holds it till then."""
    pool = await open_pool(redis_url)
    start = datetime.now(UTC) + timedelta(hours=1)
    job = SendJob(
        job_id="s-later", name="list.csv", source="uploads/x", options=SendOptions(text="Hi")
    )
    await enqueue_send(pool, job, at=start)
    status = await job_status(pool, "s-later")
    score = await pool.zscore(QUEUE, "s-later")
    raw = await pool.hget(keys.job_summary("s-later"), "starts_at")
    await pool.aclose()
    assert status is not None and status["state"] == "queued"
    assert raw is not None and datetime.fromisoformat(raw.decode()) == start
    assert score is not None and score / 1000 > time.time() + 3500


def test_a_manifest_time_without_a_zone_is_read_in_the_configured_one() -> None:
    """ "at": "2030-01-01 09:00" with SMSPIPE_TIMEZONE America/New_York is 14:00 UTC."""
    manifest = Manifest.model_validate({"text": "Hi", "at": "2030-01-01 09:00"})
    start = manifest.starts_at("America/New_York")
    assert start is not None and start.astimezone(UTC) == datetime(2030, 1, 1, 14, 0, tzinfo=UTC)
