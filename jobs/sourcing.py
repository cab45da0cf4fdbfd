"""What send and broadcast jobs both do first: fetch the file from the bucket, prepare its rows
with the account's suppression list, and pick the sender. I/O at the edge of the recipient stage.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa

from jobs.recipients import (
    REJECTED,
    STATES,
    RecipientList,
    Verdicts,
    judge,
    open_list,
    prepare_recipients,
)
from ogangi.errors import ProviderError
from worker import keys
from worker.memory import give_back_freed_memory
from worker.runtime import Runtime


async def read_recipients(
    rt: Runtime,
    source: str,
    text: str,
    *,
    region: str | None,
    phone_column: str | None,
) -> pd.DataFrame:
    """Every row of the bucket object ``source`` with its verdict (jobs.recipients)."""
    suppression = await suppression_list(rt)
    local = rt.bucket.local_path(source)
    with tempfile.TemporaryDirectory(prefix="smspipe-") as tmp:
        if local is None:  # an S3 bucket: the readers want a file
            local = Path(tmp) / Path(source).name
            local.write_bytes(await rt.bucket.get(source))
        prepared = await asyncio.to_thread(
            prepare_recipients,
            local,
            text,
            region=region or rt.settings.smspipe_default_region,
            phone_column=column_spec(phone_column),
            suppression=suppression,
        )
    return prepared.frame


async def judge_recipients(
    rt: Runtime,
    source: str,
    text: str,
    *,
    region: str | None,
    phone_column: str | None,
) -> tuple[RecipientList, Verdicts]:
    """The bucket object ``source`` read, and every row judged (no texts yet: a send job
    describes its rows a slice at a time, see jobs.cutting)."""
    suppression = await suppression_list(rt)
    region = region or rt.settings.smspipe_default_region
    local = rt.bucket.local_path(source)
    with tempfile.TemporaryDirectory(prefix="smspipe-") as tmp:
        if local is None:  # an S3 bucket: the readers want a file
            local = Path(tmp) / Path(source).name
            await rt.bucket.get_file(source, local)
        listing = await asyncio.to_thread(
            open_list, local, text, region=region, phone_column=column_spec(phone_column)
        )
    verdicts = await asyncio.to_thread(
        judge, listing.data, listing.columns, listing.template, region=region,
        suppressed=suppression,
    )  # fmt: skip
    give_back_freed_memory()  # the normalizer's temporaries: cutting starts from what is kept
    return listing, verdicts


def verdict_frame(verdicts: Verdicts) -> pd.DataFrame:
    """The state and reason of every row, as ``nothing_to_send`` reads them."""
    return pd.DataFrame({
        "state": pd.Categorical.from_codes(verdicts.states, categories=list(STATES)),
        "reason": pd.arrays.ArrowStringArray(pa.chunked_array([verdicts.reason])),
    })  # fmt: skip


def column_spec(spec: str | None) -> str | int | None:
    """``--phone-column 2`` is the second column; anything else is a header name or letter."""
    if spec is None:
        return None
    return int(spec) if spec.isdigit() else spec


async def suppression_list(rt: Runtime) -> set[str]:
    members = await rt.redis.smembers(keys.suppression())  # type: ignore[misc]
    return {m.decode() for m in members}


def nothing_to_send(frame: pd.DataFrame) -> str:
    """Why a list has no sendable row, counted by reason, for the job's error."""
    if not len(frame):
        return "has no rows"
    counts = frame["reason"].where(frame["state"] == REJECTED, frame["state"]).value_counts()
    parts = ", ".join(f"{n} {what}" for what, n in counts.items())
    return f"no row can be sent ({parts} of {len(frame)} rows)"


async def resolve_sender(rt: Runtime, wanted: str | None) -> str:
    """``--from``, else ``OGANGI_SHORTCODE``, else the account's only shortcode."""
    if wanted:
        return wanted
    if rt.settings.ogangi_shortcode:
        return rt.settings.ogangi_shortcode
    await rt.limiter.wait(1)  # every provider call counts against the account's rate
    codes = await rt.client.get_shortcodes()
    if len(codes) == 1:
        return codes[0]
    if not codes:
        raise ProviderError("the account has no shortcode to send from")
    raise ProviderError(
        f"the account has {len(codes)} shortcodes ({', '.join(codes[:5])}): choose one with "
        "--from or OGANGI_SHORTCODE"
    )
