"""`smspipe send` and `smspipe status` as a user runs them on a fresh machine."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from jobs.results import read_results
from tests.test_cli import smspipe

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def fresh(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An empty folder and an environment with no smspipe, Ogangi or Redis settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OGANGI_", "SMSPIPE_"))}
    env.pop("REDIS_URL", None)
    env["COLUMNS"] = "200"
    shutil.copy(EXAMPLES / "messy.xlsx", tmp_path / "messy.xlsx")
    return tmp_path, env


async def test_dry_run_counts_every_row_and_writes_a_results_file(
    fresh: tuple[Path, dict[str, str]],
) -> None:
    """--dry-run --json: the counts of the messy example, and one results line per row."""
    folder, env = fresh
    result = await smspipe(
        "send", "messy.xlsx", "--text", "Hi {0}", "--dry-run", "--json", env=env, cwd=folder
    )
    assert result.code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["rows"], report["ready"], report["duplicates"]) == (16, 11, 1)
    assert report["rejected_by_reason"] == {"EMPTY": 2, "INVALID_NUMBER": 1, "NOT_A_NUMBER": 1}
    results = read_results(report["results"])
    assert len(results) == 16 and set(results["state"]) == {"READY", "REJECTED", "DUPLICATE"}
    assert not (folder / ".smspipe" / "redis.json").exists()  # a dry run needs no Redis


async def test_dry_run_of_a_list_with_no_valid_row_exits_one(
    fresh: tuple[Path, dict[str, str]],
) -> None:
    """No sendable row: the summary, then one error line and exit 1."""
    folder, env = fresh
    (folder / "bad.csv").write_text("phone\n12\nabc\n")
    result = await smspipe("send", "bad.csv", "--text", "Hi", "--dry-run", env=env, cwd=folder)
    assert result.code == 1
    assert "bad.csv: no row can be sent" in result.stderr
    assert "Traceback" not in result.output


async def test_send_wait_on_a_fresh_machine_sends_and_reports(
    fresh: tuple[Path, dict[str, str]],
) -> None:
    """One command: embedded Redis and sandbox, the job done, servers stopped afterwards."""
    folder, env = fresh
    result = await smspipe(
        "send", "messy.xlsx", "--text", "Hi {0}", "--wait", "--json", env=env, cwd=folder
    )
    assert result.code == 0, result.output
    status = json.loads(result.stdout)
    assert status["state"] == "done"
    assert status["counts"] == {
        "sent": 11, "rejected": 4, "duplicate": 1, "suppressed": 0, "failed": 0, "unknown": 0
    }  # fmt: skip
    results = read_results(status["results"])
    assert len(results) == 16
    assert results.loc[results["state"] == "SENT", "message_id"].notna().all()
    assert not (folder / ".smspipe" / "redis.json").exists()
    assert not (folder / ".smspipe" / "sandbox.json").exists()

    again = await smspipe("status", status["job"], "--json", env=env, cwd=folder)
    assert again.code == 0, again.output
    assert json.loads(again.stdout)["counts"] == status["counts"]


async def test_a_bad_template_is_refused_before_anything_is_enqueued(
    fresh: tuple[Path, dict[str, str]],
) -> None:
    """{5} on a file with two parameter columns: exit 1 naming the placeholder, no job."""
    folder, env = fresh
    result = await smspipe("send", "messy.xlsx", "--text", "Hi {5}", "--wait", env=env, cwd=folder)
    assert result.code == 1
    assert "{5}" in result.stderr
    assert not (folder / "bucket" / "uploads").exists() or not any(
        (folder / "bucket" / "uploads").iterdir()
    )
    assert not (folder / ".smspipe" / "redis.json").exists()  # the Redis it woke is stopped
    assert not (folder / ".smspipe" / "sandbox.json").exists()
