"""The work behind each §5 method, once the call is routed and its signature checked.

Each handler returns the inner XML of ``<result>`` or raises ``ApiError`` (status ERROR). The
XML is text, or UTF-8 pieces (bytes-like) when it was built as bytes: the server sends those as
they are, one after the other.
"""

from __future__ import annotations

import base64
import binascii
import re
import zoneinfo
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import BodyPartReader, web

from ogangi.sandbox import blast, xmlgen
from ogangi.sandbox.broadcast_json import parse_recipients
from ogangi.sandbox.broadcasts import Broadcast, BroadcastError, BroadcastSpec
from ogangi.sandbox.config import Workspace
from ogangi.sandbox.ledger import Rows
from ogangi.sandbox.recipients import UniformRows, parse_recipient_file
from ogangi.sandbox.state import SandboxState
from ogangi.sandbox.tables import FileRejected
from ogangi.sandbox.xmlgen import safe_text
from ogangi.signing import NULL

START_DATE_FORMAT = "%d-%m-%Y %H:%M"
_URLSAFE_B64 = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_CHUNK = 1 << 16


class ApiError(Exception):
    """Answer status ERROR with this reason in ``<result><error>``."""


@dataclass(frozen=True)
class Call:
    request: web.Request
    state: SandboxState
    workspace: Workspace
    params: dict[str, str]
    request_id: str
    now: float

    @property
    def instance_id(self) -> int:
        return self.workspace.instance_id


#: UTF-8 pieces of XML, sent one after the other without being joined.
XmlPieces = tuple[bytes | memoryview, ...]
Handler = Callable[[Call], Awaitable[str | XmlPieces]]


# -- sendSMSByFile ---------------------------------------------------------------------------


async def send_sms_by_file(call: Call) -> str | XmlPieces:
    """§5.1: one ``<message>`` per row in file order; valid rows enter the ledger."""
    config = call.state.config
    data = await _read_file_part(call.request, config.max_upload_bytes)
    try:
        rows = parse_recipient_file(data, carriers=config.carriers, max_rows=config.max_rows)
    except FileRejected as exc:
        raise ApiError(str(exc)) from None
    instant = datetime.fromtimestamp(call.now, UTC)
    xml: str | XmlPieces
    accepted: Rows
    if isinstance(rows, UniformRows):
        ids = call.state.message_id_column(len(rows))
        messages, accepted = blast.uniform_messages(rows, ids, instant, call.state.zone)
        xml = (b"<messages>", memoryview(messages), b"</messages>")
    else:
        xml, accepted = blast.rows_reply(
            rows, call.state.message_ids(len(rows)), instant, call.state.zone
        )
    call.state.ledger.record("file", accepted, request_id=call.request_id, at=call.now)
    return xml


async def _read_file_part(request: web.Request, cap: int) -> bytes:
    if not request.content_type.startswith("multipart/"):
        raise ApiError("expected a multipart/form-data upload with a 'file' part")
    try:
        reader = await request.multipart()
        async for part in reader:
            if isinstance(part, BodyPartReader) and part.name == "file":
                chunks: list[bytes] = []
                size = 0
                while chunk := await part.read_chunk(_CHUNK):
                    size += len(chunk)
                    if size > cap:
                        raise ApiError(f"the file is larger than {cap} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
    except ValueError as exc:
        raise ApiError(f"malformed multipart body: {exc}") from None
    raise ApiError("the upload has no 'file' part")


# -- getShortcodes ---------------------------------------------------------------------------


async def get_shortcodes(call: Call) -> str:
    """§5.2: the user's short/long codes, as text (leading zeros kept)."""
    user = resolve_user(call.workspace, call.params["userName"])
    codes = "".join(
        f"<shortcode><sc>{safe_text(code)}</sc></shortcode>" for code in call.workspace.users[user]
    )
    return f"<shortcodes>{codes}</shortcodes>"


def resolve_user(workspace: Workspace, raw: str) -> str:
    """§5.2: plain user name first, then URL-safe Base64 with or without padding."""
    if raw in workspace.users:
        return raw
    if _URLSAFE_B64.fullmatch(raw):
        bare = raw.rstrip("=")
        try:
            name = base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4)).decode("utf-8")
        except (binascii.Error, ValueError):
            name = None
        if name is not None and name in workspace.users:
            return name
    raise ApiError("unknown user for this instance")


# -- broadcasts ------------------------------------------------------------------------------


async def create_broadcast_from_json(call: Call) -> str:
    """§5.3: ``-1`` creates, an existing id edits (unless DONE/ABORTED)."""
    p = call.params
    broadcast_id = _broadcast_id(p["broadcastId"], allow_new=True)
    owner = resolve_user(call.workspace, p["userName"])
    sender = _effective_sender(call, owner, p["shortcode"], p["shortcodeIgnore"])
    start_at = _start_date(p["date"], call.state.zone)
    document = await _read_to_field(call.request)
    try:
        text, recipients = parse_recipients(document, max_rows=call.state.config.max_rows)
        spec = BroadcastSpec(
            owner=owner,
            sender=sender,
            shortcode_param=p["shortcode"],
            shortcode_ignore=p["shortcodeIgnore"] == "true",
            campaign=None if p["campaignName"] == NULL else p["campaignName"],
            text=text,
            recipients=recipients,
            start_at=start_at,
            request_id=call.request_id,
        )
        book = call.state.broadcasts
        if broadcast_id == -1:
            item = book.create(call.instance_id, spec, call.now)
        else:
            item = book.edit(call.instance_id, broadcast_id, spec, call.now)
    except BroadcastError as exc:
        raise ApiError(str(exc)) from None
    return broadcast_element(item, call.state.zone)


def _effective_sender(call: Call, owner: str, shortcode: str, flag: str) -> str:
    """§13 A7: by default ``false`` means "ignore the shortcode and use the owner's default"."""
    if flag not in ("true", "false"):
        raise ApiError("shortcodeIgnore must be 'true' or 'false'")
    ignored = (flag == "false") == call.state.config.shortcode_ignore_literal
    codes = call.workspace.users[owner]
    if ignored:
        if not codes:
            raise ApiError("the user has no shortcode to send from")
        return codes[0]
    if shortcode not in codes:
        raise ApiError(f"shortcode {shortcode} does not belong to this user")
    return shortcode


def _start_date(raw: str, zone: zoneinfo.ZoneInfo) -> float | None:
    if raw == NULL:
        return None
    try:
        local = datetime.strptime(raw, START_DATE_FORMAT)
    except ValueError:
        raise ApiError("date must be 'dd-MM-yyyy HH:mm' or null") from None
    if raw != local.strftime(START_DATE_FORMAT):  # strptime also takes "1-2-2024 9:5"
        raise ApiError("date must be 'dd-MM-yyyy HH:mm' or null")
    return local.replace(tzinfo=zone).timestamp()


async def _read_to_field(request: web.Request) -> str:
    """§4: ``to`` from a urlencoded or multipart form, else the raw body as JSON."""
    try:
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            value = form.get("to")
            if value is None:
                raise ApiError("the form has no 'to' field")
            if isinstance(value, web.FileField):
                return value.file.read().decode("utf-8")
            if isinstance(value, bytes | bytearray):
                return bytes(value).decode("utf-8")
            return value
        return (await request.read()).decode("utf-8")
    except web.HTTPRequestEntityTooLarge:
        raise ApiError("the request body is too large") from None
    except UnicodeDecodeError:
        raise ApiError("the 'to' field is not UTF-8") from None


def _broadcast_id(raw: str, *, allow_new: bool = False) -> int:
    if allow_new and raw == "-1":
        return -1
    if not (raw.isdigit() and raw.isascii()) or int(raw) == 0:
        raise ApiError("broadcastId must be a positive integer" + (" or -1" if allow_new else ""))
    return int(raw)


def _broadcast_action(
    action: Callable[[SandboxState, int, int, float], Broadcast],
) -> Handler:
    async def handle(call: Call) -> str:
        broadcast_id = _broadcast_id(call.params["broadcastId"])
        try:
            item = action(call.state, call.instance_id, broadcast_id, call.now)
        except BroadcastError as exc:
            raise ApiError(str(exc)) from None
        return broadcast_element(item, call.state.zone)

    return handle


get_broadcast = _broadcast_action(lambda s, i, b, now: s.broadcasts.get(i, b, now))
suspend_broadcast = _broadcast_action(lambda s, i, b, now: s.broadcasts.suspend(i, b, now))
resume_broadcast = _broadcast_action(lambda s, i, b, now: s.broadcasts.resume(i, b, now))
stop_broadcast = _broadcast_action(lambda s, i, b, now: s.broadcasts.stop(i, b, now))


async def delete_broadcast(call: Call) -> str:
    """§5.6: the docs' generic ``transactionResult``."""
    broadcast_id = _broadcast_id(call.params["broadcastId"])
    try:
        call.state.broadcasts.delete(call.instance_id, broadcast_id, call.now)
    except BroadcastError as exc:
        raise ApiError(str(exc)) from None
    return (
        "<transactionResult><successful>true</successful>"
        "<message>Broadcast deleted</message></transactionResult>"
    )


def broadcast_element(item: Broadcast, zone: zoneinfo.ZoneInfo) -> str:
    """§5.4, status as the bare name (§13 A16); ``endDate`` empty until the broadcast is final."""

    def date(at: float | None) -> str:
        return "" if at is None else xmlgen.iso_millis(datetime.fromtimestamp(at, zone))

    return (
        f"<broadcast><id>{item.id}</id>{xmlgen.element('text', item.spec.text)}"
        f"<startDate>{date(item.start_at)}</startDate><endDate>{date(item.end_at)}</endDate>"
        f"<expectedMessages>{item.expected}</expectedMessages>"
        f"<sentMessages>{item.sent}</sentMessages><status>{item.status.value}</status>"
        f"{xmlgen.element('shortcode', item.spec.sender)}</broadcast>"
    )


HANDLERS: dict[str, Handler] = {
    "sendSMSByFile": send_sms_by_file,
    "getShortcodes": get_shortcodes,
    "createBroadcastFromJson": create_broadcast_from_json,
    "getBroadcast": get_broadcast,
    "suspendBroadcast": suspend_broadcast,
    "resumeBroadcast": resume_broadcast,
    "stopBroadcast": stop_broadcast,
    "deleteBroadcast": delete_broadcast,
}
