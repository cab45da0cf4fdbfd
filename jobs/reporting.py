"""The end of every job: the results file in the bucket, the summary, the log line, the metrics."""

from __future__ import annotations

import asyncio
import io
import re
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import structlog

from jobs import chunks
from jobs.results import ResultsWriter, write_results
from worker import metrics
from worker.jobstore import now_iso
from worker.runtime import Runtime

log = structlog.get_logger("smspipe.jobs")

_UNSAFE = re.compile(r"[^\w.\- ]+")
_DOTS = re.compile(r"\.{2,}")


def results_key(stem: str, job_id: str) -> str:
    """``results/<stem>.<job>.csv``; a stem from user input cannot leave ``results/``."""
    safe = _DOTS.sub(".", _UNSAFE.sub("_", stem)).strip(" .") or "results"
    return f"results/{safe[:100]}.{job_id}.csv"


async def publish_results(
    rt: Runtime, job_id: str, stem: str, results: pd.DataFrame, *, state: str
) -> dict[str, int]:
    """Write the results file and close the job's summary with its counts."""
    key = results_key(stem, job_id)
    await rt.bucket.put(key, await asyncio.to_thread(_csv_bytes, results))
    return await _close_job(rt, job_id, key, chunks.final_counts(results), state=state)


async def publish_results_slices(
    rt: Runtime,
    job_id: str,
    stem: str,
    slices: AsyncIterator[pd.DataFrame],
    *,
    state: str,
) -> dict[str, int]:
    """``publish_results`` for a big job: the file is written slice by slice to a temporary
    file and uploaded from disk, so memory holds one slice, never the whole list."""
    key = results_key(stem, job_id)
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="smspipe-results-") as tmp:
        path = Path(tmp) / "results.csv"
        with path.open("wb") as sink:
            writer = ResultsWriter(sink)
            async for frame in slices:
                await asyncio.to_thread(writer.write, frame)
                counts.update(chunks.final_counts(frame))
            writer.close()
        await rt.bucket.put_file(key, path)
    totals = {state: counts[state] for state in (s.lower() for s in chunks.FINAL_STATES)}
    return await _close_job(rt, job_id, key, totals, state=state)


async def _close_job(
    rt: Runtime, job_id: str, key: str, counts: dict[str, int], *, state: str
) -> dict[str, int]:
    url = rt.bucket.url(key)
    await rt.jobs.update(job_id, state=state, results=url, finished_at=now_iso(), **counts)
    log.info("job finished", job=job_id, state=state, results=url, **counts)
    metrics.job_finished(state, counts)
    return counts


def _csv_bytes(results: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    write_results(results, sink)
    return sink.getvalue()
