"""A faithful local simulator of the Ogangi API (spec sections 2, 4-10; see README.md here).

No SMS leave the machine. Tests, the demo and the benchmarks talk to it over real HTTP::

    async with running_sandbox(SandboxConfig()) as sb:
        client = OgangiClient(sb.base_url, sb.credentials())
        sb.config.faults = FaultPlan(rates={FaultKind.HTTP_503: 0.1}, seed=1)
        ...
        assert len(sb.ledger) == expected

or as a process: ``python -m ogangi.sandbox --port 8765``. See ``README.md`` next to this file.
"""

from __future__ import annotations

from ogangi.sandbox.config import SandboxConfig, Workspace
from ogangi.sandbox.faults import FaultKind, FaultPlan
from ogangi.sandbox.ledger import Ledger, LedgerEntry
from ogangi.sandbox.server import Sandbox, running_sandbox, serve

__all__ = [
    "FaultKind",
    "FaultPlan",
    "Ledger",
    "LedgerEntry",
    "Sandbox",
    "SandboxConfig",
    "Workspace",
    "running_sandbox",
    "serve",
]
