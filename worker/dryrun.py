"""``smspipe send --dry-run``: the recipient stage on its own, a results file, nothing sent."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

from jobs.recipients import prepare_recipients
from jobs.results import write_results
from worker.settings import Settings
from worker.storage import Bucket


def dry_run(
    file: Path,
    text: str,
    settings: Settings,
    *,
    region: str | None = None,
    phone_column: str | None = None,
) -> dict[str, Any]:
    """Read and normalize ``file``; write ``results/<name>.dry-run.csv``; return the summary."""
    prepared = prepare_recipients(
        file,
        text,
        region=region or settings.smspipe_default_region,
        phone_column=int(phone_column) if phone_column and phone_column.isdigit() else phone_column,
    )
    bucket = Bucket.from_setting(settings.smspipe_bucket)
    key = f"results/{file.stem}.dry-run.csv"
    sink = io.BytesIO()
    write_results(prepared.frame, sink)
    asyncio.run(bucket.put(key, sink.getvalue()))
    return {
        "file": str(file),
        "format": prepared.source.format,
        **prepared.summary.as_dict(),
        "results": bucket.url(key),
    }
