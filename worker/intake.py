"""``smspipe serve``: the HTTP intake (aiohttp). Other services start jobs and follow them here.

Routes (described at ``/openapi.json``): ``POST /v1/sends`` (multipart upload, or JSON naming a
bucket key) -> 202 and the job id; ``GET /v1/jobs/{id}`` (the JSON of ``smspipe status
--json``); ``GET /v1/jobs/{id}/results`` (the CSV); broadcast routes; ``/metrics``;
``/healthz``.

Security:
- Every route but ``/healthz`` and ``/openapi.json`` needs ``Authorization: Bearer <token>``,
  compared in constant time; a request without it gets 401 before its body is read.
- The token is ``SMSPIPE_API_TOKEN``. Without it the intake only binds a loopback address and
  makes its own token, kept in ``.smspipe/api-token`` (mode 0600): even on loopback an open API
  could be driven by any local user, or by a web page through the browser (a form POST needs
  no CORS preflight). On any other address it refuses to start.
- Uploads larger than ``SMSPIPE_MAX_UPLOAD_MB`` get 413 from their Content-Length (or, with
  ``Expect: 100-continue``, before the client sends them), and streamed ones as soon as they
  pass the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import PurePosixPath
from typing import Any

import structlog
from aiohttp import BodyPartReader, HttpVersion11, web
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from jobs.enqueue import enqueue_send, job_status
from jobs.payloads import SendJob, content_digest, send_job_id
from worker import metrics
from worker.jobstore import JobStore
from worker.manifest import Manifest, ManifestError, validate
from worker.openapi import document
from worker.settings import ConfigError, Settings
from worker.storage import Bucket, NotFoundError

log = structlog.get_logger("smspipe.intake")

PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json"})
SEND_FIELDS = frozenset(
    {"text", "from", "region", "phone_column", "chunk_size", "resend_unknown", "at"}
)
BROADCAST_FIELDS = frozenset({"text", "from", "region", "phone_column", "at", "campaign"})
#: Form fields are short; anything longer is not a setting.
MAX_FIELD_BYTES = 64 * 1024
TOKEN_FILE = "api-token"


class ApiError(Exception):
    """Answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Intake:
    """What the handlers share."""

    settings: Settings
    pool: ArqRedis
    bucket: Bucket
    token: str
    max_upload_bytes: int


INTAKE = web.AppKey("intake", Intake)


# --- the token --------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_token(settings: Settings, host: str) -> tuple[str, str]:
    """``(token, where it comes from)``; see the module docstring for the rules."""
    configured = settings.smspipe_api_token
    if configured is not None and configured.get_secret_value().strip():
        token = configured.get_secret_value().strip()
        if len(token) < 16:
            raise ConfigError("SMSPIPE_API_TOKEN is too short: use at least 16 random characters")
        return token, "SMSPIPE_API_TOKEN"
    if not is_loopback(host):
        raise ConfigError(
            f"SMSPIPE_API_TOKEN is not set: the intake listens on {host} only with a token "
            "(set one, or bind 127.0.0.1)"
        )
    path = settings.smspipe_home / TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip(), str(path)


def authorized(request: web.Request, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def unauthorized(request: web.Request) -> web.Response:
    wrong = bool(request.headers.get("Authorization"))
    challenge = 'Bearer realm="smspipe"' + (', error="invalid_token"' if wrong else "")
    message = "wrong bearer token" if wrong else "missing bearer token (Authorization: Bearer ...)"
    return error_response(401, message, {"WWW-Authenticate": challenge})


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


# --- middleware -------------------------------------------------------------------------------


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Token first (nothing is read or done without it), then errors as JSON, then metrics."""
    intake = request.app[INTAKE]
    response: web.StreamResponse
    if request.path not in PUBLIC_PATHS and not authorized(request, intake.token):
        response = unauthorized(request)
    else:
        try:
            response = await handler(request)
        except ApiError as exc:
            response = error_response(exc.status, exc.message)
        except web.HTTPException as exc:
            if exc.status == 413:
                message = f"upload larger than {intake.settings.smspipe_max_upload_mb:g} MB"
            else:
                message = f"{exc.reason}: {request.method} {request.path}"
            response = error_response(exc.status, message)
        except Exception as exc:
            log.exception("intake request failed", route=_route_name(request))
            response = error_response(500, f"internal error ({type(exc).__name__})")
    metrics.INTAKE_REQUESTS.labels(_route_name(request), str(response.status)).inc()
    return response


async def expect_upload(request: web.Request) -> web.StreamResponse | None:
    """``Expect: 100-continue``: refuse a bad token or an oversized body before it is sent."""
    intake = request.app[INTAKE]
    refusal = unauthorized(request) if not authorized(request, intake.token) else None
    too_big = _too_big(request, intake)
    if refusal is None and too_big is not None:
        refusal = error_response(413, too_big)
    if refusal is not None:
        refusal.force_close()  # the client holds its body back: do not wait for it
        return refusal
    if request.headers.get("Expect", "").lower() != "100-continue":
        return error_response(417, f"unknown expectation {request.headers.get('Expect')!r}")
    if request.version == HttpVersion11:  # what aiohttp's own expect handler does
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0
    return None


def _too_big(request: web.Request, intake: Intake) -> str | None:
    """Why the announced body is too big (from Content-Length), or None."""
    length = request.content_length
    if length is not None and length > intake.max_upload_bytes:
        mb = intake.settings.smspipe_max_upload_mb
        return f"upload of {length} bytes is larger than {mb:g} MB"
    return None


# --- reading a producer's request -------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A recipient file and its settings, from a form upload or a bucket key."""

    settings: Manifest
    name: str
    data: bytes
    key: str | None  # set when the file is already in the bucket


async def read_request(request: web.Request, allowed: frozenset[str], kind: str) -> Upload:
    intake = request.app[INTAKE]
    too_big = _too_big(request, intake)
    if too_big is not None:
        raise ApiError(413, too_big)
    if request.content_type == "multipart/form-data":
        fields, name, data = await _read_form(request, intake.max_upload_bytes)
        return Upload(_settings(fields, allowed, kind), name, data, None)
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, 'the body must be a JSON object, like {"key": ..., "text": ...}')
        key = body.pop("key", None)
        if not isinstance(key, str) or not key:
            raise ApiError(422, "key: the bucket key of the recipient file is required")
        _check_key(key)
        try:
            data = await intake.bucket.get(key)
        except (NotFoundError, FileNotFoundError):
            raise ApiError(404, f"no object {key!r} in the bucket") from None
        return Upload(_settings(body, allowed, kind), PurePosixPath(key).name, data, key)
    raise ApiError(
        415,
        f"send multipart/form-data (a file and fields) or application/json (a bucket key), "
        f"not {request.content_type or 'no content type'}",
    )


def _check_key(key: str) -> None:
    parts = PurePosixPath(key).parts
    if key.startswith("/") or ".." in parts or not parts:
        raise ApiError(422, f"key: {key!r} is not a bucket key (relative, no '..')")


async def _read_form(request: web.Request, limit: int) -> tuple[dict[str, Any], str, bytes]:
    reader = await request.multipart()
    fields: dict[str, Any] = {}
    name: str | None = None
    data: bytes | None = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise ApiError(400, "nested multipart bodies are not supported")
        if part.name == "file":
            data = await _read_limited(part, limit, "file")
            name = PurePosixPath((part.filename or "").replace("\\", "/")).name or "upload.csv"
        elif part.name:
            raw = await _read_limited(part, MAX_FIELD_BYTES, part.name)
            fields[part.name] = raw.decode("utf-8", errors="replace")
    if data is None or name is None:
        raise ApiError(
            422, "file: a multipart part named 'file' with the recipient list is required"
        )
    return fields, name, data


async def _read_limited(part: BodyPartReader, limit: int, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(256 * 1024):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"{what}: larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _settings(fields: dict[str, Any], allowed: frozenset[str], kind: str) -> Manifest:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ApiError(
            422, f"{', '.join(unknown)}: unknown field (known: {', '.join(sorted(allowed))})"
        )
    if not fields.get("text"):
        raise ApiError(422, "text: the message is required")
    try:
        return validate({**fields, "kind": kind}, "request")
    except ManifestError as exc:
        raise ApiError(422, str(exc).removeprefix("request: ")) from None


# --- handlers ---------------------------------------------------------------------------------


def accepted(job_id: str) -> web.Response:
    status_url = f"/v1/jobs/{job_id}"
    body = {"job": job_id, "status_url": status_url, "results_url": f"{status_url}/results"}
    return web.json_response(body, status=202, headers={"Location": status_url})


async def post_send(request: web.Request) -> web.Response:
    intake = request.app[INTAKE]
    upload = await read_request(request, SEND_FIELDS, "send")
    options = upload.settings.send_options()
    job_id = send_job_id(content_digest(upload.data), options)
    if not await JobStore(intake.pool).exists(job_id):
        source = upload.key or f"uploads/{job_id}/{upload.name}"
        if upload.key is None:
            await intake.bucket.put(source, upload.data)
        job = SendJob(job_id=job_id, name=upload.name, source=source, options=options)
        at = upload.settings.starts_at(intake.settings.smspipe_timezone)
        await enqueue_send(intake.pool, job, at=at)
        log.info("send accepted", job=job_id, file=upload.name, bytes=len(upload.data))
    return accepted(job_id)


async def post_broadcast(request: web.Request) -> web.Response:
    """A broadcast job through the broadcast producer API (``jobs.enqueue.create_broadcast``)."""
    from pydantic import ValidationError

    from jobs.broadcast_schedule import BroadcastInputError
    from jobs.enqueue import create_broadcast

    intake = request.app[INTAKE]
    upload = await read_request(request, BROADCAST_FIELDS, "broadcast")
    wanted = upload.settings
    assert wanted.text is not None
    try:
        job_id = await create_broadcast(
            intake.pool,
            upload.data,
            wanted.text,
            name=upload.name,
            tz=intake.settings.smspipe_timezone,
            bucket=intake.bucket,
            settings=intake.settings,
            **wanted.broadcast_options(),
        )
    except (BroadcastInputError, ValidationError) as exc:
        raise ApiError(422, str(exc)) from None
    log.info("broadcast accepted", job=job_id, file=upload.name, bytes=len(upload.data))
    return accepted(job_id)


async def broadcast_control(request: web.Request) -> web.Response:
    """suspend / resume / stop (POST) or delete (DELETE) every open broadcast of a job, or one
    broadcast by its provider id; the answer lists what each broadcast became."""
    from jobs.broadcast_schedule import BroadcastInputError
    from jobs.enqueue import ActionRefused, broadcast_action
    from ogangi.errors import OgangiError

    intake = request.app[INTAKE]
    target = request.match_info["id"]
    action: Any = "delete" if request.method == "DELETE" else request.path.rsplit("/", 1)[1]
    if not target.isdigit() and not await JobStore(intake.pool).exists(target):
        raise ApiError(404, f"no job {target!r}")
    try:
        done = await broadcast_action(
            intake.pool,
            target,
            action,
            settings=intake.settings,
        )
    except (ActionRefused, BroadcastInputError) as exc:
        raise ApiError(409, str(exc)) from None
    except OgangiError as exc:
        raise ApiError(502, f"the provider did not answer the {action}: {exc}") from None
    log.info("broadcast action", target=target, action=action, broadcasts=len(done))
    return web.json_response(
        {"target": target, "action": action, "broadcasts": [r.to_json() for r in done]}
    )


async def get_job(request: web.Request) -> web.Response:
    intake = request.app[INTAKE]
    job_id = request.match_info["id"]
    status = await job_status(intake.pool, job_id)
    if status is None:
        raise ApiError(404, f"no job {job_id!r}")
    return web.json_response(status)


async def get_results(request: web.Request) -> web.StreamResponse:
    intake = request.app[INTAKE]
    job_id = request.match_info["id"]
    status = await job_status(intake.pool, job_id)
    if status is None:
        raise ApiError(404, f"no job {job_id!r}")
    url = status.get("results")
    key = bucket_key(intake.bucket, url) if url else None
    if key is None:
        raise ApiError(409, f"job {job_id} has no results yet (state: {status['state']})")
    try:
        stream = intake.bucket.stream(key)
        first = await anext(stream, b"")
    except (NotFoundError, FileNotFoundError):
        raise ApiError(404, f"the results file of job {job_id} is gone from the bucket") from None
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{PurePosixPath(key).name}"',
        }
    )
    await response.prepare(request)
    await response.write(first)
    async for piece in stream:
        await response.write(piece)
    await response.write_eof()
    return response


def bucket_key(bucket: Bucket, url: str) -> str | None:
    """The key of a results URL the job recorded (``Bucket.url`` backwards)."""
    base = bucket.url("x")[:-1]
    return url[len(base) :] if url.startswith(base) else None


async def healthz(request: web.Request) -> web.Response:
    intake = request.app[INTAKE]
    try:
        await asyncio.wait_for(intake.pool.ping(), 2.0)
    except (RedisError, OSError, TimeoutError) as exc:
        raise ApiError(503, f"redis is not reachable ({type(exc).__name__})") from None
    return web.json_response({"status": "ok", "redis": "ok"})


async def get_metrics(request: web.Request) -> web.Response:
    body = await metrics.render(request.app[INTAKE].pool)
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document(smspipe_version()))


def smspipe_version() -> str:
    try:
        return version("smspipe")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


# --- the application --------------------------------------------------------------------------


def build_app(settings: Settings, pool: ArqRedis, bucket: Bucket, token: str) -> web.Application:
    max_upload = int(settings.smspipe_max_upload_mb * 1024 * 1024)
    app = web.Application(middlewares=[guard], client_max_size=max_upload)
    app[INTAKE] = Intake(settings, pool, bucket, token, max_upload)
    app.router.add_post("/v1/sends", post_send, expect_handler=expect_upload)
    app.router.add_post("/v1/broadcasts", post_broadcast, expect_handler=expect_upload)
    for action in ("suspend", "resume", "stop"):
        app.router.add_post(f"/v1/broadcasts/{{id}}/{action}", broadcast_control)
    app.router.add_delete("/v1/broadcasts/{id}", broadcast_control)
    app.router.add_get("/v1/jobs/{id}", get_job)
    app.router.add_get("/v1/jobs/{id}/results", get_results)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/openapi.json", openapi)
    return app


@contextlib.asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` (0: a free port) and yield its base URL."""
    runner = web.AppRunner(app, shutdown_timeout=5.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield f"http://{shown}:{bound_port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def running_intake(
    settings: Settings, pool: ArqRedis, *, host: str | None = None, port: int | None = None
) -> AsyncIterator[str]:
    """The intake on the configured (or given) address, for ``serve`` and ``run``."""
    host = host or settings.smspipe_intake_host
    port = settings.smspipe_intake_port if port is None else port
    token, source = api_token(settings, host)
    bucket = Bucket.from_setting(settings.smspipe_bucket)
    async with serving(build_app(settings, pool, bucket, token), host, port) as url:
        log.info("intake listening", url=url, token=source)
        yield url
