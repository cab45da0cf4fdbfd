"""``/_sandbox/``: a JSON control API for tests and for other processes (workers, benchmarks).

It lives outside ``/rest/api/`` and takes no signature: it exists only on a loopback sandbox.
See ``ogangi/sandbox/README.md`` for the endpoint list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ogangi.sandbox.broadcasts import Broadcast, BroadcastError
from ogangi.sandbox.faults import FaultPlan
from ogangi.sandbox.state import SandboxState

STATE = web.AppKey("sandbox_state", SandboxState)
PREFIX = "/_sandbox"
BANNER = "SANDBOX: no SMS leave this machine"
DEFAULT_PAGE = 1000
MAX_PAGE = 100_000

#: Settings another process may change at runtime, with their validators.
SETTINGS: dict[str, Callable[[Any], Any]] = {
    "rps_limit": lambda v: None if v is None else _positive(v, "rps_limit"),
    "broadcast_rate": lambda v: _positive(v, "broadcast_rate"),
    "force_suspend_after": lambda v: None if v is None else int(v),
    "lenient": lambda v: _boolean(v, "lenient"),
    "shortcode_ignore_literal": lambda v: _boolean(v, "shortcode_ignore_literal"),
    "carriers": lambda v: None if v is None else tuple(str(c) for c in v),
    "input_name": lambda v: _choice(v, ("route", "sendSMS"), "input_name"),
}


def _positive(value: Any, name: str) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError(f"{name} must be positive")
    return number


def _boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be true or false")
    return value


def _choice(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}")
    return str(value)


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/health", health)
    app.router.add_get(f"{PREFIX}/ledger", ledger)
    app.router.add_get(f"{PREFIX}/ledger/summary", ledger_summary)
    app.router.add_get(f"{PREFIX}/stats", stats)
    app.router.add_get(f"{PREFIX}/faults", get_faults)
    app.router.add_post(f"{PREFIX}/faults", set_faults)
    app.router.add_get(f"{PREFIX}/settings", get_settings)
    app.router.add_post(f"{PREFIX}/settings", set_settings)
    app.router.add_get(f"{PREFIX}/broadcasts", broadcasts)
    app.router.add_post(f"{PREFIX}/broadcasts/{{id:\\d+}}/force-suspend", force_suspend)
    app.router.add_post(f"{PREFIX}/reset", reset)


def _state(request: web.Request) -> SandboxState:
    return request.app[STATE]


def _bad_request(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": reason}), content_type="application/json")


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        doc = await request.json() if request.can_read_body else {}
    except ValueError:
        raise _bad_request("body is not JSON") from None
    if not isinstance(doc, dict):
        raise _bad_request("body must be a JSON object")
    return doc


async def health(request: web.Request) -> web.Response:
    """Lets a process check that a recorded port is really this sandbox, and which keys it takes."""
    state = _state(request)
    return web.json_response(
        {
            "sandbox": True,
            "banner": BANNER,
            "workspaces": [
                {"instance_id": w.instance_id, "public_key": w.public_key, "users": w.users}
                for w in state.config.workspaces
            ],
        }
    )


async def ledger(request: web.Request) -> web.Response:
    """``?offset=N&limit=M&source=file|broadcast``: a page of accepted messages."""
    state = _state(request)
    try:
        offset = int(request.query.get("offset", 0))
        limit = min(int(request.query.get("limit", DEFAULT_PAGE)), MAX_PAGE)
    except ValueError:
        raise _bad_request("offset and limit must be integers") from None
    source = request.query.get("source")
    if source not in (None, "file", "broadcast"):
        raise _bad_request("source must be 'file' or 'broadcast'")
    entries = state.ledger.entries(offset, limit, source)  # type: ignore[arg-type]
    return web.json_response(
        {
            "total": len(state.ledger),
            "offset": offset,
            "messages": [entry.to_json() for entry in entries],
        }
    )


async def ledger_summary(request: web.Request) -> web.Response:
    return web.json_response(_state(request).ledger.summary())


async def stats(request: web.Request) -> web.Response:
    return web.json_response(_state(request).stats.to_json(time.time()))


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(_state(request).config.faults.to_json())


async def set_faults(request: web.Request) -> web.Response:
    """Replace the whole plan (``{}`` = no faults); the seeded sequence restarts."""
    state = _state(request)
    try:
        plan = FaultPlan.from_json(await _json_body(request))
    except (TypeError, ValueError) as exc:
        raise _bad_request(str(exc)) from None
    state.config.faults = plan
    return web.json_response(plan.to_json())


def _settings_json(state: SandboxState) -> dict[str, Any]:
    return {name: getattr(state.config, name) for name in SETTINGS}


async def get_settings(request: web.Request) -> web.Response:
    return web.json_response(_settings_json(_state(request)))


async def set_settings(request: web.Request) -> web.Response:
    """Change some of ``SETTINGS``; all or nothing."""
    state = _state(request)
    doc = await _json_body(request)
    unknown = set(doc) - set(SETTINGS)
    if unknown:
        raise _bad_request(f"not runtime settings: {sorted(unknown)}")
    try:
        values = {name: SETTINGS[name](value) for name, value in doc.items()}
    except (TypeError, ValueError) as exc:
        raise _bad_request(str(exc)) from None
    for name, value in values.items():
        setattr(state.config, name, value)
    return web.json_response(_settings_json(state))


def _broadcast_json(item: Broadcast) -> dict[str, Any]:
    return {
        "id": item.id,
        "instance_id": item.instance_id,
        "status": item.status.value,
        "expected": item.expected,
        "sent": item.sent,
        "sender": item.spec.sender,
        "shortcode": item.spec.shortcode_param,
        "shortcode_ignore": item.spec.shortcode_ignore,
        "owner": item.spec.owner,
        "campaign": item.spec.campaign,
        "start_at": item.start_at,
        "end_at": item.end_at,
    }


async def broadcasts(request: web.Request) -> web.Response:
    state = _state(request)
    state.broadcasts.advance_all(state.clock())
    return web.json_response([_broadcast_json(b) for b in state.broadcasts.all()])


async def force_suspend(request: web.Request) -> web.Response:
    """What the provider does on its own (e.g. funds ran out): SENDING -> FORCED_SUSPENDED."""
    state = _state(request)
    try:
        item = state.broadcasts.force_suspend(int(request.match_info["id"]), state.clock())
    except BroadcastError as exc:
        raise web.HTTPConflict(
            text=json.dumps({"error": str(exc)}), content_type="application/json"
        ) from None
    return web.json_response(_broadcast_json(item))


async def reset(request: web.Request) -> web.Response:
    """Back to the state the sandbox started in: empty ledger, no broadcasts, startup config."""
    _state(request).reset()
    return web.json_response({"reset": True})
