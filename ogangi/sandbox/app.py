"""The aiohttp application: one entry point for ``/rest/api/``, which applies, in order,
routing (404/405), the requests-per-second limit (429), latency and injected faults, the
signature check (BAD_SIGNATURE), and the method's handler.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiohttp import web

from ogangi.sandbox import control, xmlgen
from ogangi.sandbox.faults import FaultKind, FaultPlan
from ogangi.sandbox.handlers import HANDLERS, ApiError, Call, XmlPieces
from ogangi.sandbox.routing import RouteSpec, authenticate, match, split_path
from ogangi.sandbox.state import SandboxState
from ogangi.sandbox.xmlgen import BAD_SIGNATURE, ERROR, OK

STATE = control.STATE
REQUEST_ID_HEADER = "X-Sandbox-Request-Id"
#: What a broken proxy in front of the provider might send with a 200.
GARBAGE_BODY = b"<html><body><h1>502 Bad Gateway</h1>\x00\xff\xfe</body"
#: Room for multipart framing and form encoding around the largest accepted file.
_BODY_SLACK = 1 << 20
_ENVELOPE_TAIL = xmlgen.ENVELOPE_TAIL.encode("utf-8")


def build_app(state: SandboxState) -> web.Application:
    app = web.Application(client_max_size=state.config.max_upload_bytes + _BODY_SLACK)
    app[STATE] = state
    app.router.add_route("*", "/rest/api/{tail:.*}", api_entry)
    control.add_routes(app)
    return app


@dataclass(frozen=True)
class Reply:
    outcome: str
    body: str | XmlPieces
    request_id: str | None = None


def _headers(reply: Reply) -> dict[str, str]:
    headers = {"Content-Type": xmlgen.CONTENT_TYPE}
    if reply.request_id:
        headers[REQUEST_ID_HEADER] = reply.request_id
    return headers


def xml_response(reply: Reply) -> web.Response:
    body = reply.body
    data = body.encode("utf-8") if isinstance(body, str) else b"".join(body)
    return web.Response(body=data, headers=_headers(reply))


async def send_xml(request: web.Request, reply: Reply) -> web.StreamResponse:
    """The reply; a body in pieces is written piece by piece (the same bytes, never joined:
    a 10 000-message reply is megabytes, and each copy of it costs the sandbox CPU)."""
    if isinstance(reply.body, str):
        return xml_response(reply)
    response = web.StreamResponse(headers=_headers(reply))
    response.content_length = sum(memoryview(piece).nbytes for piece in reply.body)
    try:
        await response.prepare(request)
        for piece in reply.body:
            await response.write(piece)
        await response.write_eof()
    except ConnectionError:
        pass  # the client left: as for a whole-body reply, aiohttp just logs the access
    return response


async def api_entry(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    config = state.config
    # Pacing is measured on the real clock; ``state.clock`` is the simulated broadcast time.
    now = time.time()
    state.stats.arrive(now)
    segments = split_path(request.raw_path)
    spec = None if segments is None else match(segments)
    if spec is None or segments is None:
        state.stats.record("unmatched", "http_404")
        raise web.HTTPNotFound()
    if request.method not in spec.methods:
        state.stats.record(spec.name, "http_405")
        raise web.HTTPMethodNotAllowed(request.method, sorted(spec.methods))
    retry_after = state.limiter.admit(now, config.rps_limit)
    if retry_after is not None:
        state.stats.record(spec.name, "rate_limited")
        return _too_many(retry_after)
    state.stats.admit(now)

    plan = config.faults
    delay = state.faults.latency(plan, spec.name)
    fault = state.faults.choose(plan, spec.name)
    if fault is None:
        # Latency is the provider's processing time: the request is read and acted on first,
        # as a real server does, so a client that dies while waiting has still been served.
        reply = await _process(request, state, spec, segments)
        if delay:
            await asyncio.sleep(delay)
        state.stats.record(spec.name, reply.outcome)
        return await send_xml(request, reply)
    if delay:
        await asyncio.sleep(delay)
    state.stats.record(spec.name, fault.value)
    if not fault.processes_request:
        return await _fail_unprocessed(request, fault, plan, _input_name(state, spec))
    reply = await _process(request, state, spec, segments)
    if fault is FaultKind.GARBAGE_BODY:
        return web.Response(body=GARBAGE_BODY, content_type="text/html")
    await asyncio.sleep(plan.hang_seconds)
    if plan.drop_connection:
        _drop(request)
    return await send_xml(request, reply)


async def _process(
    request: web.Request, state: SandboxState, spec: RouteSpec, segments: list[str]
) -> Reply:
    input_name = _input_name(state, spec)
    auth = authenticate(state.config, spec, segments)
    if auth is None:
        return Reply(BAD_SIGNATURE, xmlgen.envelope(input_name, BAD_SIGNATURE))
    call = Call(request, state, auth.workspace, auth.params, state.request_id(), state.clock())
    try:
        result = await HANDLERS[spec.name](call)
    except ApiError as exc:
        return Reply(ERROR, xmlgen.error(input_name, str(exc)), call.request_id)
    head = xmlgen.envelope_head(input_name, OK)
    if isinstance(result, str):
        return Reply(OK, f"{head}{result}{xmlgen.ENVELOPE_TAIL}", call.request_id)
    return Reply(OK, (head.encode("utf-8"), *result, _ENVELOPE_TAIL), call.request_id)


def _input_name(state: SandboxState, spec: RouteSpec) -> str:
    """§13 A10: the route's method name, or the doc sample's ``sendSMS`` for the file blast."""
    if spec.name == "sendSMSByFile" and state.config.input_name == "sendSMS":
        return "sendSMS"
    return spec.name


async def _fail_unprocessed(
    request: web.Request, fault: FaultKind, plan: FaultPlan, input_name: str
) -> web.StreamResponse:
    if fault is FaultKind.RATE_LIMIT_429:
        return _too_many(plan.retry_after_seconds)
    if fault is FaultKind.ERROR_XML:
        return xml_response(Reply(ERROR, xmlgen.error(input_name, "injected fault: error_xml")))
    if fault is FaultKind.TIMEOUT_BEFORE_ACCEPT:
        await asyncio.sleep(plan.hang_seconds)
        if plan.drop_connection:
            _drop(request)
    return web.Response(status=503, text="Service Unavailable")


def _too_many(retry_after: int) -> web.Response:
    return web.Response(
        status=429, text="Too Many Requests", headers={"Retry-After": str(retry_after)}
    )


def _drop(request: web.Request) -> None:
    """Close the socket without an answer, as a dead provider or proxy would."""
    if request.transport is not None:
        request.transport.abort()
    raise web.HTTPServiceUnavailable()
