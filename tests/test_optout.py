"""The opt-out list: numbers added once are never sent to by any later job."""

from __future__ import annotations

import os
from pathlib import Path

from arq.connections import ArqRedis

from jobs.enqueue import send_file
from jobs.results import read_results
from ogangi.sandbox import running_sandbox
from tests.pipeline import ledger_numbers, run_worker_until_idle, settings_for, wait_for_job
from tests.test_cli import smspipe
from worker.app import open_pool
from worker.storage import Bucket

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


async def test_opted_out_numbers_are_suppressed_in_every_later_send(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """`optout add` normalizes like the lists do; the next send marks that row SUPPRESSED."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OGANGI_", "SMSPIPE_"))}
    env.update(REDIS_URL=redis_url, SMSPIPE_HOME=str(tmp_path / ".smspipe"))
    added = await smspipe("optout", "add", "(305) 555-0102", "12", env=env, cwd=tmp_path)
    assert added.code == 1  # "12" is refused, the valid number is kept
    assert "added 1" in added.stdout and "not phone numbers, not added: 12" in added.stderr
    listed = await smspipe("optout", "list", env=env, cwd=tmp_path)
    assert listed.stdout.split() == ["13055550102"]

    async with running_sandbox() as sandbox:
        settings = settings_for(sandbox, tmp_path / "bucket")
        pool: ArqRedis = await open_pool(redis_url)
        bucket = Bucket.from_setting(str(tmp_path / "bucket"))
        job_id = await send_file(pool, EXAMPLES / "messy.xlsx", "Hi {0}", bucket=bucket)
        await run_worker_until_idle(settings, redis_url)
        status = await wait_for_job(pool, job_id, timeout=5)
        await pool.aclose()
        sent = ledger_numbers(sandbox)

    results = read_results(status["results"])
    suppressed = results[results["state"] == "SUPPRESSED"]
    assert suppressed["msisdn"].tolist() == ["13055550102"]
    assert status["counts"]["suppressed"] == 1 and "13055550102" not in sent
