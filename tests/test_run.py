"""``smspipe run`` and ``smspipe demo`` as a user runs them: real processes in a fresh folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from worker.embedded import free_port

TOKEN = "run-test-api-token-4b1d9c2e7f"
PRIVATE_KEY = "run-test-private-key-93e1aa"
SMSPIPE = [sys.executable, "-m", "worker.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    """The machine's environment without smspipe/Ogangi/Redis settings, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OGANGI_", "SMSPIPE_", "AWS_")) and k != "REDIS_URL"
    }
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout:g}s")


def http(method: str, url: str, body: bytes | None = None, **headers: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except OSError:
        return 0, None


def gone(pid: int) -> bool:
    """Not running: no such process, or only a zombie awaiting its reaper."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_run_takes_a_dropped_file_to_done_and_stops_everything_on_sigterm(tmp_path: Path) -> None:
    """Fresh folder: run, drop file + manifest, results and done/ appear; SIGTERM exits 0, clean."""
    port = free_port()
    env = clean_env(
        SMSPIPE_INTAKE_PORT=str(port),
        SMSPIPE_API_TOKEN=TOKEN,
        OGANGI_PRIVATE_KEY=PRIVATE_KEY,  # the embedded sandbox takes it: it must never be logged
        SMSPIPE_WATCH_POLL_SECONDS="0.1",
        SMSPIPE_LOG_FORMAT="json",
    )
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([*SMSPIPE, "run"], cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        base = f"http://127.0.0.1:{port}"
        until(lambda: http("GET", f"{base}/healthz")[0] == 200, 30, "intake up")
        servers = {n: json.loads((tmp_path / ".smspipe" / f"{n}.json").read_text())["pid"]
                   for n in ("redis", "sandbox")}  # fmt: skip
        inbox = tmp_path / "bucket" / "inbox"
        (inbox / "recipients.json").write_text('{"text": "Hi {0}"}')
        shutil.copy(REPO / "examples" / "recipients.xlsx", inbox / ".recipients.xlsx.part")
        (inbox / ".recipients.xlsx.part").rename(inbox / "recipients.xlsx")
        done = until(lambda: sorted((tmp_path / "bucket" / "done").iterdir()), 30, "input filed")
        unauthorized = http("GET", f"{base}/v1/jobs/x", Authorization="Bearer wrong-token")
        job_id = done[0].name.split(".")[1]
        status = http("GET", f"{base}/v1/jobs/{job_id}", Authorization=f"Bearer {TOKEN}")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)

    assert code == 0
    assert [p.name for p in done] == [f"recipients.{job_id}.json", f"recipients.{job_id}.xlsx"]
    results = tmp_path / "bucket" / "results" / f"recipients.{job_id}.csv"
    assert len(results.read_text(encoding="utf-8-sig").splitlines()) == 1 + 12  # every row
    assert status[0] == 200 and status[1]["state"] == "done" and status[1]["counts"]["sent"] == 8
    assert unauthorized[0] == 401
    assert all(gone(pid) for pid in servers.values()), servers
    assert not (tmp_path / ".smspipe" / "redis.json").exists()
    text = log_path.read_text()
    assert TOKEN not in text and PRIVATE_KEY not in text
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    taken = [e for e in events if e["event"] == "file taken"]
    assert taken and taken[0]["job"] == job_id and taken[0]["file"] == "inbox/recipients.xlsx"


def test_demo_in_a_fresh_folder_exits_zero_and_names_a_complete_results_file(
    tmp_path: Path,
) -> None:
    """`smspipe demo` beside a copy of examples/: exit 0, a results file with one line per row."""
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    env = clean_env(OGANGI_BASE_URL="https://example.invalid/never-used")
    done = subprocess.run(
        [*SMSPIPE, "demo"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    named = [line for line in done.stdout.splitlines() if "results: " in line]
    results = Path(named[0].split("results: ", 1)[1].strip())
    assert results.is_file() and results.is_relative_to(tmp_path / "bucket" / "results")
    import pandas as pd

    rows = len(pd.read_excel(tmp_path / "examples" / "recipients.xlsx", engine="calamine"))
    assert len(results.read_text(encoding="utf-8-sig").splitlines()) == 1 + rows
    assert "SANDBOX: no SMS leave this machine" in done.stdout
    assert not (tmp_path / ".smspipe" / "redis.json").exists()
    assert not (tmp_path / ".smspipe" / "sandbox.json").exists()


def test_docker_compose_defines_the_production_services() -> None:
    """docker-compose.yml: redis with AOF, minio + bucket, scalable worker, watcher, intake,
    the sandbox only under its profile; every command is a real smspipe command and every
    setting a real one. (`docker compose config` needs Docker's compose plugin; this checks
    the file itself.)"""
    import typer.main
    import yaml

    from worker.cli import app
    from worker.settings import Settings

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {
        "redis", "minio", "createbucket", "sandbox", "worker", "watcher", "intake",
    }  # fmt: skip
    assert {"--appendonly", "yes"} <= set(services["redis"]["command"])
    assert "mc mb" in " ".join(services["createbucket"]["entrypoint"])
    assert services["sandbox"]["profiles"] == ["sandbox"]
    assert all("profiles" not in s for n, s in services.items() if n != "sandbox")
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=N works
    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    ours = ("sandbox", "worker", "watcher", "intake")
    assert {services[n]["command"][0] for n in ours} <= commands
    assert all(services[n]["build"] == "." for n in ours)
    known = {name.upper() for name in Settings.model_fields}
    known |= {"SMSPIPE_LOG_FORMAT", "SMSPIPE_LOG_LEVEL"}  # read by worker.logs
    for name in ours:
        env = services[name]["environment"]
        unknown = {k for k in env if k.startswith(("SMSPIPE_", "OGANGI_")) and k not in known}
        assert not unknown, (name, unknown)
    assert services["intake"]["environment"]["SMSPIPE_API_TOKEN"] == "${SMSPIPE_API_TOKEN:-}"


def test_the_dockerfile_installs_the_project_on_python_3_11_slim() -> None:
    """One image for every role: python:3.11-slim, `pip install`, `smspipe` as entrypoint."""
    dockerfile = (REPO / "Dockerfile").read_text()
    stages = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert stages and all(stage == "python:3.11-slim" for stage in stages)
    assert "pip wheel --wheel-dir /wheels ." in dockerfile
    assert 'ENTRYPOINT ["smspipe"]' in dockerfile
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".smspipe", "bucket"} <= set(ignored)


def test_docker_compose_config_accepts_the_file() -> None:
    """Where a Compose CLI is installed, `compose config` validates the file (it needs no engine)."""
    if shutil.which("docker-compose") is None:
        pytest.skip("no docker-compose CLI on this machine")
    done = subprocess.run(
        ["docker-compose", "--profile", "sandbox", "config", "-q"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
