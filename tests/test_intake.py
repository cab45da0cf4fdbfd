"""The HTTP intake over real HTTP on 127.0.0.1: token, limits, a send from upload to results."""

from __future__ import annotations

import contextlib
import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis

from jobs.enqueue import job_status
from ogangi.sandbox import running_sandbox
from tests.pipeline import run_worker_until_idle, settings_for, us_numbers
from worker import keys
from worker.app import open_pool
from worker.intake import api_token, running_intake
from worker.settings import ConfigError, Settings

TOKEN = "intake-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def csv_bytes(numbers: list[str]) -> bytes:
    return ("phone,name\n" + "".join(f"{n},Name{i}\n" for i, n in enumerate(numbers))).encode()


def form(data: bytes, filename: str = "list.csv", **fields: str) -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field("file", data, filename=filename, content_type="text/csv")
    for name, value in {"text": "Hi {0}", **fields}.items():
        body.add_field(name, value)
    return body


@contextlib.asynccontextmanager
async def intake(
    settings: Settings, redis_url: str
) -> AsyncIterator[tuple[str, aiohttp.ClientSession, ArqRedis]]:
    pool: ArqRedis = await open_pool(redis_url)
    try:
        async with (
            running_intake(settings, pool, host="127.0.0.1", port=0) as url,
            aiohttp.ClientSession(url) as http,
        ):
            yield url, http, pool
    finally:
        await pool.aclose()


@pytest.fixture
def settings(tmp_path: Path, clean_env: Path) -> Settings:
    return Settings(
        smspipe_bucket=str(tmp_path / "bucket"),
        smspipe_home=tmp_path / ".smspipe",
        smspipe_api_token=TOKEN,
        smspipe_max_upload_mb=0.05,
    )


async def nothing_started(redis: aioredis.Redis, tmp_path: Path) -> bool:
    jobs = [k async for k in redis.scan_iter(match=keys.job_summary("*"))]
    uploads = list((tmp_path / "bucket" / "uploads").iterdir())
    return not jobs and not uploads and not await redis.exists("smspipe:queue")


async def test_a_request_without_a_token_gets_401_and_starts_nothing(
    settings: Settings, tmp_path: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    """No Authorization header: 401 with a Bearer challenge, and no job, upload or queue entry."""
    async with intake(settings, redis_url) as (_, http, _pool):
        response = await http.post("/v1/sends", data=form(csv_bytes(us_numbers(2))))
        body = await response.json()

    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="smspipe"'
    assert body == {"error": "missing bearer token (Authorization: Bearer ...)"}
    assert await nothing_started(redis, tmp_path)


async def test_a_wrong_token_gets_401_and_starts_nothing(
    settings: Settings, tmp_path: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    """A wrong bearer token is refused like a missing one, and says the token was wrong."""
    async with intake(settings, redis_url) as (_, http, _pool):
        response = await http.post(
            "/v1/sends",
            data=form(csv_bytes(us_numbers(2))),
            headers={"Authorization": f"Bearer {TOKEN}x"},
        )
        body = await response.json()
        status_response = await http.get("/v1/jobs/anything", headers={"Authorization": "Basic x"})

    assert response.status == 401 and body == {"error": "wrong bearer token"}
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert status_response.status == 401
    assert await nothing_started(redis, tmp_path)


async def test_an_oversized_upload_gets_413_and_starts_nothing(
    settings: Settings, tmp_path: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    """A body over SMSPIPE_MAX_UPLOAD_MB (0.05 MB here) is refused from its Content-Length."""
    big = csv_bytes(us_numbers(4000))
    assert len(big) > 0.05 * 1024 * 1024
    async with intake(settings, redis_url) as (_, http, _pool):
        response = await http.post("/v1/sends", data=form(big), headers=AUTH)
        body = await response.json()

    assert response.status == 413
    assert "larger than 0.05 MB" in body["error"]
    assert await nothing_started(redis, tmp_path)


async def test_a_streamed_oversized_upload_gets_413_once_past_the_limit(
    settings: Settings, tmp_path: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    """Without a Content-Length (chunked), the upload is cut off as soon as it passes the limit."""
    boundary = "smspipe-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\n".encode()
        + csv_bytes(us_numbers(4000))
        + f"\r\n--{boundary}--\r\n".encode()
    )

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    async with intake(settings, redis_url) as (_, http, _pool):
        response = await http.post(
            "/v1/sends",
            data=chunked(),
            headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        body = await response.json()

    assert response.status == 413 and "file: larger than" in body["error"]
    assert await nothing_started(redis, tmp_path)


async def test_a_send_through_the_intake_completes_and_its_results_download(
    tmp_path: Path, clean_env: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    """Upload -> 202 + job id -> worker -> GET the job (status --json) and its CSV results."""
    numbers = us_numbers(6) + ["12"]
    async with running_sandbox() as sandbox:
        settings = settings_for(sandbox, tmp_path / "bucket", smspipe_api_token=TOKEN)
        async with intake(settings, redis_url) as (_, http, pool):
            response = await http.post(
                "/v1/sends", data=form(csv_bytes(numbers), region="US"), headers=AUTH
            )
            accepted = await response.json()
            job_id = accepted["job"]
            await run_worker_until_idle(settings, redis_url)
            job = await (await http.get(f"/v1/jobs/{job_id}", headers=AUTH)).json()
            expected = await job_status(pool, job_id)
            results = await http.get(f"/v1/jobs/{job_id}/results", headers=AUTH)
            csv_text = await results.text()

    assert response.status == 202
    assert response.headers["Location"] == f"/v1/jobs/{job_id}"
    assert accepted["results_url"] == f"/v1/jobs/{job_id}/results"
    assert job == expected and job["state"] == "done"
    assert job["counts"]["sent"] == 6 and job["counts"]["rejected"] == 1
    assert results.status == 200 and results.content_type == "text/csv"
    assert f'filename="list.{job_id}.csv"' in results.headers["Content-Disposition"]
    lines = csv_text.lstrip("\ufeff").strip().splitlines()  # a BOM: Excel reads it as UTF-8
    assert lines[0].startswith("row,input,msisdn,state")
    assert len(lines) == 1 + len(numbers)


async def test_the_same_file_and_settings_give_the_same_job_id(
    settings: Settings, redis_url: str, redis: aioredis.Redis
) -> None:
    """Posting twice is one job; other settings are another job."""
    data = csv_bytes(us_numbers(3))
    async with intake(settings, redis_url) as (_, http, pool):
        ids = []
        for fields in ({}, {}, {"chunk_size": "2"}):
            response = await http.post("/v1/sends", data=form(data, **fields), headers=AUTH)
            assert response.status == 202
            ids.append((await response.json())["job"])
        queued = await pool.queued_jobs()

    assert ids[0] == ids[1] != ids[2]
    assert len(queued) == 2


async def test_a_send_can_name_a_file_already_in_the_bucket(
    settings: Settings, tmp_path: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    """A JSON body with a bucket key starts a send of that object, read in place."""
    (tmp_path / "bucket" / "uploads" / "shared").mkdir(parents=True)
    (tmp_path / "bucket" / "uploads" / "shared" / "vip.csv").write_bytes(csv_bytes(us_numbers(2)))
    async with intake(settings, redis_url) as (_, http, pool):
        ok = await http.post(
            "/v1/sends", json={"key": "uploads/shared/vip.csv", "text": "Hi {0}"}, headers=AUTH
        )
        missing = await http.post(
            "/v1/sends", json={"key": "uploads/nope.csv", "text": "Hi"}, headers=AUTH
        )
        (queued,) = await pool.queued_jobs()

    assert ok.status == 202
    assert queued.args[0]["source"] == "uploads/shared/vip.csv"
    assert missing.status == 404
    assert await missing.json() == {"error": "no object 'uploads/nope.csv' in the bucket"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"text": ""}, "text: the message is required"),
        ({"colour": "red"}, "colour: unknown field"),
        ({"chunk_size": "0"}, "chunk_size: Input should be greater than or equal to 1"),
    ],
)
async def test_bad_settings_get_422_naming_the_field(
    settings: Settings,
    tmp_path: Path,
    redis_url: str,
    redis: aioredis.Redis,
    fields: dict[str, str],
    message: str,
) -> None:
    """Missing text, an unknown field or a bad value: 422 and a message naming it."""
    async with intake(settings, redis_url) as (_, http, _pool):
        response = await http.post(
            "/v1/sends", data=form(csv_bytes(us_numbers(1)), **fields), headers=AUTH
        )
        body = await response.json()

    assert response.status == 422 and message in body["error"]
    assert await nothing_started(redis, tmp_path)


async def test_unknown_jobs_and_routes_answer_json_errors(
    settings: Settings, redis_url: str, redis: aioredis.Redis
) -> None:
    """404s are JSON with a specific message, like every other error."""
    async with intake(settings, redis_url) as (_, http, _pool):
        job = await http.get("/v1/jobs/s0000", headers=AUTH)
        results = await http.get("/v1/jobs/s0000/results", headers=AUTH)
        route = await http.get("/v2/nothing", headers=AUTH)
        wrong_type = await http.post("/v1/sends", data=b"x", headers=AUTH)

    assert (job.status, await job.json()) == (404, {"error": "no job 's0000'"})
    assert results.status == 404
    assert route.status == 404 and "error" in await route.json()
    assert wrong_type.status == 415 and "multipart/form-data" in (await wrong_type.json())["error"]


async def test_results_of_an_unfinished_job_are_a_409(
    settings: Settings, redis_url: str, redis: aioredis.Redis
) -> None:
    """Before the job is final there is no CSV: 409 says the state."""
    async with intake(settings, redis_url) as (_, http, _pool):
        response = await http.post("/v1/sends", data=form(csv_bytes(us_numbers(1))), headers=AUTH)
        job_id = (await response.json())["job"]
        results = await http.get(f"/v1/jobs/{job_id}/results", headers=AUTH)

    assert results.status == 409
    assert await results.json() == {"error": f"job {job_id} has no results yet (state: queued)"}


async def test_the_openapi_document_describes_every_route_without_a_token(
    settings: Settings, redis_url: str, redis: aioredis.Redis
) -> None:
    """/openapi.json is public, OpenAPI 3.1, and lists each path the server routes."""
    async with intake(settings, redis_url) as (_, http, _pool):
        response = await http.get("/openapi.json")
        doc: dict[str, Any] = json.loads(await response.text())

    assert response.status == 200
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {
        "/v1/sends",
        "/v1/broadcasts",
        "/v1/broadcasts/{id}",
        "/v1/broadcasts/{id}/suspend",
        "/v1/broadcasts/{id}/resume",
        "/v1/broadcasts/{id}/stop",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/results",
        "/healthz",
        "/metrics",
        "/openapi.json",
    }
    assert doc["paths"]["/v1/sends"]["post"]["responses"]["202"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def test_healthz_is_public_and_checks_redis(
    settings: Settings, redis_url: str, redis: aioredis.Redis
) -> None:
    """/healthz needs no token and answers ok while Redis answers."""
    async with intake(settings, redis_url) as (_, http, _pool):
        response = await http.get("/healthz")
        body = await response.json()

    assert (response.status, body) == (200, {"status": "ok", "redis": "ok"})


async def test_a_broadcast_through_the_intake_ends_done_and_refuses_a_late_stop(
    tmp_path: Path, clean_env: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    """POST /v1/broadcasts -> 202; the job ends done; stopping it afterwards is a 409."""
    async with running_sandbox() as sandbox:
        settings = settings_for(sandbox, tmp_path / "bucket", smspipe_api_token=TOKEN)
        async with intake(settings, redis_url) as (_, http, _pool):
            response = await http.post(
                "/v1/broadcasts",
                data=form(csv_bytes(us_numbers(3)), campaign="spring"),
                headers=AUTH,
            )
            job_id = (await response.json())["job"]
            await run_worker_until_idle(settings, redis_url)
            job = await (await http.get(f"/v1/jobs/{job_id}", headers=AUTH)).json()
            stop = await http.post(f"/v1/broadcasts/{job_id}/stop", headers=AUTH)
            unknown = await http.post("/v1/broadcasts/bnope/suspend", headers=AUTH)

    assert response.status == 202
    assert job["kind"] == "broadcast" and job["state"] == "done", job
    assert job["campaign"] == "spring" and job["counts"]["sent"] == 3
    assert stop.status == 409 and "no open broadcast" in (await stop.json())["error"]
    assert unknown.status == 404


def test_without_a_token_the_intake_refuses_a_public_address(
    clean_env: Path, tmp_path: Path
) -> None:
    """No SMSPIPE_API_TOKEN and a non-loopback bind: refused, naming the variable."""
    settings = Settings(smspipe_home=tmp_path / ".smspipe")
    with pytest.raises(ConfigError, match="SMSPIPE_API_TOKEN is not set"):
        api_token(settings, "0.0.0.0")


def test_without_a_token_on_loopback_a_private_token_is_made_and_kept(
    clean_env: Path, tmp_path: Path
) -> None:
    """Loopback without a token: a random token in .smspipe/api-token (0600), the same next time."""
    settings = Settings(smspipe_home=tmp_path / ".smspipe")
    token, where = api_token(settings, "127.0.0.1")
    again, _ = api_token(settings, "127.0.0.1")

    path = tmp_path / ".smspipe" / "api-token"
    assert where == str(path) and token == again and len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_an_upload_waiting_for_100_continue_is_refused_before_its_body_is_sent(
    settings: Settings, tmp_path: Path, redis_url: str, redis: aioredis.Redis
) -> None:
    """`Expect: 100-continue` with a huge Content-Length: 413 (or 401) from the headers alone."""
    import asyncio

    async with intake(settings, redis_url) as (url, _http, _pool):
        host, port = url.removeprefix("http://").split(":")
        answers = []
        for auth in (f"Authorization: Bearer {TOKEN}\r\n", ""):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                (
                    "POST /v1/sends HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                    f"{auth}Content-Type: multipart/form-data; boundary=b\r\n"
                    "Content-Length: 1000000000\r\n\r\n"
                ).encode()
            )
            await writer.drain()
            answers.append(await asyncio.wait_for(reader.readline(), 5))
            writer.close()
            await writer.wait_closed()

    assert answers[0].startswith(b"HTTP/1.1 413")
    assert answers[1].startswith(b"HTTP/1.1 401")
    assert await nothing_started(redis, tmp_path)
