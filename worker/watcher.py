"""``smspipe watch``: files dropped into the bucket's ``inbox/`` become jobs.

One look at ``inbox/`` every ``SMSPIPE_WATCH_POLL_SECONDS``:

1. A file is taken only once two looks agree on its size and etag (a file still being copied
   in changes between them). Names starting with ``.`` or ending ``.tmp``/``.part``/``~`` are
   never taken: upload under such a name and rename when done to be sure.
2. Its settings come from ``inbox/<stem>.json`` (either file may come first: a data file
   without a manifest waits ``SMSPIPE_WATCH_MANIFEST_WAIT_SECONDS`` for one, then uses
   ``SMSPIPE_DEFAULT_TEXT``). Without usable settings the file goes to ``failed/`` beside a
   ``<name>.error.txt`` that says what is missing.
3. Several watchers may share a bucket: each file is claimed in Redis (SET NX on key + etag,
   with a TTL so a dead watcher's claim lapses) and taken by one of them.
4. Taking a file copies it to ``uploads/<job>/`` (where the job reads it), records the job as
   pending, enqueues it, then removes it from the inbox. Same bytes + same settings = same job,
   so a crash between these steps repeats them harmlessly.
5. When a pending job is final, its input moves to ``done/<stem>.<job><ext>`` (or
   ``failed/`` with an ``.error.txt``) and the job's summary records where (``input``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from arq.connections import ArqRedis

from jobs.enqueue import enqueue_send
from jobs.payloads import FINAL_JOB_STATES, SendJob, content_digest, send_job_id
from worker import keys, metrics
from worker.jobstore import JobStore
from worker.manifest import Manifest, ManifestError, manifest_name, parse_manifest, resolve
from worker.settings import Settings
from worker.storage import Bucket, NotFoundError

log = structlog.get_logger("smspipe.watcher")

INBOX = "inbox/"
MANIFEST_SUFFIX = ".json"
#: Names that say "still being written": never taken.
PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download", ".swp", "~")
#: A claim outlives any normal take (seconds); it lapses if its watcher died holding it.
CLAIM_TTL_SECONDS = 600
FINISH_TTL_SECONDS = 120


@dataclass(frozen=True)
class Entry:
    """One object in the inbox, as the last listing saw it."""

    key: str
    size: int
    etag: str

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        return split_name(self.name)[0]

    @property
    def is_manifest(self) -> bool:
        return self.name.lower().endswith(MANIFEST_SUFFIX)


@dataclass
class PollReport:
    """What one look did (for logs and tests)."""

    taken: dict[str, str] = field(default_factory=dict)  # inbox key -> job id
    rejected: dict[str, str] = field(default_factory=dict)  # inbox key -> error
    finished: dict[str, str] = field(default_factory=dict)  # job id -> where its input went


@dataclass(frozen=True)
class WatchConfig:
    poll_seconds: float = 1.0
    manifest_wait_seconds: float = 10.0
    default_text: str | None = None
    timezone: str = "UTC"

    @classmethod
    def from_settings(cls, settings: Settings) -> WatchConfig:
        return cls(
            poll_seconds=settings.smspipe_watch_poll_seconds,
            manifest_wait_seconds=settings.smspipe_watch_manifest_wait_seconds,
            default_text=settings.smspipe_default_text,
            timezone=settings.smspipe_timezone,
        )


def split_name(name: str) -> tuple[str, str]:
    """``spring-sale.xlsx`` -> (``spring-sale``, ``.xlsx``); a dot-less name has no suffix."""
    stem, dot, suffix = name.rpartition(".")
    return (stem, f".{suffix}") if dot and stem else (name, "")


def is_partial(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(PARTIAL_SUFFIXES)


class Watcher:
    def __init__(
        self,
        bucket: Bucket,
        redis: ArqRedis,
        config: WatchConfig,
        settings: Settings | None = None,
    ) -> None:
        self.bucket = bucket
        self.redis = redis
        self.config = config
        #: What broadcast jobs are created with (None: read from the environment).
        self.settings = settings
        self.jobs = JobStore(redis)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        #: key -> ((size, etag), monotonic time this signature was first seen)
        self._seen: dict[str, tuple[tuple[int, str], float]] = {}

    # --- the loop ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Look at the inbox until ``stop`` is set; a failing look is logged and retried."""
        log.info("watching", bucket=self.bucket.location, inbox=self.bucket.url(INBOX))
        while not stop.is_set():
            try:
                await self.poll()
            except Exception as exc:  # noqa: BLE001 - the bucket or Redis may be briefly away
                log.warning("watcher look failed", error=f"{type(exc).__name__}: {exc}")
            try:
                await asyncio.wait_for(stop.wait(), self.config.poll_seconds)
            except TimeoutError:
                pass

    async def poll(self) -> PollReport:
        """One look: take the inbox files that are ready, file away the inputs of final jobs."""
        report = PollReport()
        entries = await self._inbox()
        stable = self._stable(entries)
        now = time.monotonic()
        for entry in entries.values():
            if entry.is_manifest or entry.key not in stable:
                continue
            manifest = entries.get(manifest_name(entry.key))
            if manifest is not None and manifest.key not in stable:
                continue  # the manifest is still arriving
            waited = now - self._seen[entry.key][1]
            if (manifest is None or entry.size == 0) and waited < self.config.manifest_wait_seconds:
                continue  # its manifest may still come (or an empty file may still be filled)
            await self._claimed(entry, manifest, entries, report)
        await self._finish_final_jobs(report)
        return report

    async def _inbox(self) -> dict[str, Entry]:
        found: dict[str, Entry] = {}
        for item in await self.bucket.list(INBOX):
            key = str(item["path"])
            name = key[len(INBOX) :]
            if not key.startswith(INBOX) or "/" in name or not name or is_partial(name):
                continue  # sub-folders and files still being written are not ours
            found[key] = Entry(key, int(item["size"]), str(item.get("e_tag") or ""))  # type: ignore[call-overload]
        return found

    def _stable(self, entries: dict[str, Entry]) -> set[str]:
        """Keys whose size and etag are what the previous look saw."""
        now = time.monotonic()
        stable: set[str] = set()
        seen: dict[str, tuple[tuple[int, str], float]] = {}
        for key, entry in entries.items():
            signature = (entry.size, entry.etag)
            previous = self._seen.get(key)
            if previous is not None and previous[0] == signature:
                stable.add(key)
                seen[key] = previous
            else:
                seen[key] = (signature, now)
        self._seen = seen
        return stable

    # --- taking one file -----------------------------------------------------------------------

    async def _claimed(
        self,
        entry: Entry,
        manifest: Entry | None,
        entries: dict[str, Entry],
        report: PollReport,
    ) -> None:
        claim = keys.watcher_claim(f"{entry.key}@{entry.etag}")
        if not await self.redis.set(claim, self.id, nx=True, ex=CLAIM_TTL_SECONDS):
            return  # another watcher has it
        try:
            await self._take(entry, manifest, entries, report)
        finally:
            # Released once the file left the inbox (or on error, so that a later look retries).
            await self.redis.delete(claim)

    async def _take(
        self,
        entry: Entry,
        manifest: Entry | None,
        entries: dict[str, Entry],
        report: PollReport,
    ) -> None:
        try:
            data = await self.bucket.get(entry.key)
            manifest_bytes = await self.bucket.get(manifest.key) if manifest else None
        except (NotFoundError, FileNotFoundError):
            return  # another watcher took it between our listing and our claim
        bound = log.bind(file=entry.key)
        try:
            parsed = (
                parse_manifest(manifest_bytes, manifest.key)
                if manifest and manifest_bytes
                else None
            )
            settings = resolve(parsed, self.config.default_text, entry.key)
            if settings.kind == "broadcast":
                job_id = await self._start_broadcast(entry, data, settings, manifest_bytes)
            else:
                job_id = await self._start_send(entry, data, settings, manifest_bytes)
        except ManifestError as exc:
            await self._reject(entry, manifest, str(exc))
            report.rejected[entry.key] = str(exc)
            metrics.WATCHER_FILES.labels("failed").inc()
            bound.warning("file refused", error=str(exc), moved_to=f"failed/{entry.name}")
            return
        await self.bucket.delete(entry.key)
        if manifest is not None and not self._has_other_data(entry, entries):
            await self.bucket.delete(manifest.key)
        report.taken[entry.key] = job_id
        metrics.WATCHER_FILES.labels("enqueued").inc()
        bound.info("file taken", job=job_id, kind=settings.kind, bytes=len(data))

    @staticmethod
    def _has_other_data(entry: Entry, entries: dict[str, Entry]) -> bool:
        """Another data file shares the manifest (``list.csv`` and ``list.xlsx``): keep it."""
        return any(
            other.key != entry.key and not other.is_manifest and other.stem == entry.stem
            for other in entries.values()
        )

    async def _start_send(
        self, entry: Entry, data: bytes, settings: Manifest, manifest_bytes: bytes | None
    ) -> str:
        options = settings.send_options()
        job_id = send_job_id(content_digest(data), options)
        upload = f"uploads/{job_id}/{entry.name}"
        await self.bucket.put(upload, data)
        manifest_copy = None
        if manifest_bytes is not None:
            manifest_copy = f"uploads/{job_id}/{entry.stem}{MANIFEST_SUFFIX}"
            await self.bucket.put(manifest_copy, manifest_bytes)
        # Pending before enqueued: a job is never final without the watcher knowing of it.
        await self._remember(job_id, entry.name, upload, manifest_copy)
        job = SendJob(job_id=job_id, name=entry.name, source=upload, options=options)
        return await enqueue_send(self.redis, job, at=settings.starts_at(self.config.timezone))

    async def _start_broadcast(
        self, entry: Entry, data: bytes, settings: Manifest, manifest_bytes: bytes | None
    ) -> str:
        """A broadcast job through the broadcast producer API (``jobs.enqueue.create_broadcast``)."""
        from pydantic import ValidationError

        from jobs.broadcast_schedule import BroadcastInputError
        from jobs.enqueue import create_broadcast

        assert settings.text is not None  # resolve() saw to it
        try:
            job_id = await create_broadcast(
                self.redis,
                data,
                settings.text,
                name=entry.name,
                tz=self.config.timezone,
                bucket=self.bucket,
                settings=self.settings,
                **settings.broadcast_options(),
            )
        except (BroadcastInputError, ValidationError) as exc:
            raise ManifestError(f"{entry.key}: {exc}") from None
        manifest_copy = None
        if manifest_bytes is not None:
            manifest_copy = f"uploads/{job_id}/{entry.stem}{MANIFEST_SUFFIX}"
            await self.bucket.put(manifest_copy, manifest_bytes)
        # After the enqueue here (the API enqueues): a crash in between leaves the file in the
        # inbox, and taking it again finds the same job and records it then.
        await self._remember(job_id, entry.name, f"uploads/{job_id}/{entry.name}", manifest_copy)
        return job_id

    async def _remember(self, job_id: str, name: str, upload: str, manifest: str | None) -> None:
        record = {"name": name, "upload": upload, "manifest": manifest}
        await self.redis.hset(keys.watcher_pending(), job_id, json.dumps(record))  # type: ignore[misc]

    async def _reject(self, entry: Entry, manifest: Entry | None, message: str) -> None:
        await self.bucket.put(f"failed/{entry.name}.error.txt", (message + "\n").encode())
        await self._move(entry.key, f"failed/{entry.name}")
        if manifest is not None:
            await self._move(manifest.key, f"failed/{manifest.name}")

    # --- filing away the inputs of final jobs --------------------------------------------------

    async def _finish_final_jobs(self, report: PollReport) -> None:
        pending = await self.redis.hgetall(keys.watcher_pending())  # type: ignore[misc]
        for raw_id, raw_record in pending.items():
            job_id = raw_id.decode()
            summary = await self.jobs.get(job_id)
            state = summary.get("state") if summary else "failed"
            if state not in FINAL_JOB_STATES:
                continue
            finish = keys.watcher_finish(job_id)
            if not await self.redis.set(finish, self.id, nx=True, ex=FINISH_TTL_SECONDS):
                continue
            try:
                where = await self._file_away(job_id, json.loads(raw_record), state, summary)
                await self.redis.hdel(keys.watcher_pending(), job_id)  # type: ignore[misc]
            finally:
                await self.redis.delete(finish)
            report.finished[job_id] = where
            log.info("input filed", job=job_id, state=state, input=where)

    async def _file_away(
        self, job_id: str, record: dict[str, Any], state: str, summary: dict[str, str] | None
    ) -> str:
        folder = "done" if state == "done" else "failed"
        stem, suffix = split_name(str(record["name"]))
        dest = f"{folder}/{stem}.{job_id}{suffix}"
        await self._move(str(record["upload"]), dest)
        if record.get("manifest"):
            await self._move(str(record["manifest"]), f"{folder}/{stem}.{job_id}{MANIFEST_SUFFIX}")
        if folder == "failed":
            error = (summary or {}).get("error") or "the job is no longer known to Redis"
            await self.bucket.put(f"{dest}.error.txt", (error + "\n").encode())
        if summary is not None:
            await self.jobs.update(job_id, input=self.bucket.url(dest))
        self._remove_empty_folder(str(record["upload"]).rsplit("/", 1)[0])
        return self.bucket.url(dest)

    def _remove_empty_folder(self, prefix: str) -> None:
        """A folder bucket keeps emptied folders (S3 has none): drop ``uploads/<job>/``."""
        path = self.bucket.local_path(prefix)
        if path is not None:
            with contextlib.suppress(OSError):
                path.rmdir()

    async def _move(self, src: str, dst: str) -> None:
        """Move if still there: another watcher (or an earlier try) may have moved it."""
        try:
            await self.bucket.move(src, dst)
        except (NotFoundError, FileNotFoundError):
            pass


async def watch(settings: Settings, redis: ArqRedis, stop: asyncio.Event) -> None:
    """Run one watcher on the configured bucket until ``stop`` is set."""
    bucket = Bucket.from_setting(settings.smspipe_bucket)
    await Watcher(bucket, redis, WatchConfig.from_settings(settings), settings).run(stop)
