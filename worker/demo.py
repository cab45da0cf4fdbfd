"""``make demo`` / ``smspipe demo``: the real path a file takes, start to finish, on one machine.

It runs what ``smspipe run`` runs (an embedded redis-server under ``.smspipe/``, the sandbox, a
worker, the bucket watcher, the intake), drops ``examples/recipients.xlsx`` and its manifest
``examples/recipients.json`` into ``bucket/inbox/`` as a person would, waits for the job, prints
its summary and the first lines of its results file, and stops everything it started.

Always the sandbox: every ``OGANGI_*`` variable is dropped first, so a configured provider is
never used (a demo must never send a real SMS). The same file with the same settings is the same
job: a second demo reports the first one's results instead of sending again.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from jobs.payloads import content_digest, send_job_id
from worker import keys
from worker.app import open_pool
from worker.jobstore import COUNTS, JobStore
from worker.manifest import parse_manifest, resolve
from worker.provider import SANDBOX_BANNER
from worker.run import RunInfo, run_all
from worker.settings import Settings

REPO_EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DATA = "recipients.xlsx"
MANIFEST = "recipients.json"
TIMEOUT_SECONDS = 120.0
PREVIEW_LINES = 21  # the header and up to 20 rows: the whole example


def say(out: Console, text: object, *, markup: bool = True) -> None:
    """One line as written: no highlighting, no wrapping (paths stay whole for copy-paste)."""
    out.print(text, highlight=False, soft_wrap=True, markup=markup)


def examples_folder() -> Path:
    """``./examples`` when it holds the demo files, else the repository's."""
    local = Path("examples")
    return local if (local / DATA).is_file() and (local / MANIFEST).is_file() else REPO_EXAMPLES


def demo_settings() -> Settings:
    """Embedded everything, in the current directory; never a real provider."""
    for name in list(os.environ):
        if name.startswith("OGANGI_"):
            del os.environ[name]  # also keeps them from the sandbox process we may start
    return Settings(
        redis_url=None,
        smspipe_home=Path(".smspipe"),
        smspipe_bucket="bucket",
        smspipe_default_text=None,
        smspipe_watch_poll_seconds=0.25,
    )


def run_demo(out: Console, err: Console, examples: Path | None = None) -> int:
    return asyncio.run(_demo(demo_settings(), out, err, examples or examples_folder()))


async def _demo(settings: Settings, out: Console, err: Console, examples: Path) -> int:
    out.rule("smspipe demo")
    data = (examples / DATA).read_bytes()
    manifest = (examples / MANIFEST).read_bytes()
    options = resolve(parse_manifest(manifest, MANIFEST), None, f"inbox/{DATA}").send_options()
    job_id = send_job_id(content_digest(data), options)

    stop = asyncio.Event()
    ready: asyncio.Future[RunInfo] = asyncio.get_running_loop().create_future()
    running = asyncio.create_task(
        run_all(settings, stop, port=0, on_ready=lambda info: ready.set_result(info))
    )
    try:
        first: list[asyncio.Future[Any]] = [ready, running]
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            await running  # it failed before it was ready: let its error through
            return 1
        info = ready.result()
        _show_start(out, info)
        status = await _drop_and_wait(settings, info, out, job_id, data, manifest, examples)
    finally:
        stop.set()
        code = await running
    ok = status is not None and status.get("state") == "done" and code == 0
    if status is not None:
        ok = _show_outcome(out, status) and ok
    out.rule("demo finished: everything it started is stopped" if ok else "demo FAILED")
    return 0 if ok else 1


def _show_start(out: Console, info: RunInfo) -> None:
    say(out, f"[bold yellow]{SANDBOX_BANNER}[/] (sandbox at {info.provider_url})")
    where = "embedded redis-server" if info.redis_embedded else "redis"
    parts = f"{where}, worker, watcher on {info.bucket}/, intake at {info.intake_url}"
    say(out, f"1. running: {parts}")


async def _drop_and_wait(
    settings: Settings,
    info: RunInfo,
    out: Console,
    job_id: str,
    data: bytes,
    manifest: bytes,
    examples: Path,
) -> dict[str, Any] | None:
    inbox = Path(info.bucket) / "inbox"
    pool = await open_pool(info.redis_url)
    try:
        earlier = await JobStore(pool).exists(job_id)
        (inbox / MANIFEST).write_bytes(manifest)
        partial = inbox / f".{DATA}.part"  # a dot name: the watcher leaves it until renamed
        partial.write_bytes(data)
        partial.rename(inbox / DATA)
        say(out, f"2. dropped {examples / DATA} and {MANIFEST} into {inbox}/")
        if earlier:
            say(out, f"   (an earlier demo ran job {job_id}: same file and settings, same job;")
            say(out, "   nothing is sent twice: its results are shown)")
        status = await _wait(pool, job_id, inbox, out)
    finally:
        await pool.aclose()
    return status


async def _wait(pool: Any, job_id: str, inbox: Path, out: Console) -> dict[str, Any] | None:
    """Until the job is final and the watcher has filed its input away (done/ or failed/)."""
    store = JobStore(pool)
    shown = None
    deadline = asyncio.get_running_loop().time() + TIMEOUT_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        summary = await store.get(job_id)
        state = summary.get("state") if summary else "waiting for the watcher"
        if state != shown:
            say(out, f"   job {job_id}: {state}")
            shown = state
        filed = not (inbox / DATA).exists() and not await pool.hexists(
            keys.watcher_pending(), job_id
        )
        if summary and state in ("done", "failed") and filed:
            return summary
        await asyncio.sleep(0.1)
    say(out, f"[red]the job did not finish within {TIMEOUT_SECONDS:g} s[/]")
    return None


def _show_outcome(out: Console, summary: dict[str, str]) -> bool:
    table = Table("state", "rows", box=None, title="3. summary", title_justify="left")
    for state in COUNTS:
        table.add_row(state.upper(), summary.get(state, "0"))
    out.print(table)
    if summary.get("error"):
        say(out, f"[red]error:[/] {summary['error']}")
    results = summary.get("results")
    if not results or not Path(results).is_file():
        say(out, f"[red]no results file[/] ({results or 'none recorded'})")
        return False
    lines = Path(results).read_text(encoding="utf-8-sig").splitlines()
    say(out, f"4. results: {results}")
    say(out, f"   {len(lines) - 1} rows, one line per input row:")
    for line in lines[:PREVIEW_LINES]:
        say(out, f"   {line}", markup=False)
    if summary.get("input"):
        say(out, f"5. the input went to {summary['input']}")
    say(out, "   `smspipe run` keeps all this running: drop more files into bucket/inbox/")
    return True
