"""What a sandbox simulates: its workspaces, its reading of the ambiguous spec points, its limits.

A ``SandboxConfig`` is a plain mutable dataclass. The running sandbox reads it on every request,
so a test may change ``faults``, ``rps_limit`` or ``broadcast_rate`` while the server runs.
"""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ogangi.models import Credentials
from ogangi.sandbox.faults import FaultPlan

#: Keys of the sandbox workspace when none is configured. Not secrets: the sandbox sends nothing
#: anywhere, and a real provider will never accept them.
SANDBOX_INSTANCE_ID = 8
SANDBOX_PUBLIC_KEY = "SANDBOX-PUBLIC-KEY"
SANDBOX_PRIVATE_KEY = "SANDBOX-PRIVATE-KEY"
SANDBOX_USERNAME = "sandbox"
SANDBOX_SHORTCODES = ("55500",)

InputName = Literal["route", "sendSMS"]

#: §10: safety caps, answered with ERROR when exceeded.
DEFAULT_MAX_ROWS = 100_000
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024


@dataclass
class Workspace:
    """One provider account: keys plus the users allowed to use it and their short codes."""

    instance_id: int
    public_key: str
    private_key: str = field(repr=False)
    users: dict[str, list[str]] = field(default_factory=dict)

    def credentials(self, username: str | None = None) -> Credentials:
        """The client-side view of this workspace, for tests and the demo."""
        user = username if username is not None else next(iter(self.users), SANDBOX_USERNAME)
        return Credentials(
            instance_id=self.instance_id,
            public_key=self.public_key,
            private_key=self.private_key,
            username=user,
        )


def default_workspace() -> Workspace:
    return Workspace(
        instance_id=SANDBOX_INSTANCE_ID,
        public_key=SANDBOX_PUBLIC_KEY,
        private_key=SANDBOX_PRIVATE_KEY,
        users={SANDBOX_USERNAME: list(SANDBOX_SHORTCODES)},
    )


@dataclass
class SandboxConfig:
    """Everything a sandbox instance does differently from another.

    ``lenient`` also accepts upper-case hex signatures (§2.2). ``input_name="sendSMS"`` makes the
    file blast echo the doc sample's ``<input>`` (§13 A10). ``carriers=None`` accepts any carrier.
    ``broadcast_rate`` is messages per second per broadcast. ``timezone`` reads broadcast start
    dates and writes broadcast dates. ``shortcode_ignore_literal`` follows the docs' wording of
    ``shortcodeIgnore`` ("false" ignores the shortcode, §13 A7); ``False`` selects the intuitive one.
    ``force_suspend_after`` puts every broadcast into FORCED_SUSPENDED once it sent that many.
    """

    workspaces: list[Workspace] = field(default_factory=lambda: [default_workspace()])
    lenient: bool = False
    input_name: InputName = "route"
    carriers: tuple[str, ...] | None = None
    broadcast_rate: float = 50.0
    timezone: str = "UTC"
    shortcode_ignore_literal: bool = True
    force_suspend_after: int | None = None
    faults: FaultPlan = field(default_factory=FaultPlan)
    rps_limit: float | None = None
    ledger_path: Path | None = None
    max_rows: int = DEFAULT_MAX_ROWS
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES

    def __post_init__(self) -> None:
        if not self.workspaces:
            raise ValueError("a sandbox needs at least one workspace")
        if self.broadcast_rate <= 0:
            raise ValueError("broadcast_rate must be positive (messages per second)")
        try:  # fail at startup, not on the first broadcast
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None
        keys = [w.public_key for w in self.workspaces]
        if len(set(keys)) != len(keys):
            raise ValueError("two workspaces share a public key")

    def workspace_by_key(self, public_key: str) -> Workspace | None:
        for workspace in self.workspaces:
            if workspace.public_key == public_key:
                return workspace
        return None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SandboxConfig:
        """One workspace from ``OGANGI_*`` variables, each falling back to the sandbox default.

        ``OGANGI_SHORTCODE`` may list several codes separated by commas.
        """
        env = os.environ if environ is None else environ
        base = default_workspace()
        username = env.get("OGANGI_USERNAME") or SANDBOX_USERNAME
        codes = [c.strip() for c in env.get("OGANGI_SHORTCODE", "").split(",") if c.strip()]
        workspace = Workspace(
            instance_id=int(env.get("OGANGI_INSTANCE_ID") or base.instance_id),
            public_key=env.get("OGANGI_PUBLIC_KEY") or base.public_key,
            private_key=env.get("OGANGI_PRIVATE_KEY") or base.private_key,
            users={username: codes or list(SANDBOX_SHORTCODES)},
        )
        return cls(workspaces=[workspace])
