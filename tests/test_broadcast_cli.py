"""`smspipe broadcast ...` as a user runs it: a subprocess, embedded Redis, the sandbox over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import tests.test_cli as cli
from ogangi.sandbox import running_sandbox
from tests.broadcast_helpers import MESSY, MESSY_READY, broadcasts


def broadcast_env(base_url: str, home: Path) -> dict[str, str]:
    """A configured provider (the sandbox), no REDIS_URL: smspipe runs its own redis-server."""
    env = cli.provider_env(base_url, cli.THEIR_PRIVATE_KEY, home)
    env.pop("REDIS_URL", None)
    env.update(
        SMSPIPE_BUCKET=str(home / "bucket"),
        SMSPIPE_BROADCAST_POLL_MIN="0.05",
        SMSPIPE_BROADCAST_POLL_MAX="0.2",
    )
    return env


async def test_create_wait_then_status_then_an_impossible_resume_exits_one(
    tmp_path: Path,
) -> None:
    """create --wait ends DONE; status shows the broadcast; resuming it: the provider's no, exit 1."""
    async with running_sandbox(cli.provider_config()) as sandbox:
        env = broadcast_env(sandbox.base_url, tmp_path)
        try:
            created = await cli.smspipe(
                "broadcast", "create", str(MESSY), "--text", "Hi {0}", "--from", "0434",
                "--campaign", "spring", "--wait", "--json", env=env, cwd=tmp_path,
            )  # fmt: skip
            job = json.loads(created.stdout)["job"] if created.code == 0 else "?"
            shown = await cli.smspipe("status", job, env=env, cwd=tmp_path)
            refused = await cli.smspipe("broadcast", "resume", "1", env=env, cwd=tmp_path)
            history = await cli.smspipe("broadcast", "history", job, "--json", env=env, cwd=tmp_path)
        finally:
            await cli.smspipe("down", env=env, cwd=tmp_path)
        [made] = broadcasts(sandbox)

    assert created.code == 0, created.output
    doc = json.loads(created.stdout)
    assert doc["state"] == "done" and doc["kind"] == "broadcast"
    assert {"job", "state", "counts", "results", "started_at", "finished_at", "error"} <= set(doc)
    assert [(b["id"], b["status"], b["sent"]) for b in doc["broadcasts"]] == [(1, "DONE", 11)]
    assert (made.spec.sender, made.spec.campaign, made.sent) == ("0434", "spring", MESSY_READY)
    assert shown.code == 0 and "broadcast 1" in shown.stdout and "DONE 11/11" in shown.stdout
    assert refused.code == 1
    assert "the provider refused to resume broadcast 1: broadcast 1 is DONE and cannot be " \
        "resumed" in refused.stderr
    assert "Traceback" not in refused.output
    events = json.loads(history.stdout)
    assert events[-1] == {**events[-1], "event": "action", "action": "resume", "ok": False}


async def test_a_past_start_time_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    """--at in the past: one clear line, exit 1, no broadcast, no job, no Redis started."""
    async with running_sandbox(cli.provider_config()) as sandbox:
        env = broadcast_env(sandbox.base_url, tmp_path)
        result = await cli.smspipe(
            "broadcast", "create", str(MESSY), "--text", "Hi {0}", "--from", "0434",
            "--at", "2021-03-01 09:00", "--tz", "Europe/Madrid", env=env, cwd=tmp_path,
        )  # fmt: skip
        made = broadcasts(sandbox)

    assert result.code == 1, result.output
    assert "start time 2021-03-01 08:00 UTC is in the past" in result.stderr
    assert "Traceback" not in result.output
    assert made == [] and not (tmp_path / ".smspipe" / "redis.json").exists()
