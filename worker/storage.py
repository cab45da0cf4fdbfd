"""The bucket: a local folder by default, any S3-compatible store in production (obstore).

Layout (DESIGN.md): ``inbox/`` (dropped files), ``uploads/`` (files sent through the CLI, Python
or HTTP), ``work/<job>/`` (chunks and their outcomes), ``results/``, ``done/``, ``failed/``.
One interface for both kinds, so the pipeline never asks which one it has.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

import obstore
from obstore.exceptions import AlreadyExistsError, NotFoundError
from obstore.store import LocalStore, ObjectStore, S3Store

__all__ = ["Bucket", "NotFoundError"]


class Bucket:
    def __init__(self, store: ObjectStore, location: str, root: Path | None = None) -> None:
        self.store = store
        self.location = location
        #: Set for a folder bucket: readers can open files in place instead of copying bytes.
        self.root = root

    @classmethod
    def from_setting(cls, setting: str, **s3_options: str) -> Bucket:
        """``SMSPIPE_BUCKET``: a folder path, or ``s3://bucket/prefix``.

        For S3, obstore reads the standard variables itself: ``AWS_ENDPOINT_URL`` (MinIO or any
        S3-compatible store), ``AWS_ALLOW_HTTP=true`` (a plain-HTTP endpoint),
        ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``.
        """
        if setting.startswith("s3://"):
            parsed = urlparse(setting)
            prefix = parsed.path.strip("/") or None
            store = S3Store(parsed.netloc, prefix=prefix, **s3_options)  # type: ignore[arg-type]
            return cls(store, setting.rstrip("/"))
        root = Path(setting).expanduser().resolve()
        for folder in ("inbox", "results", "done", "failed", "work", "uploads"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        return cls(LocalStore(prefix=root, mkdir=True), str(root), root)

    def url(self, key: str) -> str:
        """Where a person finds ``key``: a file path for a folder, the s3:// URL otherwise."""
        if self.root is not None:
            return str(self.root / key)
        return f"{self.location}/{key}"

    def local_path(self, key: str) -> Path | None:
        return self.root / key if self.root is not None else None

    async def get(self, key: str) -> bytes:
        result = await obstore.get_async(self.store, key)
        return bytes(await result.bytes_async())

    async def stream(self, key: str, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """``key``'s bytes in pieces (HTTP downloads of big results files stay small in memory)."""
        result = await obstore.get_async(self.store, key)
        async for piece in result.stream(min_chunk_size=chunk_size):
            yield bytes(piece)

    async def get_file(self, key: str, path: Path) -> None:
        """Download ``key`` to ``path`` a piece at a time (never whole in memory)."""
        with path.open("wb") as sink:
            async for piece in self.stream(key):
                sink.write(piece)

    async def put(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        """Write ``key``; with ``if_absent`` an existing object wins and False is returned."""
        if not if_absent:
            await obstore.put_async(self.store, key, data)
            return True
        try:
            await obstore.put_async(self.store, key, data, mode="create")
        except AlreadyExistsError:
            return False
        return True

    async def put_file(self, key: str, path: Path) -> None:
        """Upload a file from disk without reading it into memory first."""
        await obstore.put_async(self.store, key, path)

    async def exists(self, key: str) -> bool:
        try:
            await obstore.head_async(self.store, key)
        except (NotFoundError, FileNotFoundError):
            return False
        return True

    async def head(self, key: str) -> dict[str, object]:
        return dict(await obstore.head_async(self.store, key))

    async def list(self, prefix: str) -> list[dict[str, object]]:
        found: list[dict[str, object]] = []
        async for batch in obstore.list(self.store, prefix=prefix):
            found.extend(dict(item) for item in batch)
        return found

    async def move(self, src: str, dst: str) -> None:
        await obstore.rename_async(self.store, src, dst)

    async def delete(self, key: str) -> None:
        try:
            await obstore.delete_async(self.store, key)
        except (NotFoundError, FileNotFoundError):
            pass

    async def delete_prefix(self, prefix: str) -> None:
        keys = [str(item["path"]) for item in await self.list(prefix)]
        await asyncio.gather(*(self.delete(k) for k in keys))
