"""The ``smspipe`` command line (typer + rich).

Every failure ends as one plain line on stderr and a non-zero exit, never a traceback: exit 1 for
errors the user must fix, 75 (EX_TEMPFAIL) for transient provider trouble worth retrying.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
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
err = Console(stderr=True, soft_wrap=True)

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
            from jobs.broadcast_schedule import BroadcastInputError

            if isinstance(exc, BroadcastInputError):
                raise fail(str(exc)) from None
            raise

    return wrapper


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:  # it names the variable and the problem
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
    campaign: str | None = typer.Option(None, help="Campaign name (default: the file's name)."),
    at: str | None = typer.Option(None, help="Start time, 'YYYY-MM-DD HH:MM' (default: now)."),
    tz: str | None = typer.Option(None, help="Zone of --at (default SMSPIPE_TIMEZONE, UTC)."),
    region: str | None = typer.Option(None, help="Default country of national numbers."),
    phone_column: str | None = typer.Option(None, help="Phone column: header name or 1-based."),
    wait: bool = typer.Option(False, "--wait", help="Follow the job until its broadcasts end."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Create broadcasts of FILE's valid rows as a job (split when over the cap)."""
    if not file.is_file():
        raise fail(f"{file}: no such file")
    from worker.broadcasting import create_and_follow

    config = settings()
    if config.uses_sandbox:
        err.print(f"[bold yellow]{SANDBOX_BANNER}[/]", highlight=False)
    status = run(
        create_and_follow(
            config,
            file,
            text,
            sender=sender,
            campaign=campaign,
            at=at,
            tz=tz,
            region=region,
            phone_column=phone_column,
            wait=wait,
            console=None if as_json else err,
        )
    )
    print_status(status, as_json)
    if status["state"] == "failed":
        raise typer.Exit(EXIT_ERROR)


@broadcast_app.command("get")
@cli_errors
def broadcast_get(
    broadcast_id: int = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a broadcast's state and progress (straight from the provider)."""
    _broadcast_call("get_broadcast", broadcast_id, as_json)


def _broadcast_action(action: str, target: str, as_json: bool) -> None:
    from worker.broadcasting import act

    config = settings()
    if config.uses_sandbox:
        err.print(f"[bold yellow]{SANDBOX_BANNER}[/]", highlight=False)
    results = run(act(config, target, action))
    if as_json:
        print(json.dumps(results))
        return
    for r in results:
        job = f" (job {r['job']})" if r["job"] else ""
        sent = f", {r['sent']} of {r['expected']} sent" if r["sent"] is not None else ""
        out.print(f"broadcast {r['broadcast']}{job}: {r['status']}{sent}", highlight=False)


TARGET_HELP = "A broadcast id, or a broadcast job id (acts on its open broadcasts)."


@broadcast_app.command("suspend")
@cli_errors
def broadcast_suspend(
    target: str = typer.Argument(..., metavar="ID", help=TARGET_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Pause a sending or scheduled broadcast."""
    _broadcast_action("suspend", target, as_json)


@broadcast_app.command("resume")
@cli_errors
def broadcast_resume(
    target: str = typer.Argument(..., metavar="ID", help=TARGET_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Resume a suspended broadcast."""
    _broadcast_action("resume", target, as_json)


@broadcast_app.command("stop")
@cli_errors
def broadcast_stop(
    target: str = typer.Argument(..., metavar="ID", help=TARGET_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Stop a broadcast for good (it ends ABORTED)."""
    _broadcast_action("stop", target, as_json)


@broadcast_app.command("delete")
@cli_errors
def broadcast_delete(
    target: str = typer.Argument(..., metavar="ID", help=TARGET_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Delete a broadcast (a sending one is aborted first)."""
    _broadcast_action("delete", target, as_json)


@broadcast_app.command("history")
@cli_errors
def broadcast_history_command(
    job: str = typer.Argument(..., metavar="JOB"),
    limit: int | None = typer.Option(None, min=1, help="Only the newest N events."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A broadcast job's recorded events: creates, getBroadcast readings, actions, the end."""
    from worker.broadcasting import history

    events = run(history(settings(), job, limit))
    if not events:
        raise fail(f"no history for job {job!r}")
    if as_json:
        print(json.dumps(events))
        return
    for event in events:
        rest = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("at", "event"))
        out.print(f"{event['at']} {event['event']:<13} {redact(rest)}", highlight=False)


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
        if not report["ready"]:  # the results file says why, row by row
            raise fail(f"{file.name}: no row can be sent; see {report['results']}")
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
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", help="Serve this worker's Prometheus /metrics on this port."
    ),
) -> None:
    """Run a worker: takes send and broadcast jobs from Redis until stopped (SIGTERM)."""
    from worker.sending import run_worker

    logs.configure("INFO")
    config = settings()
    start_metrics(config, metrics_port)
    run_worker(config, burst=burst, console=err)


def start_metrics(config: Settings, port: int | None) -> None:
    """``--metrics-port`` or SMSPIPE_METRICS_PORT: this process's registry, on its own port."""
    port = port if port is not None else config.smspipe_metrics_port
    if port is None:
        return
    from worker.metrics import serve_metrics

    bound = serve_metrics(config.smspipe_metrics_host, port).port
    err.print(f"metrics on http://{config.smspipe_metrics_host}:{bound}/metrics", highlight=False)


# --- producers and the all-in-one -------------------------------------------------------------


@app.command()
@cli_errors
def watch(
    poll: float | None = typer.Option(None, "--poll", min=0.01, help="Seconds between looks."),
    metrics_port: int | None = typer.Option(None, "--metrics-port", help="Serve /metrics here."),
) -> None:
    """Watch the bucket's inbox/: each file dropped there (with its <name>.json) becomes a job."""
    from worker.run import watch_until_stopped

    logs.configure("INFO")
    config = settings()
    if poll is not None:
        config = config.model_copy(update={"smspipe_watch_poll_seconds": poll})
    start_metrics(config, metrics_port)
    raise typer.Exit(run(watch_until_stopped(config)))


@app.command()
@cli_errors
def serve(
    host: str | None = typer.Option(None, help="Bind address (SMSPIPE_INTAKE_HOST, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (SMSPIPE_INTAKE_PORT, 8080)."),
) -> None:
    """Run the HTTP intake: POST /v1/sends, GET /v1/jobs/{id}, /metrics, /openapi.json."""
    from worker.run import serve_until_stopped

    logs.configure("INFO")
    raise typer.Exit(run(serve_until_stopped(settings(), host=host, port=port)))


@app.command("run")
@cli_errors
def run_command(
    host: str | None = typer.Option(None, help="Intake bind address (SMSPIPE_INTAKE_HOST)."),
    port: int | None = typer.Option(None, help="Intake port (SMSPIPE_INTAKE_PORT, 8080)."),
    no_intake: bool = typer.Option(False, "--no-intake", help="Run without the HTTP intake."),
) -> None:
    """Everything on one machine: embedded Redis and sandbox if unset, worker, watcher, intake."""
    from worker.run import run_until_stopped

    logs.configure("INFO")
    raise typer.Exit(run(run_until_stopped(settings(), host=host, port=port, intake=not no_intake)))


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
    for part in status.get("broadcasts") or []:
        label = f"broadcast {part['id']}" if part["id"] is not None else f"part {part['index']}"
        table.add_row(label, f"{part['status']} {part['sent']}/{part['expected']}")
    if status.get("start"):
        table.add_row("start", str(status["start"]))
    if status.get("note"):
        table.add_row("note", str(status["note"]))
    if status.get("warning"):
        table.add_row("warning", f"[bold yellow]{redact(str(status['warning']))}[/]")
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


# --- opt-outs ----------------------------------------------------------------------------------

optout_app = typer.Typer(help="The account's opt-out list: numbers never sent to.")
app.add_typer(optout_app, name="optout")


def _optout(action: str, *args: Any) -> Any:
    from worker import optout
    from worker.sending import pool_for

    async def go() -> Any:
        async with pool_for(settings()) as (pool, _):
            return await getattr(optout, action)(pool, *args)

    return run(go())


@optout_app.command("add")
@cli_errors
def optout_add(
    numbers: list[str] = typer.Argument(None, help="Numbers, in any usual format."),
    file: Path | None = typer.Option(None, "--file", help="A list of numbers (any format)."),
    region: str | None = typer.Option(None, help="Country of national numbers."),
) -> None:
    """Add numbers (or a file of them) to the opt-out list."""
    if not numbers and file is None:
        raise fail("give numbers or --file")
    region = region or settings().smspipe_default_region
    report = _optout("add", list(numbers or []), region, file)
    out.print(f"added {report['added']}, already listed {report['already']}", highlight=False)
    if report["invalid"]:
        raise fail(f"not phone numbers, not added: {', '.join(report['invalid'])}")


@optout_app.command("remove")
@cli_errors
def optout_remove(
    numbers: list[str] = typer.Argument(..., help="Numbers to take off the list."),
    region: str | None = typer.Option(None, help="Country of national numbers."),
) -> None:
    """Take numbers off the opt-out list."""
    report = _optout("remove", list(numbers), region or settings().smspipe_default_region)
    out.print(f"removed {report['removed']}", highlight=False)


@optout_app.command("list")
@cli_errors
def optout_list() -> None:
    """Print the opt-out list, one number a line."""
    for number in _optout("members"):
        print(number)


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


def main() -> None:
    logs.configure("WARNING")
    app(prog_name="smspipe")


if __name__ == "__main__":
    main()
