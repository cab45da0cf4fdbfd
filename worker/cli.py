"""The ``smspipe`` command line (typer + rich).

Every failure ends as one plain line on stderr and a non-zero exit, never a traceback: exit 1 for
errors the user must fix, 75 (EX_TEMPFAIL) for transient provider trouble worth retrying.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ogangi.errors import OgangiError
from ogangi.models import Broadcast
from worker.embedded import EmbeddedError, stop_recorded
from worker.provider import SANDBOX_BANNER, Provider, open_client, resolve_provider
from worker.redact import redact
from worker.settings import ConfigError, Settings

EXIT_ERROR = 1
EXIT_TEMPFAIL = 75

app = typer.Typer(
    name="smspipe",
    help="Bulk SMS through the Ogangi API: send files, run broadcasts, run the workers.",
    no_args_is_help=True,
    # Rich tracebacks print local variables, and locals can hold keys: never show them.
    pretty_exceptions_enable=False,
    add_completion=False,
)
broadcast_app = typer.Typer(help="Create and control broadcasts.", no_args_is_help=True)
app.add_typer(broadcast_app, name="broadcast")

out = Console()
err = Console(stderr=True)

T = TypeVar("T")


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    err.print(f"[bold red]error:[/] {redact(message)}", highlight=False, markup=True)
    return typer.Exit(code)


def cli_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Turn every expected failure into one clear line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except OgangiError as exc:
            raise fail(str(exc), EXIT_TEMPFAIL if exc.retryable else EXIT_ERROR) from None
        except (ConfigError, EmbeddedError) as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError names the variable and the problem
        raise ConfigError(f"bad configuration: {exc}") from None


def provider_for(config: Settings) -> Provider:
    provider = resolve_provider(config)
    if provider.sandbox:
        err.print(f"[bold yellow]{SANDBOX_BANNER}[/] ({provider.base_url})", highlight=False)
    return provider


# --- provider commands ------------------------------------------------------------------------


@app.command()
@cli_errors
def shortcodes(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """List the short/long codes of the configured account."""
    config = settings()
    provider = provider_for(config)

    async def go() -> list[str]:
        async with open_client(provider, config) as client:
            return await client.get_shortcodes()

    codes = run(go())
    if as_json:
        print(json.dumps(codes))
        return
    for code in codes:
        out.print(code, highlight=False)


def broadcast_dict(b: Broadcast) -> dict[str, Any]:
    return {
        "id": b.id,
        "status": b.status.value,
        "raw_status": b.raw_status,
        "text": b.text,
        "start_date": b.start_date.isoformat() if b.start_date else None,
        "end_date": b.end_date.isoformat() if b.end_date else None,
        "expected_messages": b.expected_messages,
        "sent_messages": b.sent_messages,
        "shortcode": b.shortcode,
    }


def show_broadcast(b: Broadcast, as_json: bool) -> None:
    if as_json:
        print(json.dumps(broadcast_dict(b)))
        return
    table = Table(show_header=False, box=None)
    for key, value in broadcast_dict(b).items():
        table.add_row(key, "" if value is None else str(value))
    out.print(table)


def _broadcast_call(method: str, broadcast_id: int, as_json: bool) -> None:
    config = settings()
    provider = provider_for(config)

    async def go() -> Any:
        async with open_client(provider, config) as client:
            return await getattr(client, method)(broadcast_id)

    result = run(go())
    if isinstance(result, Broadcast):
        show_broadcast(result, as_json)
    elif as_json:
        print(json.dumps({"id": broadcast_id, "deleted": bool(result.successful)}))
    else:
        out.print(f"broadcast {broadcast_id}: {result.message or 'deleted'}", highlight=False)


@broadcast_app.command("get")
@cli_errors
def broadcast_get(
    broadcast_id: int = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a broadcast's state and progress."""
    _broadcast_call("get_broadcast", broadcast_id, as_json)


@broadcast_app.command("suspend")
@cli_errors
def broadcast_suspend(
    broadcast_id: int = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Pause a sending or scheduled broadcast."""
    _broadcast_call("suspend_broadcast", broadcast_id, as_json)


@broadcast_app.command("resume")
@cli_errors
def broadcast_resume(
    broadcast_id: int = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Resume a suspended broadcast."""
    _broadcast_call("resume_broadcast", broadcast_id, as_json)


@broadcast_app.command("stop")
@cli_errors
def broadcast_stop(
    broadcast_id: int = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Stop a broadcast for good (it ends ABORTED)."""
    _broadcast_call("stop_broadcast", broadcast_id, as_json)


@broadcast_app.command("delete")
@cli_errors
def broadcast_delete(
    broadcast_id: int = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Delete a broadcast (a sending one is aborted first)."""
    _broadcast_call("delete_broadcast", broadcast_id, as_json)


# --- embedded servers -------------------------------------------------------------------------


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def sandbox(ctx: typer.Context) -> None:
    """Run the bundled Ogangi sandbox in the foreground (--help lists its options)."""
    from ogangi.sandbox.cli import main as sandbox_main

    sandbox_main(ctx.args)


@app.command()
def down() -> None:
    """Stop the embedded redis-server and sandbox this directory started."""
    home = Settings().smspipe_home
    for name in ("sandbox", "redis"):
        stopped = stop_recorded(home, name)
        out.print(f"{name}: {'stopped' if stopped else 'not running'}", highlight=False)


def parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--at {value!r} is not a date and time like '2026-12-01 09:00'") from None


def main() -> None:
    app(prog_name="smspipe")


if __name__ == "__main__":
    sys.exit(main())
