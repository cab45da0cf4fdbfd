"""The ``to`` document of createBroadcastFromJson (§8), read leniently, validated strictly.

Lenient about shape (a bare list or ``{"recipients": [...]}``, key aliases); strict about
content: any recipient the provider could not send makes the whole call ERROR, naming it,
because a broadcast has no per-recipient reply in which a failure could be reported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ogangi.sandbox.broadcasts import BroadcastError, Recipient
from ogangi.sandbox.recipients import CHARSETS, DEFAULT_ENCODING, lookup_zone, render

MOBILE_KEYS = ("mobile", "mobileNumber", "phone", "number", "to")
TEXT_KEYS = ("text", "message")
PARAM_KEYS = ("params", "parameters")


def parse_recipients(document: str, *, max_rows: int) -> tuple[str, list[Recipient]]:
    """(the first recipient's unrendered text, the recipients with rendered texts)."""
    try:
        doc = json.loads(document)
    except ValueError as exc:
        raise BroadcastError(f"the 'to' field is not valid JSON: {exc}") from None
    if isinstance(doc, Mapping):
        doc = doc.get("recipients")
    if not isinstance(doc, list):
        raise BroadcastError(
            "the 'to' JSON must be a list of recipients or {\"recipients\": [...]}"
        )
    if not doc:
        raise BroadcastError("the 'to' JSON lists no recipients")
    if len(doc) > max_rows:
        raise BroadcastError(f"the 'to' JSON lists more than {max_rows} recipients")
    recipients = [_recipient(index, entry) for index, entry in enumerate(doc)]
    return str(_first(doc[0], TEXT_KEYS)), recipients


def _first(entry: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in entry:
            return entry[key]
    return None


def _recipient(index: int, entry: Any) -> Recipient:
    where = f"recipient #{index}"
    if isinstance(entry, str | int) and not isinstance(entry, bool):
        raise BroadcastError(
            f"{where} is a bare number; this call has no broadcast text, give 'text'"
        )
    if not isinstance(entry, Mapping):
        raise BroadcastError(f"{where} is not an object")
    mobile = _first(entry, MOBILE_KEYS)
    mobile = (
        str(mobile).strip()
        if isinstance(mobile, str | int) and not isinstance(mobile, bool)
        else ""
    )
    if not (8 <= len(mobile) <= 15 and mobile.isdigit() and mobile.isascii()):
        raise BroadcastError(f"{where}: 'mobile' must be 8 to 15 digits")
    template = _first(entry, TEXT_KEYS)
    if not isinstance(template, str) or not template:
        raise BroadcastError(f"{where}: 'text' must be a non-empty string")
    params = _first(entry, PARAM_KEYS) or []
    if not isinstance(params, list) or not all(isinstance(p, str | int | float) for p in params):
        raise BroadcastError(f"{where}: 'params' must be a list of strings")
    encoding = entry.get("encoding") or DEFAULT_ENCODING
    if not isinstance(encoding, str) or encoding.upper() not in CHARSETS:
        raise BroadcastError(f"{where}: unknown encoding {encoding!r}")
    timezone = entry.get("timezone") or None
    if timezone is not None and (not isinstance(timezone, str) or lookup_zone(timezone)[1] is None):
        raise BroadcastError(f"{where}: unknown timezone {timezone!r}")
    return Recipient(mobile, render(template, [str(p) for p in params]), encoding, timezone)
