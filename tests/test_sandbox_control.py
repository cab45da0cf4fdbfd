"""The sandbox's control API (``/_sandbox/``), its JSONL ledger, and running it as a process."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from ogangi.models import Credentials
from ogangi.sandbox import FaultKind, FaultPlan, SandboxConfig
from ogangi.sandbox.cli import build_parser, config_from_args
from ogangi.sandbox.server import describe
from ogangi.sandbox.testing import ApiReply, SandboxClient, sandbox_client
from worker.settings import SANDBOX_PRIVATE_KEY

ROWS = (
    b'"13056708084","55500","C","UTF-8","UTC","Hi & bye"\r\n'
    b'"13056708085","55500","C","UTF-8","UTC","Hi"\r\n'
)
ONE = '[{"mobile":"13056708084","text":"B"}]'


async def create_broadcast(api: SandboxClient) -> ApiReply:
    params = ("8", "-1", "55500", "sandbox", "true", "null", "null")
    return await api.call("POST", "createBroadcastFromJson", *params, data={"to": ONE})


async def test_ledger_lists_accepted_messages_over_http() -> None:
    """``GET /_sandbox/ledger``: every accepted message with its id, source and request."""
    async with sandbox_client(SandboxConfig(broadcast_rate=1e6)) as api:
        reply = await api.upload(ROWS)
        await create_broadcast(api)
        page = await api.control("GET", "ledger")
        files = await api.control("GET", "ledger?source=file&offset=1&limit=5")
    assert page["total"] == 3
    first = page["messages"][0]
    assert first.pop("at").endswith("+00:00")
    assert first == {
        "seq": 0,
        "id": reply.messages[0]["id"],
        "to": "13056708084",
        "from": "55500",
        "text": "Hi & bye",
        "source": "file",
        "broadcast_id": None,
        "request_id": reply.headers["X-Sandbox-Request-Id"],
    }
    assert (page["messages"][2]["source"], page["messages"][2]["broadcast_id"]) == ("broadcast", 1)
    assert [m["to"] for m in files["messages"]] == ["13056708085"]


async def test_ledger_summary_counts_repeated_destinations() -> None:
    """``GET /_sandbox/ledger/summary`` tells at a glance whether anyone got two messages."""
    async with sandbox_client() as api:
        await api.upload(ROWS)
        await api.upload(ROWS[: ROWS.index(b"\n") + 1])
        summary = await api.control("GET", "ledger/summary")
    assert summary == {
        "total": 3,
        "by_source": {"file": 3, "broadcast": 0},
        "requests": 2,
        "distinct_to": 2,
        "repeated_to": 1,
        "extra_sends_to_repeated": 1,
    }


async def test_ledger_is_appended_to_a_jsonl_file(tmp_path: Path) -> None:
    """``ledger_path``: one JSON object per accepted message, readable by another process."""
    path = tmp_path / "ledger" / "sandbox.jsonl"
    async with sandbox_client(SandboxConfig(ledger_path=path)) as api:
        reply = await api.upload(ROWS)
        lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert [(d["id"], d["to"], d["text"]) for d in lines] == [
        (m["id"], m["to"], m["text"]) for m in reply.messages
    ]
    assert lines[0]["source"] == "file"


async def test_stats_count_requests_per_route_and_outcome() -> None:
    """``GET /_sandbox/stats``: per-route outcomes, routing failures included."""
    async with sandbox_client() as api:
        await api.upload(ROWS)
        await api.call("GET", "getShortcodes", "8", "sandbox", signature="0" * 64)
        await api.request("GET", f"{api.sandbox.base_url}/rest/api/nope/8/K/S")
        stats = await api.control("GET", "stats")
    assert stats["total_requests"] == 3
    assert stats["routes"] == {
        "sendSMSByFile": {"OK": 1},
        "getShortcodes": {"BAD_SIGNATURE": 1},
        "unmatched": {"http_404": 1},
    }


async def test_fault_plan_is_set_and_read_over_http() -> None:
    """``POST /_sandbox/faults`` replaces the plan; a nonsensical plan is a 400."""
    async with sandbox_client() as api:
        plan = await api.control("POST", "faults", {"rates": {"http_503": 1.0}, "seed": 3})
        reply = await api.upload(ROWS)
        with pytest.raises(aiohttp.ClientResponseError) as refused:
            await api.control("POST", "faults", {"rates": {"http_503": 2}})
        current = await api.control("GET", "faults")
    assert plan["rates"] == {"http_503": 1.0}
    assert reply.http_status == 503
    assert refused.value.status == 400
    assert current == plan


async def test_settings_change_at_runtime() -> None:
    """``POST /_sandbox/settings`` switches e.g. lenient signatures; unknown names are a 400."""
    async with sandbox_client() as api:
        upper = api.path("getShortcodes", ("8", "sandbox")).rsplit("/", 1)
        url = f"{upper[0]}/{upper[1].upper()}"
        before = await api.request("GET", url)
        settings = await api.control("POST", "settings", {"lenient": True, "rps_limit": 50})
        after = await api.request("GET", url)
        for bad in ({"private_key": "x"}, {"lenient": "yes"}, {"broadcast_rate": 0}):
            with pytest.raises(aiohttp.ClientResponseError):
                await api.control("POST", "settings", bad)
    assert (before.status, after.status) == ("BAD_SIGNATURE", "OK")
    assert (settings["lenient"], settings["rps_limit"]) == (True, 50.0)


async def test_reset_returns_to_the_startup_state(tmp_path: Path) -> None:
    """``POST /_sandbox/reset``: empty ledger (and file), no broadcasts, startup config."""
    path = tmp_path / "ledger.jsonl"
    async with sandbox_client(SandboxConfig(ledger_path=path)) as api:
        await api.upload(ROWS)
        await create_broadcast(api)
        api.sandbox.config.faults = FaultPlan(rates={FaultKind.ERROR_XML: 1.0})
        api.sandbox.config.lenient = True
        await api.control("POST", "reset")
        created = await create_broadcast(api)
        stats = await api.control("GET", "stats")
        state = (len(api.sandbox.ledger), api.sandbox.config.faults, api.sandbox.config.lenient)
    assert created.broadcast["id"] == "1"
    assert state == (0, FaultPlan(), False)
    assert path.read_text() == ""
    assert stats["total_requests"] == 1


async def test_health_names_workspaces_without_their_private_key() -> None:
    """``GET /_sandbox/health`` identifies a sandbox; no secret ever leaves it."""
    async with sandbox_client() as api:
        health = await api.control("GET", "health")
    assert health["sandbox"] is True
    assert health["banner"] == "SANDBOX: no SMS leave this machine"
    assert health["workspaces"] == [
        {"instance_id": 8, "public_key": "SANDBOX-PUBLIC-KEY", "users": {"sandbox": ["55500"]}}
    ]
    assert SANDBOX_PRIVATE_KEY not in json.dumps(health)


def test_command_line_flags_and_environment_build_the_config(tmp_path: Path) -> None:
    """Keys come from ``OGANGI_*`` variables; behaviour and faults from flags."""
    flags = shlex.split(
        "--lenient --carriers Movistar,Digitel --rps-limit 20 --fault http_503=0.1"
        " --fault timeout_after_accept=0.05 --seed 4 --hang 2 --no-drop"
        f" --shortcode-ignore intuitive --timezone America/Caracas --ledger {tmp_path}/l.jsonl"
    )
    args = build_parser().parse_args(flags)
    env = {
        "OGANGI_INSTANCE_ID": "12",
        "OGANGI_PUBLIC_KEY": "PUB",
        "OGANGI_PRIVATE_KEY": "PRIV",
        "OGANGI_USERNAME": "ana",
        "OGANGI_SHORTCODE": "123, 456",
    }
    config = config_from_args(args, env)
    [workspace] = config.workspaces
    assert workspace.credentials() == Credentials(12, "PUB", "PRIV", "ana")
    assert workspace.users == {"ana": ["123", "456"]}
    assert "PRIV" not in repr(config)
    assert config.carriers == ("Movistar", "Digitel")
    assert (config.lenient, config.rps_limit) == (True, 20)
    assert config.faults == FaultPlan(
        rates={FaultKind.HTTP_503: 0.1, FaultKind.TIMEOUT_AFTER_ACCEPT: 0.05},
        seed=4,
        hang_seconds=2,
        drop_connection=False,
    )
    assert (config.shortcode_ignore_literal, config.timezone) == (False, "America/Caracas")


async def test_banner_never_shows_the_private_key() -> None:
    """The startup text says it is a sandbox and where it listens, and no secret."""
    async with sandbox_client() as api:
        text = describe(api.sandbox)
    assert text.splitlines()[:2] == [
        "SANDBOX: no SMS leave this machine",
        f"Ogangi sandbox listening on {api.sandbox.base_url}",
    ]
    assert SANDBOX_PRIVATE_KEY not in text


def test_module_runs_as_a_process_on_loopback() -> None:
    """``python -m ogangi.sandbox --port 0`` prints the banner and URL, and stops on SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ogangi.sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OGANGI_PRIVATE_KEY": "TOP-SECRET"},
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline().rstrip("\n") for _ in range(3)]
    finally:
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=10)[0]
    assert banner[0] == "SANDBOX: no SMS leave this machine"
    assert banner[1].startswith("Ogangi sandbox listening on http://127.0.0.1:")
    assert "TOP-SECRET" not in "\n".join(banner) + rest
    assert process.returncode == 0
