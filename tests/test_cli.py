"""The ``smspipe`` command as a user runs it: a subprocess, real HTTP, exit codes, clean output."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ogangi.sandbox import SandboxConfig, running_sandbox
from ogangi.sandbox.config import Workspace

THEIR_PRIVATE_KEY = "PROVIDER-SIDE-PRIVATE-9f3a"
OUR_WRONG_KEY = "OUR-WRONG-PRIVATE-KEY-77c1"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


async def smspipe(*args: str, env: dict[str, str], cwd: Path) -> Result:
    """Run the CLI without blocking the loop that serves the in-process sandbox."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker.cli", *args,
        cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def provider_env(base_url: str, private_key: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OGANGI_", "SMSPIPE_"))}
    env.update(
        OGANGI_BASE_URL=base_url,
        OGANGI_INSTANCE_ID="8",
        OGANGI_PUBLIC_KEY="PUB-1",
        OGANGI_PRIVATE_KEY=private_key,
        OGANGI_USERNAME="peter",
        SMSPIPE_HOME=str(home / ".smspipe"),
        COLUMNS="200",
    )
    return env


def provider_config() -> SandboxConfig:
    return SandboxConfig(
        workspaces=[Workspace(8, "PUB-1", THEIR_PRIVATE_KEY, users={"peter": ["0434", "55500"]})]
    )


async def test_shortcodes_lists_the_accounts_codes(tmp_path: Path) -> None:
    """With the right keys, `smspipe shortcodes` prints each code, leading zeros kept."""
    async with running_sandbox(provider_config()) as sandbox:
        env = provider_env(sandbox.base_url, THEIR_PRIVATE_KEY, tmp_path)
        result = await smspipe("shortcodes", env=env, cwd=tmp_path)
    assert result.code == 0, result.output
    assert result.stdout.split() == ["0434", "55500"]


async def test_wrong_private_key_exits_nonzero_with_the_signature_message(tmp_path: Path) -> None:
    """Against a provider holding other keys: one clear line, exit 1, no key printed anywhere."""
    async with running_sandbox(provider_config()) as sandbox:
        env = provider_env(sandbox.base_url, OUR_WRONG_KEY, tmp_path)
        result = await smspipe("shortcodes", env=env, cwd=tmp_path)
    assert result.code == 1
    assert "signature rejected by the provider: check OGANGI_PRIVATE_KEY" in result.stderr
    assert "Traceback" not in result.output
    assert OUR_WRONG_KEY not in result.output and THEIR_PRIVATE_KEY not in result.output


async def test_unreachable_provider_is_a_temporary_failure(tmp_path: Path) -> None:
    """Nothing listening: exit 75 (try again later) and a line naming the endpoint."""
    env = provider_env("http://127.0.0.1:9", THEIR_PRIVATE_KEY, tmp_path)
    result = await smspipe("shortcodes", env=env, cwd=tmp_path)
    assert result.code == 75
    assert "getShortcodes: cannot connect" in result.stderr


async def test_provider_error_is_shown_plainly_and_exits_one(tmp_path: Path) -> None:
    """A broadcast the provider does not know: its ERROR answer, exit 1."""
    async with running_sandbox(provider_config()) as sandbox:
        env = provider_env(sandbox.base_url, THEIR_PRIVATE_KEY, tmp_path)
        result = await smspipe("broadcast", "get", "424242", env=env, cwd=tmp_path)
    assert result.code == 1
    assert "getBroadcast: provider answered ERROR" in result.stderr
    assert "Traceback" not in result.output


async def test_incomplete_provider_settings_name_the_missing_variable(tmp_path: Path) -> None:
    """OGANGI_BASE_URL without the keys is a configuration error that says which is missing."""
    env = provider_env("http://127.0.0.1:9", THEIR_PRIVATE_KEY, tmp_path)
    del env["OGANGI_PUBLIC_KEY"]
    result = await smspipe("shortcodes", env=env, cwd=tmp_path)
    assert result.code == 1
    assert "OGANGI_PUBLIC_KEY" in result.stderr


async def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    """A typo is exit 2 with usage help, as every CLI does."""
    env = provider_env("http://127.0.0.1:9", THEIR_PRIVATE_KEY, tmp_path)
    result = await smspipe("shortcode", env=env, cwd=tmp_path)
    assert result.code == 2


@pytest.fixture
def sandbox_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OGANGI_", "SMSPIPE_"))}
    env.pop("REDIS_URL", None)
    env["COLUMNS"] = "200"
    return env


async def test_without_a_provider_the_embedded_sandbox_answers(
    tmp_path: Path, sandbox_env: dict[str, str]
) -> None:
    """No OGANGI_BASE_URL: a sandbox starts, says so in a banner, and `down` stops it."""
    try:
        result = await smspipe("shortcodes", env=sandbox_env, cwd=tmp_path)
        assert result.code == 0, result.output
        assert "SANDBOX: no SMS leave this machine" in result.stderr
        assert result.stdout.split() == ["55500"]
        again = await smspipe("shortcodes", "--json", env=sandbox_env, cwd=tmp_path)
        assert again.stdout.strip() == '["55500"]'
    finally:
        down = await smspipe("down", env=sandbox_env, cwd=tmp_path)
    assert "sandbox: stopped" in down.stdout
