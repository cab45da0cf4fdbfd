"""The bucket watcher: files dropped into inbox/ become jobs, on a folder and on a real S3 server.

The S3 server is moto's, in server mode on 127.0.0.1 (real HTTP, real S3 protocol); obstore
finds it through the standard AWS_* variables, as it would find MinIO or AWS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis

from jobs.results import read_results
from ogangi.sandbox import running_sandbox
from tests.pipeline import ledger_numbers, run_worker_until_idle, settings_for, us_numbers
from worker import keys
from worker.app import open_pool
from worker.metrics import REGISTRY
from worker.storage import Bucket
from worker.watcher import WatchConfig, Watcher

S3_BUCKET = "smspipe-test"
FAST = WatchConfig(poll_seconds=0.05, manifest_wait_seconds=0.0)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, with one bucket; stopped after the module."""
    moto_server = pytest.importorskip("moto.server")
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    ).create_bucket(Bucket=S3_BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(params=["folder", "s3"])
def bucket_setting(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SMSPIPE_BUCKET: a folder, or a fresh prefix of the S3 server's bucket."""
    if request.param == "folder":
        return str(tmp_path / "bucket")
    endpoint = request.getfixturevalue("s3_endpoint")
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex}"


@pytest.fixture
async def pool(redis_url: str, redis: aioredis.Redis) -> AsyncIterator[ArqRedis]:
    arq_pool: ArqRedis = await open_pool(redis_url)
    yield arq_pool
    await arq_pool.aclose()


def csv_bytes(numbers: list[str]) -> bytes:
    return ("phone,name\n" + "".join(f"{n},Name{i}\n" for i, n in enumerate(numbers))).encode()


def manifest(**settings: object) -> bytes:
    return json.dumps({"text": "Hi {0}", **settings}).encode()


async def names(bucket: Bucket, prefix: str) -> list[str]:
    return sorted(str(item["path"]).removeprefix(prefix) for item in await bucket.list(prefix))


async def job_ids(redis: aioredis.Redis) -> list[str]:
    found = [k.decode() async for k in redis.scan_iter(match=keys.job_summary("*"))]
    return sorted(k.split(":")[2] for k in found)


@contextlib.asynccontextmanager
async def watchers(bucket: Bucket, pool: ArqRedis, count: int) -> AsyncIterator[None]:
    """``count`` watchers looking at the same bucket concurrently, stopped on exit."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(Watcher(bucket, pool, FAST).run(stop)) for _ in range(count)]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def until(predicate: object, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_a_dropped_file_becomes_exactly_one_job_even_with_two_watchers(
    bucket_setting: str, tmp_path: Path, redis_url: str, redis: aioredis.Redis, pool: ArqRedis
) -> None:
    """File + manifest in inbox/, two watchers: one job, one results file, input in done/."""
    numbers = us_numbers(12)
    taken_before = REGISTRY.get_sample_value("smspipe_watcher_files_total", {"outcome": "enqueued"})
    async with running_sandbox() as sandbox:
        settings = settings_for(
            sandbox, tmp_path / "bucket", smspipe_bucket=bucket_setting, smspipe_chunk_size=5
        )
        bucket = Bucket.from_setting(bucket_setting)
        async with watchers(bucket, pool, 2):
            await bucket.put("inbox/spring-sale.json", manifest(region="US"))
            await bucket.put("inbox/spring-sale.csv", csv_bytes(numbers))
            await until(lambda: _empty(bucket, "inbox/"))
            await run_worker_until_idle(settings, redis_url)
            await until(lambda: _nonempty(bucket, "done/"))
        sent = ledger_numbers(sandbox)

    (job_id,) = await job_ids(redis)
    taken = REGISTRY.get_sample_value("smspipe_watcher_files_total", {"outcome": "enqueued"})
    assert (taken or 0) - (taken_before or 0) == 1  # one watcher took it; the other never did
    assert await names(bucket, "results/") == [f"spring-sale.{job_id}.csv"]
    assert await names(bucket, "done/") == [
        f"spring-sale.{job_id}.csv",
        f"spring-sale.{job_id}.json",
    ]
    assert await names(bucket, "inbox/") == []
    assert len(sent) == 12 and set(sent.values()) == {1}
    summary = await redis.hgetall(keys.job_summary(job_id))
    assert summary[b"state"] == b"done"
    assert summary[b"input"].decode().endswith(f"done/spring-sale.{job_id}.csv")


async def _empty(bucket: Bucket, prefix: str) -> bool:
    return not await bucket.list(prefix)


async def _nonempty(bucket: Bucket, prefix: str) -> bool:
    return bool(await bucket.list(prefix))


async def test_the_results_file_has_one_line_per_row_of_the_dropped_file(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, pool: ArqRedis
) -> None:
    """A folder drop with a bad row: every input row is in the results, with its verdict."""
    async with running_sandbox() as sandbox:
        settings = settings_for(sandbox, tmp_path / "bucket")
        bucket = Bucket.from_setting(settings.smspipe_bucket)
        (tmp_path / "bucket" / "inbox" / "list.json").write_bytes(manifest())
        (tmp_path / "bucket" / "inbox" / "list.csv").write_bytes(csv_bytes(us_numbers(3) + ["12"]))
        watcher = Watcher(bucket, pool, FAST)
        await watcher.poll()
        (job_id,) = (await watcher.poll()).taken.values()
        await run_worker_until_idle(settings, redis_url)
        await watcher.poll()

    results = read_results(str(tmp_path / "bucket" / "results" / f"list.{job_id}.csv"))
    assert list(results["state"]) == ["SENT", "SENT", "SENT", "REJECTED"]
    assert not (tmp_path / "bucket" / "uploads" / job_id).exists()


async def test_a_file_without_settings_goes_to_failed_with_an_error_file(
    bucket_setting: str, redis: aioredis.Redis, pool: ArqRedis
) -> None:
    """No manifest and no SMSPIPE_DEFAULT_TEXT: failed/<name> and an error saying what is missing."""
    bucket = Bucket.from_setting(bucket_setting)
    await bucket.put("inbox/orphan.csv", csv_bytes(us_numbers(2)))
    watcher = Watcher(bucket, pool, FAST)
    await watcher.poll()
    report = await watcher.poll()

    assert list(report.rejected) == ["inbox/orphan.csv"]
    assert await names(bucket, "failed/") == ["orphan.csv", "orphan.csv.error.txt"]
    error = (await bucket.get("failed/orphan.csv.error.txt")).decode()
    assert "inbox/orphan.json" in error and "SMSPIPE_DEFAULT_TEXT" in error and '"text"' in error
    assert await names(bucket, "inbox/") == []
    assert await job_ids(redis) == []


async def test_a_manifest_with_an_unknown_key_is_refused_naming_the_key(
    tmp_path: Path, redis: aioredis.Redis, pool: ArqRedis
) -> None:
    """A typo in the manifest fails the file (with the manifest) instead of guessing."""
    bucket = Bucket.from_setting(str(tmp_path / "bucket"))
    await bucket.put("inbox/promo.json", json.dumps({"txt": "Hi", "chunk_size": 0}).encode())
    await bucket.put("inbox/promo.csv", csv_bytes(us_numbers(2)))
    watcher = Watcher(bucket, pool, FAST)
    await watcher.poll()
    await watcher.poll()

    assert await names(bucket, "failed/") == ["promo.csv", "promo.csv.error.txt", "promo.json"]
    error = (await bucket.get("failed/promo.csv.error.txt")).decode()
    assert "txt: unknown key" in error
    assert "chunk_size: Input should be greater than or equal to 1" in error
    assert await job_ids(redis) == []


async def test_a_file_still_being_written_is_not_taken(
    tmp_path: Path, redis: aioredis.Redis, pool: ArqRedis
) -> None:
    """A file that grows between two looks waits; once two looks agree it is taken."""
    bucket = Bucket.from_setting(str(tmp_path / "bucket"))
    inbox = tmp_path / "bucket" / "inbox"
    (inbox / "big.json").write_bytes(manifest())
    content = csv_bytes(us_numbers(50))
    watcher = Watcher(bucket, pool, FAST)
    with (inbox / "big.csv").open("wb") as half_written:
        for part in (content[:100], content[100:200], content[200:300]):
            half_written.write(part)
            half_written.flush()
            assert (await watcher.poll()).taken == {}
        half_written.write(content[300:])
    assert (await watcher.poll()).taken == {}  # the last write changed it once more
    report = await watcher.poll()

    (job_id,) = report.taken.values()
    assert await bucket.get(f"uploads/{job_id}/big.csv") == content
    assert await job_ids(redis) == [job_id]


async def test_partial_upload_names_are_never_taken(
    tmp_path: Path, redis: aioredis.Redis, pool: ArqRedis
) -> None:
    """``.name``, ``*.part`` and ``*.tmp`` are uploads in progress: left alone however long."""
    bucket = Bucket.from_setting(str(tmp_path / "bucket"))
    for name in (".list.csv", "list.csv.part", "list.csv.tmp"):
        await bucket.put(f"inbox/{name}", csv_bytes(us_numbers(2)))
    watcher = Watcher(bucket, pool, WatchConfig(poll_seconds=0.05, default_text="Hi"))
    for _ in range(3):
        report = await watcher.poll()
        assert report.taken == {} and report.rejected == {}
    assert await job_ids(redis) == []


async def test_a_manifest_arriving_after_its_file_is_used(
    tmp_path: Path, redis: aioredis.Redis, pool: ArqRedis
) -> None:
    """The data file waits for its manifest; the job carries the manifest's settings."""
    bucket = Bucket.from_setting(str(tmp_path / "bucket"))
    config = WatchConfig(poll_seconds=0.05, manifest_wait_seconds=30.0)
    watcher = Watcher(bucket, pool, config)
    await bucket.put("inbox/late.csv", csv_bytes(us_numbers(2)))
    for _ in range(3):
        assert (await watcher.poll()).taken == {}
    await bucket.put("inbox/late.json", manifest(chunk_size=1, **{"from": "55500"}))
    await watcher.poll()
    (job_id,) = (await watcher.poll()).taken.values()

    (queued,) = await pool.queued_jobs()
    assert queued.job_id == job_id
    assert queued.args[0]["options"]["chunk_size"] == 1
    assert queued.args[0]["options"]["sender"] == "55500"
    assert queued.args[0]["source"] == f"uploads/{job_id}/late.csv"


async def test_the_default_text_applies_when_no_manifest_comes(
    tmp_path: Path, redis: aioredis.Redis, pool: ArqRedis
) -> None:
    """With SMSPIPE_DEFAULT_TEXT a bare file is sent with it after the manifest wait."""
    bucket = Bucket.from_setting(str(tmp_path / "bucket"))
    config = WatchConfig(poll_seconds=0.05, manifest_wait_seconds=0.0, default_text="Hello {0}")
    watcher = Watcher(bucket, pool, config)
    await bucket.put("inbox/bare.csv", csv_bytes(us_numbers(2)))
    await watcher.poll()
    report = await watcher.poll()

    (queued,) = await pool.queued_jobs()
    assert list(report.taken.values()) == [queued.job_id]
    assert queued.args[0]["options"]["text"] == "Hello {0}"


async def test_a_failed_job_moves_its_input_to_failed_with_the_jobs_error(
    tmp_path: Path, redis_url: str, redis: aioredis.Redis, pool: ArqRedis
) -> None:
    """A file with no sendable row: the job fails and its input lands in failed/ with why."""
    async with running_sandbox() as sandbox:
        settings = settings_for(sandbox, tmp_path / "bucket")
        bucket = Bucket.from_setting(settings.smspipe_bucket)
        await bucket.put("inbox/junk.json", manifest())
        await bucket.put("inbox/junk.csv", b"phone,name\n12,A\nnope,B\n")
        watcher = Watcher(bucket, pool, FAST)
        await watcher.poll()
        (job_id,) = (await watcher.poll()).taken.values()
        await run_worker_until_idle(settings, redis_url)
        report = await watcher.poll()

    assert report.finished[job_id].endswith(f"failed/junk.{job_id}.csv")
    assert f"junk.{job_id}.csv.error.txt" in await names(bucket, "failed/")
    error = (await bucket.get(f"failed/junk.{job_id}.csv.error.txt")).decode()
    assert "no row can be sent" in error
    assert await names(bucket, "results/") == [f"junk.{job_id}.csv"]


async def test_the_same_file_dropped_twice_is_one_job(
    tmp_path: Path, redis: aioredis.Redis, pool: ArqRedis
) -> None:
    """Same bytes and settings under another name: the same job id, nothing new enqueued."""
    bucket = Bucket.from_setting(str(tmp_path / "bucket"))
    watcher = Watcher(bucket, pool, FAST)
    for name in ("a", "b"):
        await bucket.put(f"inbox/{name}.json", manifest())
        await bucket.put(f"inbox/{name}.csv", csv_bytes(us_numbers(3)))
    await watcher.poll()
    report = await watcher.poll()

    assert len(report.taken) == 2 and len(set(report.taken.values())) == 1
    assert len(await pool.queued_jobs()) == 1


async def test_a_broadcast_manifest_starts_a_broadcast_job(
    tmp_path: Path, redis: aioredis.Redis, pool: ArqRedis
) -> None:
    """``"kind": "broadcast"`` goes through the broadcast producer API, named by its campaign."""
    bucket = Bucket.from_setting(str(tmp_path / "bucket"))
    watcher = Watcher(bucket, pool, FAST)
    await bucket.put("inbox/vip.json", manifest(kind="broadcast", campaign="vip-night"))
    await bucket.put("inbox/vip.csv", csv_bytes(us_numbers(2)))
    await watcher.poll()
    (job_id,) = (await watcher.poll()).taken.values()

    (queued,) = await pool.queued_jobs()
    assert queued.function == "create_broadcast" and queued.job_id == job_id
    assert queued.args[0]["options"]["campaign"] == "vip-night"
    assert (await redis.hget(keys.job_summary(job_id), "kind")) == b"broadcast"
    assert await redis.hexists(keys.watcher_pending(), job_id)


async def test_a_broadcast_scheduled_in_the_past_goes_to_failed_saying_so(
    tmp_path: Path, redis: aioredis.Redis, pool: ArqRedis
) -> None:
    """A start time already gone is refused before anything is created."""
    bucket = Bucket.from_setting(str(tmp_path / "bucket"))
    watcher = Watcher(bucket, pool, FAST)
    await bucket.put("inbox/old.json", manifest(kind="broadcast", at="2020-01-01 09:00"))
    await bucket.put("inbox/old.csv", csv_bytes(us_numbers(2)))
    await watcher.poll()
    report = await watcher.poll()

    assert list(report.rejected) == ["inbox/old.csv"]
    error = (await bucket.get("failed/old.csv.error.txt")).decode()
    assert "past" in error
    assert await job_ids(redis) == []
