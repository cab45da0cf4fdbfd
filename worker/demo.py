"""``make demo``: the main job on embedded defaults, start to finish, on a fresh machine.

Always the sandbox (whatever OGANGI_* says: a demo must never send a real SMS), an embedded
redis-server under ``.smspipe/``, the ``bucket/`` folder. Servers it starts, it stops.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console
from rich.table import Table

from jobs.broadcast import json_recipients
from jobs.recipients import prepare_recipients
from jobs.results import read_results
from ogangi.models import Broadcast
from worker.embedded import stop_recorded
from worker.provider import SANDBOX_BANNER, open_client, resolve_provider
from worker.sending import send_and_follow
from worker.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "messy.xlsx"
TEXT = "Hola {0}, tu código es {1}"


def demo_settings() -> Settings:
    return Settings(
        ogangi_base_url=None,
        ogangi_instance_id=None,
        ogangi_public_key=None,
        ogangi_private_key=None,
        ogangi_username=None,
        ogangi_shortcode=None,
        redis_url=None,
        smspipe_chunk_size=5,
    )


def run_demo(out: Console, err: Console, example: Path = EXAMPLE) -> int:
    settings = demo_settings()
    home = settings.smspipe_home
    sandbox_running = (home / "sandbox.json").exists()
    try:
        return asyncio.run(_demo(settings, out, err, example))
    finally:
        if not sandbox_running:
            stop_recorded(home, "sandbox")
        stop_recorded(home, "redis")


async def _demo(settings: Settings, out: Console, err: Console, example: Path) -> int:
    out.rule("smspipe demo")
    provider = await asyncio.to_thread(resolve_provider, settings)
    out.print(f"[bold yellow]{SANDBOX_BANNER}[/] at {provider.base_url}", highlight=False)
    async with open_client(provider, settings) as client:
        codes = await client.get_shortcodes()
    out.print(f"1. account shortcodes: {', '.join(codes)}", highlight=False)

    out.print(f"2. sending [bold]{example.name}[/] with text {TEXT!r}", highlight=False)
    status = await send_and_follow(settings, example, TEXT, wait=True, console=err)
    counts = status["counts"]
    summary = Table("state", "rows", box=None)
    for state, n in counts.items():
        summary.add_row(state.upper(), str(n))
    out.print(summary)
    results = read_results(status["results"], restore=True)
    out.print(f"   results ({len(results)} rows, one per input row): {status['results']}")
    shown = results[["row", "input", "msisdn", "state", "reason"]].astype("string").fillna("")
    out.print(shown.to_string(index=False), highlight=False)

    out.print("3. the same list as a broadcast, followed until the provider says DONE")
    prepared = await asyncio.to_thread(
        prepare_recipients, example, TEXT, region=settings.smspipe_default_region
    )
    provider = await asyncio.to_thread(resolve_provider, settings)
    async with open_client(provider, settings) as client:
        broadcast = await client.create_broadcast_from_json(
            json_recipients(prepared.frame), shortcode=codes[0], campaign="smspipe demo"
        )
        out.print(f"   created broadcast {broadcast.id}: {broadcast.status.value}")
        while not broadcast.status.final:
            await asyncio.sleep(0.2)
            broadcast = await client.get_broadcast(broadcast.id)
            _progress(out, broadcast)
    ok = status["state"] == "done" and broadcast.status.value == "DONE"
    out.rule("demo finished" if ok else "demo FAILED")
    return 0 if ok else 1


def _progress(out: Console, broadcast: Broadcast) -> None:
    out.print(
        f"   broadcast {broadcast.id}: {broadcast.status.value} "
        f"{broadcast.sent_messages}/{broadcast.expected_messages}",
        highlight=False,
    )
