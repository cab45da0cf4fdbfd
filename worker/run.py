"""``smspipe run``: the whole pipeline for one machine, in one process tree.

This process runs a worker, the bucket watcher and the HTTP intake side by side on one event
loop; Redis and the sandbox are child processes started only when not configured (the embedded
defaults, ``worker.embedded``). SIGTERM or Ctrl-C stops it in order: the intake stops taking
requests, the watcher stops looking, the worker finishes the chunks in flight (up to its
completion wait), then the embedded servers this run started are stopped. Servers that were
already running (another smspipe process started them) are left alone.

If one part dies (Redis gone for good, the port taken), the others are stopped too and the run
exits non-zero, so a supervisor (systemd, docker) restarts the whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from arq import Worker

from worker.app import build_worker, open_pool
from worker.embedded import stop_recorded
from worker.intake import running_intake
from worker.provider import Provider, resolve_provider
from worker.sending import Connection, connect
from worker.settings import Settings
from worker.storage import Bucket
from worker.watcher import watch

log = structlog.get_logger("smspipe.run")


@dataclass(frozen=True)
class RunInfo:
    """Where everything is, once it all runs (for the banner, the demo and tests)."""

    redis_url: str
    redis_embedded: bool
    provider_url: str
    sandbox: bool
    bucket: str
    intake_url: str | None


async def run_all(
    settings: Settings,
    stop: asyncio.Event,
    *,
    intake: bool = True,
    host: str | None = None,
    port: int | None = None,
    on_ready: Callable[[RunInfo], None] | None = None,
) -> int:
    """Run until ``stop`` is set (0) or a part fails (1); always stops what it started."""
    connection = await asyncio.to_thread(connect, settings)
    provider: Provider | None = None
    try:
        provider = await asyncio.to_thread(resolve_provider, settings)
        return await _serve(settings, stop, connection, provider, intake, host, port, on_ready)
    finally:
        await asyncio.to_thread(_release, settings, connection, provider)


async def _serve(
    settings: Settings,
    stop: asyncio.Event,
    connection: Connection,
    provider: Provider,
    intake: bool,
    host: str | None,
    port: int | None,
    on_ready: Callable[[RunInfo], None] | None,
) -> int:
    pool = await open_pool(connection.url)
    worker = build_worker(settings, connection.url, handle_signals=False)
    parts: dict[str, asyncio.Task[None]] = {}
    try:
        parts["worker"] = asyncio.create_task(worker.async_run(), name="worker")
        parts["watcher"] = asyncio.create_task(watch(settings, pool, stop), name="watcher")
        async with contextlib.AsyncExitStack() as stack:
            url = None
            if intake:
                url = await stack.enter_async_context(
                    running_intake(settings, pool, host=host, port=port)
                )
            info = RunInfo(
                redis_url=connection.url,
                redis_embedded=connection.embedded,
                provider_url=provider.base_url,
                sandbox=provider.sandbox,
                bucket=Bucket.from_setting(settings.smspipe_bucket).location,
                intake_url=url,
            )
            log.info("smspipe running", **{k: v for k, v in info.__dict__.items() if v})
            if on_ready is not None:
                on_ready(info)
            failed = await _until_stop_or_failure(stop, parts)
        return 1 if failed else 0
    finally:
        stop.set()
        # Bounded: with Redis gone for good, arq's and redis-py's retries would wait minutes.
        grace = min(settings.smspipe_job_timeout, 30.0) + 10.0
        try:
            await asyncio.wait_for(_stop_parts(worker, parts, pool), grace)
        except TimeoutError:
            log.error("parts did not stop in time; leaving anyway", seconds=grace)
        log.info("smspipe stopped")


async def _stop_parts(worker: Worker, parts: dict[str, asyncio.Task[None]], pool: Any) -> None:
    await _stop_worker(worker, parts.get("worker"))
    if "watcher" in parts:
        with contextlib.suppress(Exception):
            await parts["watcher"]
    with contextlib.suppress(Exception):
        await pool.aclose()


async def _until_stop_or_failure(stop: asyncio.Event, parts: dict[str, asyncio.Task[None]]) -> bool:
    """Wait for ``stop``; True if a part ended on its own first (that is a failure)."""
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait(
            [stopping, *parts.values()], return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopping.cancel()
    if stop.is_set():
        return False
    for name, task in parts.items():
        if task in done:
            error = task.exception() if not task.cancelled() else None
            log.error("a part of smspipe run stopped", part=name, error=repr(error))
            return True
    return False


async def _stop_worker(worker: Worker, task: asyncio.Task[None] | None) -> None:
    """Stop taking jobs, let the ones running finish (up to the completion wait), close."""
    if task is None:
        return
    if not task.done():
        worker.handle_sig_wait_for_completion(signal.SIGTERM)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    with contextlib.suppress(Exception):
        await worker.close()


def _release(settings: Settings, connection: Connection, provider: Provider | None) -> None:
    if provider is not None and provider.sandbox and provider.started:
        _stop_child(settings.smspipe_home, "sandbox")
    if connection.started:
        _stop_child(settings.smspipe_home, "redis")


def _stop_child(home: Path, name: str) -> None:
    """Stop an embedded server this process started, and reap it (no zombie left behind)."""
    try:
        pid = int(json.loads((home / f"{name}.json").read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        pid = None
    stop_recorded(home, name)
    if pid is not None:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT (Ctrl-C) ask for a clean stop; a second one is not needed."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


# --- the commands -----------------------------------------------------------------------------


def banner(info: RunInfo) -> None:
    """What a person at the terminal needs: where to drop files, where the API is."""
    from rich.console import Console

    from worker.provider import SANDBOX_BANNER

    console = Console(stderr=True)
    if info.sandbox:
        console.print(f"[bold yellow]{SANDBOX_BANNER}[/] ({info.provider_url})", highlight=False)
    console.print(f"smspipe running: drop files into {info.bucket}/inbox/", highlight=False)
    if info.intake_url:
        console.print(f"intake: {info.intake_url} (GET /openapi.json)", highlight=False)
    console.print("Ctrl-C or SIGTERM stops everything started here", highlight=False)


async def run_until_stopped(
    settings: Settings, *, host: str | None = None, port: int | None = None, intake: bool = True
) -> int:
    """``smspipe run``."""
    stop = asyncio.Event()
    install_signal_handlers(stop)
    return await run_all(settings, stop, intake=intake, host=host, port=port, on_ready=banner)


async def watch_until_stopped(settings: Settings) -> int:
    """``smspipe watch``: the watcher alone (workers run elsewhere on the same Redis).

    Like ``smspipe worker``, it leaves an embedded Redis it woke running for the other
    processes of this directory (``smspipe down`` stops it); only ``run`` owns what it starts.
    """
    stop = asyncio.Event()
    install_signal_handlers(stop)
    connection = await asyncio.to_thread(connect, settings)
    pool = await open_pool(connection.url)
    try:
        await watch(settings, pool, stop)
    finally:
        await pool.aclose()
    return 0


async def serve_until_stopped(
    settings: Settings, *, host: str | None = None, port: int | None = None
) -> int:
    """``smspipe serve``: the intake alone."""
    stop = asyncio.Event()
    install_signal_handlers(stop)
    connection = await asyncio.to_thread(connect, settings)
    pool = await open_pool(connection.url)
    try:
        async with running_intake(settings, pool, host=host, port=port):
            await stop.wait()
    finally:
        await pool.aclose()
    return 0
