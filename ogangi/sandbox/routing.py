"""§5 routes and the §2.4 verification procedure, on the raw (still percent-encoded) path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ogangi.sandbox.config import SandboxConfig, Workspace
from ogangi.signing import decode_segment, verify

API_PREFIX = "/rest/api/"
READ_OR_ACT = frozenset({"GET", "POST"})


@dataclass(frozen=True)
class RouteSpec:
    """``name`` is the method name echoed in ``<input>``; ``path`` the literal route segments."""

    name: str
    path: tuple[str, ...]
    params: tuple[str, ...]
    methods: frozenset[str]

    @property
    def segment_count(self) -> int:
        return len(self.path) + len(self.params) + 2  # + publicKey + signature


_ID = ("instanceId", "broadcastId")

ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("sendSMSByFile", ("tools", "sendSMSByFile"), ("instanceId",), frozenset({"POST"})),
    RouteSpec("getShortcodes", ("getShortcodes",), ("instanceId", "userName"), frozenset({"GET"})),
    RouteSpec(
        "createBroadcastFromJson",
        ("createBroadcastFromJson",),
        (
            "instanceId",
            "broadcastId",
            "shortcode",
            "userName",
            "shortcodeIgnore",
            "campaignName",
            "date",
        ),
        frozenset({"POST"}),
    ),
    # §4: verbs of these four are undocumented; the simulator accepts GET or POST.
    RouteSpec("getBroadcast", ("getBroadcast",), _ID, READ_OR_ACT),
    RouteSpec("suspendBroadcast", ("suspendBroadcast",), _ID, READ_OR_ACT),
    RouteSpec("resumeBroadcast", ("resumeBroadcast",), _ID, READ_OR_ACT),
    RouteSpec("stopBroadcast", ("stopBroadcast",), _ID, READ_OR_ACT),
    RouteSpec("deleteBroadcast", ("broadcast",), _ID, frozenset({"DELETE"})),
)


def split_path(raw_path: str) -> list[str] | None:
    """The raw segments after ``/rest/api/``; the query string is not part of the protocol."""
    path = raw_path.partition("?")[0]
    if not path.startswith(API_PREFIX):
        return None
    return path[len(API_PREFIX) :].split("/")


def match(segments: Sequence[str]) -> RouteSpec | None:
    """§2.4 step 1: route name and exact segment count (the verb is checked by the caller)."""
    for spec in ROUTES:
        if len(segments) == spec.segment_count and tuple(segments[: len(spec.path)]) == spec.path:
            return spec
    return None


@dataclass(frozen=True)
class Authenticated:
    workspace: Workspace
    params: dict[str, str]


def authenticate(
    config: SandboxConfig, spec: RouteSpec, segments: Sequence[str]
) -> Authenticated | None:
    """§2.4 steps 2-3 over the percent-decoded segments; ``None`` means BAD_SIGNATURE."""
    try:
        decoded = [decode_segment(s) for s in segments[len(spec.path) :]]
    except UnicodeDecodeError:
        return None
    *params, public_key, signature = decoded
    workspace = config.workspace_by_key(public_key)
    if workspace is None or params[0] != str(workspace.instance_id):
        return None
    if not signature.isascii():  # compare_digest refuses non-ASCII text
        return None
    if not verify(workspace.private_key, params, signature, lenient=config.lenient):
        return None
    return Authenticated(workspace, dict(zip(spec.params, params, strict=True)))
