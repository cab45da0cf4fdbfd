"""The response envelope of §6, built from strings: a 10 000-row reply must cost milliseconds."""

from __future__ import annotations

import re
from datetime import datetime

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
