"""Running the sandbox: inside a test's event loop, or as a blocking server process."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TextIO

import pyarrow as pa
from aiohttp import web

from ogangi.models import Credentials
from ogangi.sandbox.app import build_app
from ogangi.sandbox.config import SandboxConfig
from ogangi.sandbox.control import BANNER
from ogangi.sandbox.ledger import Ledger
from ogangi.sandbox.state import SandboxState

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: Calls stalled by a timeout fault must not hold up shutdown for long.
_SHUTDOWN_TIMEOUT = 0.5


@dataclass(frozen=True)
class Sandbox:
    """A running sandbox: where it listens and everything it remembers."""

    base_url: str
    state: SandboxState

    @property
    def config(self) -> SandboxConfig:
        return self.state.config

    @property
    def ledger(self) -> Ledger:
        return self.state.ledger

    def credentials(self, workspace: int = 0) -> Credentials:
        return self.config.workspaces[workspace].credentials()


@asynccontextmanager
async def running_sandbox(
    config: SandboxConfig | None = None,
    host: str = DEFAULT_HOST,
    port: int = 0,
    *,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[Sandbox]:
    """Serve in the current event loop; ``port=0`` picks a free port (see ``base_url``)."""
    state = SandboxState(config if config is not None else SandboxConfig(), clock)
    runner = web.AppRunner(build_app(state), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
    try:
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield Sandbox(f"http://{shown}:{bound_port}", state)
    finally:
        await runner.cleanup()
        state.ledger.close()


def serve(
    config: SandboxConfig,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    on_ready: Callable[[Sandbox], None] | None = None,
    out: TextIO = sys.stdout,
) -> None:
    """Block serving until SIGINT/SIGTERM. ``on_ready`` gets the running sandbox (e.g. to
    record its port); the banner and URL go to ``out``, never the private key.

    Meant to own its process: it relaxes the garbage collector, because a file that takes the
    row-by-row reading allocates ~100 000 short-lived objects per 10 000 rows and default
    thresholds would collect hundreds of times per request (measured: ~20% of the sandbox's
    CPU). It also gives Arrow the system allocator unless ``ARROW_DEFAULT_MEMORY_POOL`` names
    one: the default (mimalloc) hands freed pages back to the OS between two uploads, so each
    upload faulted its megabytes of buffers in again (measured: twice the page faults, ~0.5-2 ms
    more CPU per 10 000-row upload).
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        pa.set_memory_pool(pa.system_memory_pool())
    with suppress(KeyboardInterrupt):
        asyncio.run(_serve(config, host, port, on_ready, out))


async def _serve(
    config: SandboxConfig,
    host: str,
    port: int,
    on_ready: Callable[[Sandbox], None] | None,
    out: TextIO,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with running_sandbox(config, host, port) as sandbox:
        print(describe(sandbox), file=out, flush=True)
        if on_ready is not None:
            on_ready(sandbox)
        await stop.wait()


def describe(sandbox: Sandbox) -> str:
    """The startup banner: what a user needs to point a client here, without secrets."""
    lines = [BANNER, f"Ogangi sandbox listening on {sandbox.base_url}"]
    for ws in sandbox.config.workspaces:
        users = ", ".join(f"{user} [{' '.join(codes)}]" for user, codes in ws.users.items())
        lines.append(f"  instance {ws.instance_id}, public key {ws.public_key}, users: {users}")
    if sandbox.config.ledger_path is not None:
        lines.append(f"  ledger: {sandbox.config.ledger_path}")
    host = sandbox.base_url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")
    if not _is_loopback(host):
        lines.append("  WARNING: listening beyond loopback; the control API takes no credentials")
    return "\n".join(lines)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
