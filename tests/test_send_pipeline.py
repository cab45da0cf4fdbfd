"""The send pipeline end to end: real redis-server, the sandbox over HTTP, files on disk."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis

from jobs.enqueue import job_status, send_file
from jobs.results import read_results
from ogangi.sandbox import running_sandbox
from ogangi.sandbox.ledger import LedgerEntry
from tests.pipeline import (
    run_worker_until_idle,
    settings_for,
    us_numbers,
    write_csv,
)
from worker.app import open_pool
from worker.storage import Bucket


async def test_every_valid_number_gets_one_sms_and_every_row_is_reported(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    """25 valid numbers in 3 chunks plus bad rows: 25 SMS, and one results line per input row."""
    numbers = us_numbers(25)
    source = write_csv(tmp_path / "list.csv", numbers + ["12", "not a number", numbers[0]])
    status, entries = await send_with_one_worker(tmp_path, redis_url, source, chunk_size=10)

    assert status is not None and status["state"] == "done", status
    assert status["counts"] == {
        "sent": 25, "rejected": 2, "duplicate": 1, "suppressed": 0, "failed": 0, "unknown": 0,
    }  # fmt: skip
    assert sent_once_each(entries) == 25
    results = read_results(status["results"], restore=True)
    assert list(results["row"]) == list(range(1, 29))
    assert results["state"].value_counts().to_dict() == {"SENT": 25, "REJECTED": 2, "DUPLICATE": 1}
    assert results.loc[results["state"] == "SENT", "message_id"].notna().all()
    assert sorted(results["chunk"].dropna().unique()) == [1, 2, 3]


async def test_results_merged_in_slices_are_the_same_as_in_one_piece(
    tmp_path: Path, redis_url: str, redis: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """finalize merges slices that cut across chunks: every row still gets its own outcome."""
    import jobs.send

    monkeypatch.setattr(jobs.send, "FINALIZE_SLICE_ROWS", 7)
    numbers = us_numbers(30)
    rows = numbers[:12] + ["12", numbers[3]] + numbers[12:]  # a reject and a duplicate inside
    source = write_csv(tmp_path / "list.csv", rows)
    status, entries = await send_with_one_worker(tmp_path, redis_url, source, chunk_size=4)
    by_number = {entry.to: entry.id for entry in entries}

    assert status is not None and status["state"] == "done"
    assert status["counts"]["sent"] == 30 and status["counts"]["duplicate"] == 1
    results = read_results(status["results"])
    assert list(results["row"]) == list(range(1, 33))
    sent = results[results["state"] == "SENT"]
    assert dict(zip(sent["msisdn"], sent["message_id"], strict=True)) == by_number
    assert results.loc[12, "state"] == "REJECTED" and results.loc[13, "state"] == "DUPLICATE"


async def test_a_worker_cutting_a_big_list_sends_nothing_until_the_cut_is_done(
    tmp_path: Path, redis_url: str, redis: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker cutting a big list holds its own send slots (memory: the list or the replies,
    not both): alone, it uploads no chunk while slices are still being cut, then every one."""
    import jobs.send
    from ogangi.client import OgangiClient

    events: list[str] = []
    real_cut, real_upload = jobs.send.cut_slice, OgangiClient.send_sms_by_file_columns

    def cut(*args: Any) -> Any:
        events.append("cut")
        return real_cut(*args)

    async def upload(self: OgangiClient, *args: Any, **kwargs: Any) -> Any:
        events.append("upload")
        return await real_upload(self, *args, **kwargs)

    monkeypatch.setattr(jobs.send, "cut_slice", cut)
    monkeypatch.setattr(OgangiClient, "send_sms_by_file_columns", upload)
    monkeypatch.setattr("jobs.cutting.SLICE_ROWS", 6)  # six slices, chunks queued between them
    monkeypatch.setattr(jobs.send, "HOLD_SENDS_FROM", 1)
    source = write_csv(tmp_path / "list.csv", us_numbers(30))
    status, entries = await send_with_one_worker(tmp_path, redis_url, source, chunk_size=4)

    assert status is not None and status["state"] == "done", status
    assert status["counts"]["sent"] == 30
    assert sent_once_each(entries) == 30
    assert events == ["cut"] * 6 + ["upload"] * 8


async def test_an_unforeseen_error_while_preparing_is_met_by_running_it_again(
    tmp_path: Path, redis_url: str, redis: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As after a worker crash: prepare_send runs again, and every number still gets one SMS."""
    import jobs.send

    real_cut = jobs.send.cut_slice
    calls = []

    def cut_once_broken(*args: object) -> object:
        calls.append(1)
        if len(calls) == 3:  # chunk 1 is queued by now, and may be sent
            raise OSError("disk went away")
        return real_cut(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(jobs.send, "cut_slice", cut_once_broken)
    monkeypatch.setattr(jobs.send, "BACKOFF_BASE_SECONDS", 0.01)
    monkeypatch.setattr("jobs.cutting.SLICE_ROWS", 6)  # slices of rows 1-5, 6-11, 12-17, ...
    numbers = us_numbers(30)
    source = write_csv(tmp_path / "list.csv", numbers)
    status, entries = await send_with_one_worker(tmp_path, redis_url, source, chunk_size=4)

    assert status is not None and status["state"] == "done", status
    assert status["counts"]["sent"] == 30
    assert sent_once_each(entries) == 30
    assert len(calls) == 3 + 6  # two slices, the failing one, then all six slices again


async def test_an_unforeseen_error_after_a_chunk_was_sent_never_sends_it_twice(
    tmp_path: Path, redis_url: str, redis: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outcome of a sent chunk cannot be stored (say the bucket is away): the chunk runs
    again as after a crash, finds itself in flight and reports its rows UNKNOWN; the job ends."""
    import jobs.send

    real_record = jobs.send._record
    calls = []

    async def record_once_broken(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("bucket went away")
        await real_record(*args)

    monkeypatch.setattr(jobs.send, "_record", record_once_broken)
    monkeypatch.setattr(jobs.send, "BACKOFF_BASE_SECONDS", 0.01)
    source = write_csv(tmp_path / "list.csv", us_numbers(12))
    status, entries = await send_with_one_worker(tmp_path, redis_url, source, chunk_size=4)

    assert status is not None and status["state"] == "done", status
    assert status["counts"]["sent"] == 8 and status["counts"]["unknown"] == 4
    assert sent_once_each(entries) == 12  # the provider has all 12, once each
    results = read_results(status["results"])
    assert results["state"].value_counts().to_dict() == {"SENT": 8, "UNKNOWN": 4}


async def test_an_error_that_persists_fails_the_job_with_its_reason(
    tmp_path: Path, redis_url: str, redis: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After its last try the job is failed with the error, never left 'preparing'."""
    import jobs.send

    def broken(*args: object) -> object:
        raise OSError("disk went away")

    monkeypatch.setattr(jobs.send, "cut_slice", broken)
    monkeypatch.setattr(jobs.send, "BACKOFF_BASE_SECONDS", 0.01)
    source = write_csv(tmp_path / "list.csv", us_numbers(5))
    status, entries = await send_with_one_worker(tmp_path, redis_url, source, chunk_size=4)

    assert status is not None and status["state"] == "failed", status
    assert status["error"] == "preparing the list failed: OSError: disk went away"
    assert status["finished_at"] is not None
    assert not entries  # nothing reached the provider


async def send_with_one_worker(
    tmp_path: Path, redis_url: str, source: Path, *, chunk_size: int
) -> tuple[dict[str, Any] | None, list[LedgerEntry]]:
    """``send_file`` of ``source`` ("Hi {0}"), one burst worker until the queue is empty:
    the job's status and what reached the sandbox."""
    async with running_sandbox() as sandbox:
        settings = settings_for(sandbox, tmp_path / "bucket", smspipe_chunk_size=chunk_size)
        pool: ArqRedis = await open_pool(redis_url)
        try:
            bucket = Bucket.from_setting(settings.smspipe_bucket)
            job_id = await send_file(pool, source, "Hi {0}", bucket=bucket)
            await run_worker_until_idle(settings, redis_url)
            status = await job_status(pool, job_id)
        finally:
            await pool.aclose()
        return status, list(sandbox.ledger.entries())


def sent_once_each(entries: list[LedgerEntry]) -> int:
    """How many numbers reached the sandbox, none of them twice."""
    sent = Counter(entry.to for entry in entries)
    assert set(sent.values()) <= {1}, [n for n, times in sent.items() if times > 1]
    return len(sent)
