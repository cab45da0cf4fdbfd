"""Logging for every smspipe process: structlog to stderr, JSON in production, secrets masked.

``SMSPIPE_LOG_FORMAT=json`` (default when stderr is not a terminal) gives one JSON object a line
with the job and chunk ids as fields; ``console`` gives readable lines. Configured secrets are
replaced by ``***`` in every event, whatever field they hide in.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from worker.redact import redact, secrets_from_env


def _mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    secrets = secrets_from_env()
    if not secrets:
        return event
    return {
        key: redact(value, secrets) if isinstance(value, str) else value
        for key, value in event.items()
    }


def configure(level: str | int = "INFO", fmt: str | None = None) -> None:
    fmt = fmt or os.environ.get("SMSPIPE_LOG_FORMAT") or (
        "console" if sys.stderr.isatty() else "json"
    )
    level = os.environ.get("SMSPIPE_LOG_LEVEL", level)
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _mask_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    # arq and aiohttp log through the standard library: same stream, same format, masked.
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_StdlibMask())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _mask_secrets,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)


class _StdlibMask(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True
