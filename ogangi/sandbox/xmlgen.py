"""The response envelope of §6, built from strings: a 10 000-row reply must cost milliseconds."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from typing_extensions import Buffer

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
CONTENT_TYPE = "application/xml; charset=UTF-8"

OK = "OK"
ERROR = "ERROR"
BAD_SIGNATURE = "BAD_SIGNATURE"

#: §6: the description is fixed by the status.
DESCRIPTIONS = {
    OK: "Completed",
    BAD_SIGNATURE: "Invalid signature, access denied",
    ERROR: "Internal error, please report this to support@messangi.com",
}

#: Characters XML 1.0 cannot carry at all, even escaped.
INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
#: Anything ``safe_text`` would change: one C-level search decides for the common clean value.
NEEDS_WORK = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


#: ``INVALID_XML_CHARS`` for Arrow's (RE2) regex kernels.
INVALID_XML_RE2 = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x{fffe}\x{ffff}]"
#: What ``escape`` replaces, in the order it must be replaced (``&`` first).
ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))
#: The control characters of ``NEEDS_WORK`` (all single bytes in UTF-8).
_CONTROL_BYTES = bytes(range(0x09)) + b"\x0b\x0c" + bytes(range(0x0E, 0x20))


def needs_work_utf8(data: Buffer) -> bool:
    """``NEEDS_WORK.search`` on UTF-8 text, without decoding it: a few vector compares, and
    exact byte searches only when a suspect byte (control, or U+F000-U+FFFF lead) is there."""
    octets = np.frombuffer(memoryview(data), dtype=np.uint8)
    if not len(octets):
        return False
    if bool(((octets == 0x26) | (octets == 0x3C) | (octets == 0x3E)).any()):  # & < >
        return True
    raw: bytes | None = None
    if bool((octets < 0x20).any()):  # tab, LF and CR are fine
        raw = octets.tobytes()
        if len(raw.translate(None, _CONTROL_BYTES)) != len(raw):
            return True
    if bool((octets == 0xEF).any()):  # U+FFFE and U+FFFF are EF BF BE and EF BF BF
        raw = octets.tobytes() if raw is None else raw
        return b"\xef\xbf\xbe" in raw or b"\xef\xbf\xbf" in raw
    return False


def escape(value: str) -> str:
    """Escape character data; the ``in`` tests make the common clean value nearly free."""
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return value


def clean(value: str) -> str:
    """Drop characters no XML document may contain (they would make the reply unparseable)."""
    return INVALID_XML_CHARS.sub("", value)


def safe_text(value: str) -> str:
    """Arbitrary text made safe for an element body."""
    return escape(clean(value)) if NEEDS_WORK.search(value) else value


def element(name: str, value: str) -> str:
    return f"<{name}>{safe_text(value)}</{name}>"


def envelope_head(input_name: str, status: str) -> str:
    return (
        f"{XML_DECLARATION}<response><input>{safe_text(input_name)}</input>"
        f"<status>{status}</status><description>{DESCRIPTIONS[status]}</description><result>"
    )


ENVELOPE_TAIL = "</result></response>"


def envelope(input_name: str, status: str, result: str = "") -> str:
    return f"{envelope_head(input_name, status)}{result}{ENVELOPE_TAIL}"


def error(input_name: str, reason: str) -> str:
    """ERROR with the project's diagnostic ``<error>`` (§6 extension)."""
    return envelope(input_name, ERROR, element("error", reason))


def iso_millis(moment: datetime) -> str:
    """§3 response date: ``2014-01-24T12:45:50.903-04:30`` (milliseconds, colon offset)."""
    return moment.isoformat(timespec="milliseconds")
