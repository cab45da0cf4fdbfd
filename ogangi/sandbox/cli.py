"""``python -m ogangi.sandbox``: command-line flags to a ``SandboxConfig``, then ``serve()``.

Keys come only from the environment (``OGANGI_INSTANCE_ID``, ``OGANGI_PUBLIC_KEY``,
``OGANGI_PRIVATE_KEY``, ``OGANGI_USERNAME``, ``OGANGI_SHORTCODE``), never from flags: a flag
would put the private key in the process list.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from ogangi.sandbox.config import DEFAULT_MAX_UPLOAD_BYTES, SandboxConfig
from ogangi.sandbox.faults import FaultKind, FaultPlan
from ogangi.sandbox.server import DEFAULT_HOST, DEFAULT_PORT, serve


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ogangi.sandbox",
        description="Local simulator of the Ogangi API. No SMS leave this machine.",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help="bind address (default: %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    p.add_argument("--lenient", action="store_true", help="also accept upper-case hex signatures")
    p.add_argument("--input-name", choices=("route", "sendSMS"), default="route")
    p.add_argument("--carriers", help="comma-separated carrier names to accept (default: any)")
    p.add_argument("--broadcast-rate", type=float, default=50.0, help="messages/s per broadcast")
    p.add_argument("--timezone", default="UTC", help="zone of broadcast dates (default: UTC)")
    p.add_argument(
        "--shortcode-ignore",
        choices=("literal", "intuitive"),
        default="literal",
        help="literal: shortcodeIgnore=false ignores the shortcode, as the docs say",
    )
    p.add_argument("--force-suspend-after", type=int, help="FORCED_SUSPENDED after N messages")
    p.add_argument("--rps-limit", type=float, help="requests/s; more are answered 429")
    p.add_argument("--ledger", type=Path, help="append accepted messages to this JSONL file")
    p.add_argument("--max-rows", type=int, default=100_000)
    p.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_BYTES / 1024 / 1024)
    faults = p.add_argument_group("faults")
    faults.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=RATE",
        help=f"inject KIND with probability RATE; kinds: {', '.join(k.value for k in FaultKind)}",
    )
    faults.add_argument("--seed", type=int, help="seed for reproducible faults and jitter")
    faults.add_argument("--latency", type=float, default=0.0, help="seconds added to each call")
    faults.add_argument("--jitter", type=float, default=0.0, help="up to this many more seconds")
    faults.add_argument("--hang", type=float, default=30.0, help="seconds a timeout fault stalls")
    faults.add_argument(
        "--no-drop",
        action="store_true",
        help="timeout faults end with an answer (503 / the late reply) instead of a dropped socket",
    )
    return p


def config_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> SandboxConfig:
    rates: dict[FaultKind, float] = {}
    for item in args.fault:
        kind, sep, rate = item.partition("=")
        if not sep:
            raise ValueError(f"--fault expects KIND=RATE, got {item!r}")
        rates[FaultKind(kind.strip())] = float(rate)
    return dataclasses.replace(
        SandboxConfig.from_env(environ),
        faults=FaultPlan(
            rates=rates,
            seed=args.seed,
            latency_seconds=args.latency,
            jitter_seconds=args.jitter,
            hang_seconds=args.hang,
            drop_connection=not args.no_drop,
        ),
        lenient=args.lenient,
        input_name=args.input_name,
        carriers=tuple(c.strip() for c in args.carriers.split(",")) if args.carriers else None,
        broadcast_rate=args.broadcast_rate,
        timezone=args.timezone,
        shortcode_ignore_literal=args.shortcode_ignore == "literal",
        force_suspend_after=args.force_suspend_after,
        rps_limit=args.rps_limit,
        ledger_path=args.ledger,
        max_rows=args.max_rows,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    serve(config, args.host, args.port)
