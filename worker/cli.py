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
from worker import logs
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
        except Exception as exc:
            from jobs.readers import RecipientFileError  # pandas-heavy: imported only when needed

            if isinstance(exc, RecipientFileError):
                raise fail(str(exc)) from None
            raise

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


@broadcast_app.command("create")
@cli_errors
def broadcast_create(
    file: Path = typer.Argument(..., help="Recipient list (any format `send` reads)."),
    text: str = typer.Option(..., "--text", "-t", help="Message; {0}, {1}... are the columns."),
    sender: str | None = typer.Option(None, "--from", help="Short/long code to send from."),
    campaign: str | None = typer.Option(None, help="Campaign name shown by the provider."),
    at: str | None = typer.Option(None, help="Start time, 'YYYY-MM-DD HH:MM' (provider's zone)."),
    region: str | None = typer.Option(None, help="Default country of national numbers."),
    wait: bool = typer.Option(False, "--wait", help="Follow the broadcast until it ends."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a broadcast from FILE's valid rows."""
    from jobs.broadcast import json_recipients
    from jobs.recipients import prepare_recipients

    config = settings()
    prepared = prepare_recipients(
        file, text, region=region or config.smspipe_default_region
    )
    prepared.check_sendable()
    recipients = json_recipients(prepared.frame)
    start = parse_at(at)
    provider = provider_for(config)

    async def go() -> Broadcast:
        async with open_client(provider, config) as client:
            code = sender or config.ogangi_shortcode or await only_shortcode(client)
            created = await client.create_broadcast_from_json(
                recipients, shortcode=code, campaign=campaign, start=start
            )
            if not wait:
                return created
            return await follow_broadcast(client, created)

    s = prepared.summary
    err.print(
        f"{s.ready} recipients ({s.rejected} rejected, {s.duplicates} duplicates)", highlight=False
    )
    show_broadcast(run(go()), as_json)


async def only_shortcode(client: Any) -> str:
    codes = await client.get_shortcodes()
    if len(codes) != 1:
        raise ConfigError(
            f"the account has {len(codes)} shortcodes: choose one with --from or OGANGI_SHORTCODE"
        )
    return str(codes[0])


async def follow_broadcast(client: Any, broadcast: Broadcast) -> Broadcast:
    """Poll getBroadcast with a progress bar until the broadcast is final (or suspended)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("broadcast {task.fields[id]} {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(broadcast.status.value, id=broadcast.id, total=None)
        while True:
            broadcast = await client.get_broadcast(broadcast.id)
            progress.update(
                task,
                description=broadcast.status.value,
                total=broadcast.expected_messages,
                completed=broadcast.sent_messages or 0,
            )
            if broadcast.status.final or broadcast.status.value == "FORCED_SUSPENDED":
                return broadcast
            await asyncio.sleep(0.25)


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


# --- send jobs --------------------------------------------------------------------------------


@app.command()
@cli_errors
def send(
    file: Path = typer.Argument(..., help="Recipient list: .txt, .csv, .xlsx, .xls or .ods."),
    text: str = typer.Option(..., "--text", "-t", help="Message; {0}, {1}... are the columns."),
    sender: str | None = typer.Option(None, "--from", help="Short/long code to send from."),
    region: str | None = typer.Option(None, help="Default country of national numbers (US)."),
    phone_column: str | None = typer.Option(None, help="Phone column: header name or 1-based."),
    chunk_size: int | None = typer.Option(None, min=1, max=100_000, help="Recipients per call."),
    resend_unknown: bool = typer.Option(False, help="Re-send chunks of unknown fate."),
    wait: bool = typer.Option(False, "--wait", help="Show progress and wait for the end."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check the file; send nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Send one SMS to every valid number of FILE."""
    if not file.is_file():
        raise fail(f"{file}: no such file")
    config = settings()
    if dry_run:
        from worker.dryrun import dry_run as run_dry

        report = run_dry(file, text, config, region=region, phone_column=phone_column)
        print_dry_run(report, as_json)
        return
    from worker.sending import send_and_follow

    status = run(
        send_and_follow(
            config,
            file,
            text,
            sender=sender,
            region=region,
            phone_column=phone_column,
            chunk_size=chunk_size,
            resend_unknown=resend_unknown,
            wait=wait,
            console=None if as_json else err,
        )
    )
    print_status(status, as_json)
    if status["state"] == "failed":
        raise typer.Exit(EXIT_ERROR)


@app.command()
@cli_errors
def status(
    job: str = typer.Argument(..., metavar="JOB"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a job's state, counts and results file."""
    from worker.sending import fetch_status

    found = run(fetch_status(settings(), job))
    if found is None:
        raise fail(f"no job {job!r}")
    print_status(found, as_json)


@app.command("worker")
@cli_errors
def worker_command(
    burst: bool = typer.Option(False, help="Exit when the queue is empty."),
) -> None:
    """Run a worker: takes send and broadcast jobs from Redis until stopped (SIGTERM)."""
    from worker.sending import run_worker

    logs.configure("INFO")
    run_worker(settings(), burst=burst, console=err)


def print_status(status: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(status))
        return
    counts = status["counts"]
    table = Table(show_header=False, box=None)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("job", status["job"])
    table.add_row("state", status["state"])
    for key in ("sent", "rejected", "duplicate", "suppressed", "failed", "unknown"):
        table.add_row(key, str(counts.get(key, 0)))
    if status.get("results"):
        table.add_row("results", str(status["results"]))
    if status.get("error"):
        table.add_row("error", f"[red]{redact(str(status['error']))}[/]")
    out.print(table)


def print_dry_run(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report))
        return
    table = Table(show_header=False, box=None)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("file", f"{report['file']} ({report['format']})")
    table.add_row("rows", str(report["rows"]))
    table.add_row("ready", str(report["ready"]))
    rejected = ", ".join(f"{n} {why}" for why, n in report["rejected_by_reason"].items())
    table.add_row("rejected", f"{report['rejected']}" + (f" ({rejected})" if rejected else ""))
    table.add_row("duplicates", str(report["duplicates"]))
    table.add_row("suppressed", str(report["suppressed"]))
    encodings = ", ".join(f"{n} {name}" for name, n in report["encodings"].items())
    table.add_row("encodings", encodings or "-")
    table.add_row("segments", str(report["segments"]))
    table.add_row("results", report["results"])
    out.print("[bold]dry run[/]: nothing was sent")
    out.print(table)


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


@app.command()
@cli_errors
def demo() -> None:
    """Run the main job on embedded defaults (sandbox, embedded Redis, ./bucket)."""
    from worker.demo import run_demo

    raise typer.Exit(run_demo(out, err))


def parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--at {value!r} is not a date and time like '2026-12-01 09:00'") from None


def main() -> None:
    logs.configure("WARNING")
    app(prog_name="smspipe")


if __name__ == "__main__":
    sys.exit(main())
