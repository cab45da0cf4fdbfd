"""Helpers for tests that talk to a sandbox over real HTTP without the production client.

Shipped with the package (like ``structlog.testing``) so other services can test their
integration the same way::

    async with sandbox_client(SandboxConfig(broadcast_rate=1e6)) as api:
        reply = await api.call("GET", "getShortcodes", "8", "sandbox")
        assert reply.status == "OK"
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import aiohttp

from ogangi.sandbox.config import SandboxConfig
from ogangi.sandbox.server import Sandbox, running_sandbox
from ogangi.signing import encode_segment, sign


@dataclass(frozen=True)
class ApiReply:
    http_status: int
    headers: Mapping[str, str]
    body: bytes

    @cached_property
    def xml(self) -> ET.Element:
        return ET.fromstring(self.body)

    @property
    def status(self) -> str:
        return self.text("status")

    def text(self, path: str) -> str:
        """Text of the first element at ``path`` (ElementTree syntax), '' if absent or empty."""
        found = self.xml.find(path)
        return "" if found is None or found.text is None else found.text

    @property
    def error(self) -> str:
        return self.text("result/error")

    @property
    def messages(self) -> list[dict[str, str]]:
        """sendSMSByFile's ``<message>`` elements as dicts, in order."""
        return [
            {child.tag: child.text or "" for child in message}
            for message in self.xml.iterfind("result/messages/message")
        ]

    @property
    def broadcast(self) -> dict[str, str]:
        found = self.xml.find("result/broadcast")
        return {} if found is None else {child.tag: child.text or "" for child in found}


class SandboxClient:
    """Signs and sends calls to one sandbox; each knob exists to build a wrong request on purpose."""

    def __init__(self, sandbox: Sandbox, session: aiohttp.ClientSession) -> None:
        self.sandbox = sandbox
        self.session = session

    def path(
        self,
        route: str,
        params: tuple[str, ...],
        *,
        signature: str | None = None,
        public_key: str | None = None,
        workspace: int = 0,
    ) -> str:
        ws = self.sandbox.config.workspaces[workspace]
        sig = sign(ws.private_key, params) if signature is None else signature
        segments = [encode_segment(p) for p in params]
        key = encode_segment(ws.public_key if public_key is None else public_key)
        return "/".join([self.sandbox.base_url, "rest/api", route, *segments, key, sig])

    async def call(
        self,
        method: str,
        route: str,
        *params: str,
        signature: str | None = None,
        public_key: str | None = None,
        workspace: int = 0,
        timeout: float | None = None,
        **request: Any,
    ) -> ApiReply:
        url = self.path(
            route, params, signature=signature, public_key=public_key, workspace=workspace
        )
        return await self.request(method, url, timeout=timeout, **request)

    async def request(
        self, method: str, url: str, *, timeout: float | None = None, **request: Any
    ) -> ApiReply:
        """Send to an already built URL (e.g. one with a hand-made, wrongly encoded segment)."""
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with self.session.request(
            method, url, timeout=client_timeout, allow_redirects=False, **request
        ) as response:
            return ApiReply(response.status, dict(response.headers), await response.read())

    async def upload(
        self,
        content: bytes,
        *,
        filename: str = "recipients.csv",
        content_type: str = "text/csv",
        timeout: float | None = None,
    ) -> ApiReply:
        """sendSMSByFile with ``content`` as the multipart ``file`` part."""
        form = aiohttp.FormData()
        form.add_field("file", content, filename=filename, content_type=content_type)
        instance = str(self.sandbox.config.workspaces[0].instance_id)
        return await self.call("POST", "tools/sendSMSByFile", instance, data=form, timeout=timeout)

    async def control(self, method: str, path: str, json: Any = None) -> Any:
        """A ``/_sandbox/`` call; returns the decoded JSON, raises on HTTP errors."""
        url = f"{self.sandbox.base_url}/_sandbox/{path}"
        async with self.session.request(method, url, json=json) as response:
            response.raise_for_status()
            return await response.json()


@asynccontextmanager
async def sandbox_client(config: SandboxConfig | None = None) -> AsyncIterator[SandboxClient]:
    """A fresh sandbox on a free loopback port and a client session for it."""
    async with running_sandbox(config) as sandbox, aiohttp.ClientSession() as session:
        yield SandboxClient(sandbox, session)
