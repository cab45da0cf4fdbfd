"""The naive baselines, each run as a child process of ``bench.pipeline``.

- The one-process script (cases a and d, ``--child naive``): what one writes first. pandas
  ``read_csv``, per-row ``phonenumbers.parse`` + ``is_valid_number``, sequential 10 000-row
  uploads (``write_recipient_file``, a plain aiohttp session, ``signed_path``), ``xmltodict``
  for each reply, a results CSV. It reports its wall time, the time of each stage and its own
  peak memory (``bench.peak``).
- A worker with one thing changed (``--child worker MODE VALUE``): ``local-limit`` spaces its
  own requests with ``LocalLimiter``, knowing nothing of the other workers (case b);
  ``arq-poll`` polls with arq's default ``poll_delay`` (case c).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import time
from pathlib import Path
from typing import Any

from bench.lists import REGION, TEXT
from bench.peak import own_peak_mb
from bench.stack import CHUNK, SHORTCODE, Stack, run_child

# --- the one-process script -------------------------------------------------------------------


def run_naive(st: Stack, path: Path) -> dict[str, Any]:
    """The naive script in its own process: wall time and peak RSS (``bench.peak``) inside it."""
    result = run_child(st, "naive", path)
    if "error" in result:
        raise SystemExit(f"the naive baseline failed: {result['error']}")
    return result


def naive_child(path: Path, out: Path) -> None:
    import pandas as pd
    import phonenumbers

    result = asyncio.run(_naive_send(path, out.with_suffix(".results.csv"), pd, phonenumbers))
    result["peak_mb"] = own_peak_mb()
    out.write_text(json.dumps(result))


async def _naive_send(path: Path, results_path: Path, pd: Any, phonenumbers: Any) -> dict[str, Any]:
    import aiohttp
    import xmltodict

    from ogangi.recipient_file import SmsRow, write_recipient_file
    from ogangi.signing import signed_path

    env = os.environ
    base, instance = env["OGANGI_BASE_URL"], env["OGANGI_INSTANCE_ID"]
    public, private, sender = env["OGANGI_PUBLIC_KEY"], env["OGANGI_PRIVATE_KEY"], SHORTCODE
    stages = dict.fromkeys(("read", "normalize", "file", "http", "parse", "results"), 0.0)
    t0 = time.perf_counter()
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    t1 = time.perf_counter()
    stages["read"] = t1 - t0
    results: list[list[Any]] = []
    ready: list[tuple[int, str, str, str]] = []
    e164 = phonenumbers.PhoneNumberFormat.E164
    for row, (phone, name, code) in enumerate(df.itertuples(index=False, name=None), start=1):
        try:
            number = phonenumbers.parse(phone, REGION)
            valid = phonenumbers.is_valid_number(number)
        except phonenumbers.NumberParseException:
            valid = False
        if not valid:
            results.append([row, phone, "", "REJECTED", "invalid number", "", ""])
            continue
        msisdn = phonenumbers.format_number(number, e164)[1:]
        ready.append((row, phone, msisdn, TEXT.replace("{0}", name).replace("{1}", code)))
    stages["normalize"] = time.perf_counter() - t1
    sent = 0
    async with aiohttp.ClientSession() as session:
        for start in range(0, len(ready), CHUNK):
            batch = ready[start : start + CHUNK]
            ta = time.perf_counter()
            content = write_recipient_file(SmsRow(m, sender, text) for _, _, m, text in batch)
            form = aiohttp.FormData()
            form.add_field("file", content, filename="recipients.csv", content_type="text/csv")
            url = f"{base}/{signed_path('tools/sendSMSByFile', [instance], public, private)}"
            tb = time.perf_counter()
            async with session.post(url, data=form) as response:
                response.raise_for_status()
                body = await response.read()
            tc = time.perf_counter()
            doc = xmltodict.parse(body)["response"]
            if doc["status"] != "OK":
                raise SystemExit(f"provider answered {doc['status']}")
            messages = doc["result"]["messages"]["message"]
            messages = [messages] if isinstance(messages, dict) else messages
            by_to = {m["to"]: m for m in messages}
            for row, phone, msisdn, _ in batch:
                m = by_to.get(msisdn)
                if m is not None and m["status"] == "SENT_TO_CARRIER":
                    sent += 1
                    results.append([row, phone, msisdn, "SENT", "", m["id"], m["status"]])
                else:
                    status = m["status"] if m else ""
                    results.append([row, phone, msisdn, "FAILED", status, "", status])
            td = time.perf_counter()
            stages["file"] += tb - ta
            stages["http"] += tc - tb
            stages["parse"] += td - tc
    te = time.perf_counter()
    results.sort(key=lambda r: r[0])
    with results_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["row", "input", "msisdn", "state", "reason", "message_id", "provider_status"]
        )
        writer.writerows(results)
    stages["results"] = time.perf_counter() - te
    return {"wall": time.perf_counter() - t0, "sent": sent, "rows": len(df), "stages": stages}


# --- workers with one thing changed -----------------------------------------------------------


class LocalLimiter:
    """The naive limiter: each process spaces its own requests, knowing nothing of the others."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = 0.0
        self.missed_slots = 0

    async def wait(self, messages: int = 1, *, max_wait: float | None = None) -> float:
        now = time.monotonic()
        slot = max(now, self.next)
        self.next = slot + self.interval
        await asyncio.sleep(slot - now)
        return slot - now

    async def slot(self, messages: int = 1, *, max_wait: float | None = None) -> Any:
        from worker.ratelimit import Slot

        await self.wait(messages, max_wait=max_wait)
        return Slot(at=asyncio.get_running_loop().time())

    async def keep(self, slot: Any, messages: int = 1, *, max_wait: float | None = None) -> Any:
        return slot  # the naive limiter never checks whether it is late

    async def penalize(self, retry_after: float) -> float:
        self.next = max(self.next, time.monotonic() + float(retry_after))
        return float(retry_after)


def worker_child(mode: str, value: float) -> None:
    """A worker like ``smspipe worker`` with one thing changed: its limiter or its poll delay."""
    from worker import logs
    from worker.app import build_worker
    from worker.runtime import CTX_KEY
    from worker.settings import Settings

    logs.configure("INFO")
    settings = Settings()
    assert settings.redis_url
    if mode == "arq-poll":
        build_worker(settings, settings.redis_url, poll_delay=value).run()
        return
    worker = build_worker(settings, settings.redis_url)
    startup = worker.on_startup
    assert startup is not None

    async def local_limit(ctx: dict[str, Any]) -> None:
        await startup(ctx)
        ctx[CTX_KEY].limiter = LocalLimiter(value)

    worker.on_startup = local_limit
    worker.run()
