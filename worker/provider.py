"""Which provider a command talks to: the configured one, or the embedded sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ogangi.client import OgangiClient
from ogangi.models import Credentials
from worker.embedded import ensure_sandbox
from worker.settings import Settings

SANDBOX_BANNER = "SANDBOX: no SMS leave this machine"


@dataclass(frozen=True)
class Provider:
    base_url: str
    credentials: Credentials
    sandbox: bool
    started: bool = False


def resolve_provider(settings: Settings) -> Provider:
    """The configured provider, or this directory's sandbox (started when not running)."""
    credentials = settings.credentials()
    if not settings.uses_sandbox:
        assert settings.ogangi_base_url is not None
        return Provider(settings.ogangi_base_url, credentials, sandbox=False)
    url, started = ensure_sandbox(settings.smspipe_home)
    return Provider(url, credentials, sandbox=True, started=started)


@asynccontextmanager
async def open_client(provider: Provider, settings: Settings) -> AsyncIterator[OgangiClient]:
    async with OgangiClient(
        provider.base_url, provider.credentials, timeout=settings.ogangi_timeout_seconds
    ) as client:
        yield client
