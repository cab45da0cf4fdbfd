"""Where the CPU of a send goes: each stage of our pipeline timed alone, in a child process.

Case a runs ``python -m bench.pipeline --child stages PATH OUT`` with the workers' environment
(``run_child``) and prints the figures it writes.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.lists import REGION, TEXT
from bench.stack import CHUNK, SHORTCODE


def stages_child(path: Path, out: Path) -> None:
    """Single-core cost of each stage of our pipeline on ``path``, one stage at a time.

    The same functions the jobs call, without queue, bucket or concurrency: where the CPU of
    a send goes. HTTP is measured against the running sandbox (one upload at a time) and the
    sandbox's own work is timed by calling its parser and reply builder in this process.
    """
    out.write_text(json.dumps(asyncio.run(_stage_costs(path))))


async def _stage_costs(path: Path) -> dict[str, Any]:
    import io
    import zoneinfo
    from datetime import UTC

    import aiohttp
    import pandas as pd

    from jobs import chunks
    from jobs.recipients import prepare_recipients
    from jobs.results import write_results
    from ogangi.sandbox import blast
    from ogangi.sandbox.recipients import UniformRows, parse_recipient_file
    from ogangi.signing import signed_path
    from ogangi.xml import parse_message_columns

    env = os.environ
    cost: dict[str, float] = {}
    prepare_recipients(path, TEXT, region=REGION)  # first call: the phone tables, as a warm-up
    t = time.perf_counter()
    prepared = prepare_recipients(path, TEXT, region=REGION)
    frame = chunks.assign_chunks(prepared.frame, CHUNK)
    cost["prepare: read + normalize + render"] = time.perf_counter() - t
    t = time.perf_counter()
    kept = frame[list(chunks.PREPARED_COLUMNS)]
    chunks.to_parquet(kept)
    files = [
        chunks.chunk_file(rows, sender=SHORTCODE)
        for _, rows in frame[frame["chunk"].notna()].groupby("chunk", sort=True)
    ]
    cost["prepare: chunk files + prepared parquet"] = time.perf_counter() - t
    zone, now = zoneinfo.ZoneInfo("UTC"), datetime.now(UTC)
    t = time.perf_counter()
    for content in files:
        rows = parse_recipient_file(content, carriers=None, max_rows=1_000_000)
        ids = [str(-(10**18) + i) for i in range(len(rows))]
        if isinstance(rows, UniformRows):
            blast.uniform_reply(rows, ids, now, zone)
        else:
            blast.rows_reply(rows, ids, now, zone)
    cost["sandbox: read upload + build reply"] = time.perf_counter() - t
    url = f"{env['OGANGI_BASE_URL']}/" + signed_path(
        "tools/sendSMSByFile",
        [env["OGANGI_INSTANCE_ID"]],
        env["OGANGI_PUBLIC_KEY"],
        env["OGANGI_PRIVATE_KEY"],
    )
    replies = []
    t = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        for content in files:
            form = aiohttp.FormData()
            form.add_field("file", content, filename="recipients.csv", content_type="text/csv")
            async with session.post(url, data=form) as response:
                replies.append(await response.read())
    cost["HTTP round trips (sandbox work included)"] = time.perf_counter() - t
    t = time.perf_counter()
    parsed = [parse_message_columns(body)[1] for body in replies]
    cost["send: parse replies (ogangi.xml)"] = time.perf_counter() - t
    t = time.perf_counter()
    outcomes = []
    for content, columns in zip(files, parsed, strict=True):
        assert columns is not None
        outcome = chunks.outcomes_from_reply(chunks.chunk_msisdns(content), columns)
        chunks.to_parquet(outcome)
        outcomes.append(outcome)
    cost["send: outcomes + outcome parquet"] = time.perf_counter() - t
    t = time.perf_counter()
    results = chunks.merge_outcomes(kept, pd.concat(outcomes, ignore_index=True))
    cost["finalize: merge outcomes"] = time.perf_counter() - t
    t = time.perf_counter()
    write_results(results, io.BytesIO())
    cost["finalize: results CSV"] = time.perf_counter() - t
    return {"chunks": len(files), "ready": int(frame["chunk"].notna().sum()), "cost": cost}
