"""The sendSMSByFile reply (§5.1) and the ledger rows, for either reading of the file.

Both builders emit the same XML for the same rows; the uniform one joins constant fragments
with Arrow columns (ids, numbers, escaped texts) in C, so a 10 000-row reply makes no Python
object per row, and hands the ledger its columns as they are.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from ogangi.sandbox import xmlgen
from ogangi.sandbox.columns import Column, joined_bytes, strings
from ogangi.sandbox.ledger import Accepted, AcceptedColumns
from ogangi.sandbox.recipients import STATUS_DESCRIPTIONS, Row, UniformRows, lookup_zone
from ogangi.sandbox.xmlgen import escape, safe_text

_SENT = "<status>SENT_TO_CARRIER</status><statusDescription>Sent to Carrier</statusDescription>"


def _tail(instant: datetime, tz: str, fallback: zoneinfo.ZoneInfo) -> str:
    """Date (in the row's zone when it resolves) and time zone: the same for a whole upload."""
    date = xmlgen.iso_millis(instant.astimezone(lookup_zone(tz)[1] or fallback))
    return f"<date>{date}</date><timezone>{safe_text(tz)}</timezone></message>"


def _head(carrier: str) -> str:
    return f"</id><carrier>{safe_text(carrier)}</carrier><from>"


def uniform_reply(
    rows: UniformRows,
    ids: Sequence[str] | Column,
    instant: datetime,
    fallback: zoneinfo.ZoneInfo,
) -> tuple[bytes, AcceptedColumns]:
    """The reply's ``<messages>`` (UTF-8) and the ledger's columns, with no object per row."""
    messages, accepted = uniform_messages(rows, ids, instant, fallback)
    return b"".join((b"<messages>", memoryview(messages), b"</messages>")), accepted


def uniform_messages(
    rows: UniformRows,
    ids: Sequence[str] | Column,
    instant: datetime,
    fallback: zoneinfo.ZoneInfo,
) -> tuple[pa.Buffer, AcceptedColumns]:
    """``uniform_reply`` without the ``<messages>`` wrapper, as the one buffer Arrow wrote:
    the server sends it as it is, so the 10 000 elements are never copied in Python."""
    texts = rows.texts
    shown = texts
    # Characters XML cannot carry are dropped from what is "sent", not only from the reply.
    if xmlgen.needs_work_utf8(joined_bytes(texts)):
        texts = shown = pc.replace_substring_regex(texts, xmlgen.INVALID_XML_RE2, "")
        for char, entity in xmlgen.ENTITIES:
            shown = pc.replace_substring(shown, char, entity)
    id_column = strings(ids)
    middle = f"{_head(rows.carrier)}{rows.sender}</from><to>"
    end = (
        f"</text>{_SENT}<encoding>{rows.encoding}</encoding>"
        f"{_tail(instant, rows.timezone, fallback)}"
    )
    messages = pc.binary_join_element_wise(
        "<message><id>", id_column, middle, rows.mobiles, "</to><text>", shown, end, ""
    )
    return joined_bytes(messages), AcceptedColumns(id_column, rows.mobiles, rows.sender, texts)


def rows_reply(
    rows: Sequence[Row], ids: Sequence[str], instant: datetime, fallback: zoneinfo.ZoneInfo
) -> tuple[str, list[Accepted]]:
    needs_work = xmlgen.NEEDS_WORK.search
    heads: dict[str, str] = {}
    tails: dict[str, str] = {}
    accepted: list[Accepted] = []
    keep = accepted.append
    parts = ["<messages>"]
    add = parts.append
    for mid, (status, to, sender, carrier, text, encoding, tz) in zip(ids, rows, strict=True):
        tail = tails.get(tz)
        if tail is None:
            tail = tails[tz] = _tail(instant, tz, fallback)
        head = heads.get(carrier)
        if head is None:
            head = heads[carrier] = _head(carrier)
        if status is None:
            # Validated fields (digits, alnum sender, charset, zone id) are XML-safe as they are.
            shown = text
            if needs_work(text):
                text = xmlgen.clean(text)
                shown = escape(text)
            keep((mid, to, sender, text))
            add(
                f"<message><id>{mid}{head}{sender}</from><to>{to}</to><text>{shown}</text>"
                f"{_SENT}<encoding>{encoding}</encoding>{tail}"
            )
        else:
            add(
                f"<message><id>{mid}{head}{safe_text(sender)}</from><to>{safe_text(to)}</to>"
                f"<text>{safe_text(text)}</text><status>{status}</status>"
                f"<statusDescription>{STATUS_DESCRIPTIONS[status]}</statusDescription>"
                f"<encoding>{safe_text(encoding)}</encoding>{tail}"
            )
    add("</messages>")
    return "".join(parts), accepted
