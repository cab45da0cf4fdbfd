"""The byte scan of big sendSMSByFile replies reads exactly what the XML parser reads, and
hands everything less regular to the parser."""

from __future__ import annotations

import sys

import pyarrow as pa
import pytest

from ogangi.errors import MalformedResponse
from ogangi.xml import (
    _PY_WHITESPACE,
    MessageColumns,
    _screen,
    _tree_message_columns,
    parse_message_columns,
    scan_regular_reply,
)

MESSAGE = (
    "<message><id>-67{n}</id><carrier>c</carrier><from>55500</from><to>1305555010{n}</to>"
    "<text>Hi &amp; there</text><status>{status}</status>"
    "<statusDescription>{description}</statusDescription></message>"
)


def reply(*messages: str, head: str = "", root: bool = True, sep: str = "") -> bytes:
    body = (
        f"<input>sendSMSByFile</input>{sep}<status>OK</status>{sep}"
        f"<description>Completed</description>{sep}<result><messages>{sep}"
        + sep.join(messages)
        + f"{sep}</messages></result>"
    )
    return (head + (f"<response>{body}</response>" if root else body)).encode()


def messages(count: int = 3) -> list[str]:
    return [
        MESSAGE.format(n=n, status="SENT_TO_CARRIER", description="Sent to Carrier")
        for n in range(count)
    ]


def tree(body: bytes) -> object:
    return _tree_message_columns(body, _screen(body, 10**8)[0])


@pytest.mark.parametrize(
    "body",
    [
        reply(*messages()),
        reply(*messages(), root=False),
        reply(*messages(), head='<?xml version="1.0" encoding="UTF-8"?>'),
        reply(*messages(), sep="\n  "),
        reply(MESSAGE.format(n=1, status="BAD_TO", description="")),
    ],
    ids=["response-root", "no-root", "declaration", "indented", "empty-description"],
)
def test_regular_replies_are_scanned_and_read_as_the_parser_reads_them(body: bytes) -> None:
    """The usual shapes take the fast path and give the same columns as lxml."""
    scanned = scan_regular_reply(body)
    assert scanned is not None
    assert scanned[1] == tree(body)[1]  # type: ignore[index]
    assert scanned[0].status == "OK" and scanned[0].input == "sendSMSByFile"


IRREGULAR = {
    "entity-in-a-field": MESSAGE.format(n=1, status="SENT", description="Sent &amp; kept"),
    "cdata": MESSAGE.format(n=1, status="SENT", description="x").replace(
        "Hi &amp; there", "<![CDATA[<to>999</to>]]>"
    ),
    "comment": MESSAGE.format(n=1, status="SENT", description="x").replace(
        "<carrier>", "<!-- <to>999</to> --><carrier>"
    ),
    "attribute": MESSAGE.format(n=1, status="SENT", description="x").replace(
        "<to>", '<to type="msisdn">'
    ),
    "field-missing": MESSAGE.format(n=1, status="SENT", description="x").replace(
        "<id>-671</id>", ""
    ),
    "field-twice": MESSAGE.format(n=1, status="SENT", description="x").replace(
        "<carrier>c</carrier>", "<to>999</to>"
    ),
}


@pytest.mark.parametrize("extra", IRREGULAR.values(), ids=IRREGULAR.keys())
def test_irregular_replies_go_to_the_parser_and_read_the_same(extra: str) -> None:
    """Anything the scan cannot read exactly is refused by it; the result is the parser's."""
    body = reply(*messages(2), extra)
    assert scan_regular_reply(body) is None
    assert parse_message_columns(body) == tree(body)


def test_an_error_reply_is_left_to_the_parser() -> None:
    """Only OK replies are scanned: an ERROR keeps its diagnostic from the parser."""
    body = (
        b"<response><status>ERROR</status><description>Internal error</description>"
        b"<result><error>no file part</error><messages></messages></result></response>"
    )
    assert scan_regular_reply(body) is None
    envelope, _ = parse_message_columns(body)
    assert envelope.error == "no file part"


def test_junk_after_the_messages_is_not_scanned_as_a_reply() -> None:
    """Bytes after the closing tags make the reply irregular; the parser then refuses it."""
    body = reply(*messages()) + b"<script>"
    assert scan_regular_reply(body) is None
    with pytest.raises(MalformedResponse):
        parse_message_columns(body)


def test_a_doctype_is_refused_before_any_scan() -> None:
    """The screening still runs first: a DTD is refused, never scanned."""
    body = b'<!DOCTYPE r [<!ENTITY x "y">]>' + reply(*messages())
    with pytest.raises(MalformedResponse, match="DOCTYPE"):
        parse_message_columns(body)


# --- the vectorized scan against lxml, shape by shape -------------------------------------------

SANDBOX = (
    "<message><id>{id}</id><carrier>{carrier}</carrier><from>55500</from><to>{to}</to>"
    "<text>{text}</text><status>{status}</status>"
    "<statusDescription>{description}</statusDescription><encoding>UTF-8</encoding>"
    "<date>2026-11-25T10:30:34.443+00:00</date><timezone>UTC</timezone></message>"
)


def sandbox_message(n: int, text: str = "Hola {n}, tu código es {n}", **fields: str) -> str:
    values = {
        "id": f"{-(10**18) + n}",
        "carrier": "",
        "to": f"1305555{n:04d}",
        "text": text.format(n=n),
        "status": "SENT_TO_CARRIER",
        "description": "Sent to Carrier",
    }
    return SANDBOX.format(**{**values, **fields})


def columns(body: bytes) -> tuple[list[str | None], list[str], list[str], list[str]]:
    _, found = parse_message_columns(body)
    assert found is not None
    return (
        found.id.to_pylist(),
        found.to.to_pylist(),
        found.status.to_pylist(),
        found.status_description.to_pylist(),
    )


REGULAR = {
    "sandbox-1000": reply(*(sandbox_message(n) for n in range(1000))),
    "sandbox-no-root": reply(*(sandbox_message(n) for n in range(50)), root=False),
    "one-message": reply(sandbox_message(7)),
    "non-ascii-text": reply(
        sandbox_message(1, text="Ñandú ☃ 中文 😀 &lt;b&gt; a > b"),
        sandbox_message(2, description="Envió al operador ✓"),
    ),
    "newlines-and-tabs": reply(*(sandbox_message(n) for n in range(5)), sep="\n\t "),
    "crlf": reply(*(sandbox_message(n) for n in range(5)), sep="\r\n"),
    "padded-values": reply(
        sandbox_message(1, to="  13055550001\n", status="\tBAD_TO ", description=" x\u00a0"),
        sandbox_message(2, id="\u3000-9\u2028", description="\u0085Sent\u2003"),
    ),
    "empty-id-and-description": reply(
        sandbox_message(1, id="", description=""), sandbox_message(2, id="  ")
    ),
    "fields-in-another-order": reply(
        sandbox_message(1),
        "<message><statusDescription>d</statusDescription><to>13055550002</to><status>S</status>"
        "<text>t</text><id>-2</id></message>",
        sandbox_message(3),
    ),
    "self-closed-other-tags": reply(
        "<message><id>-1</id><carrier/><to>1</to><text/><status>S</status>"
        "<statusDescription>D</statusDescription></message>"
    ),
    "nested-markup-in-other-fields": reply(
        sandbox_message(1, text="<b>bold</b> &amp; <i x='1'>it</i>"),
    ),
}


@pytest.mark.parametrize("body", REGULAR.values(), ids=REGULAR.keys())
def test_the_scan_reads_regular_replies_exactly_as_lxml(body: bytes) -> None:
    """Arrow columns equal to lxml's, value for value (trimmed, empty id -> null)."""
    scanned = scan_regular_reply(body)
    assert scanned is not None
    assert scanned == tree(body)
    for array in (scanned[1].id, scanned[1].to, scanned[1].status, scanned[1].status_description):
        assert array.type == pa.string()


def test_the_scan_keeps_values_and_order() -> None:
    """Spot values: order of the reply, non-ASCII kept, white space trimmed, empty id null."""
    ids, tos, statuses, descriptions = columns(REGULAR["padded-values"])
    assert ids == [str(-(10**18) + 1), "-9"]
    assert tos == ["13055550001", "13055550002"]
    assert statuses == ["BAD_TO", "SENT_TO_CARRIER"]
    assert descriptions == ["x", "Sent"]
    assert columns(REGULAR["empty-id-and-description"])[0] == [None, None]
    assert columns(REGULAR["non-ascii-text"])[3] == ["Sent to Carrier", "Envió al operador ✓"]
    assert columns(REGULAR["fields-in-another-order"])[1] == [
        "13055550001", "13055550002", "13055550003",
    ]  # fmt: skip


def test_an_empty_list_is_scanned_as_no_messages() -> None:
    """``<messages></messages>`` (or only white space inside): zero columns of length 0."""
    for body in (reply(), reply(sep="\n  "), reply(root=False)):
        scanned = scan_regular_reply(body)
        assert scanned is not None and len(scanned[1]) == 0
        assert scanned == tree(body)


def test_the_trim_matches_str_strip() -> None:
    """The scan trims the characters ``str.strip()`` does, all of them."""
    assert set(_PY_WHITESPACE) == {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}


IRREGULAR_LISTS = {
    "nested-message": sandbox_message(1).replace("<carrier>", "<message><carrier>", 1)
    + "</message>",
    "stray-close": sandbox_message(1).replace("<text>", "</message><text>"),
    "text-between-messages": sandbox_message(1) + "junk",
    "tag-between-messages": sandbox_message(1) + "<x/>",
    "message-attribute": sandbox_message(1).replace("<message>", '<message n="1">'),
    "space-in-field-tag": sandbox_message(1).replace("<to>", "<to >"),
    "space-in-closing-tag": sandbox_message(1).replace("</to>", "</to >"),
    "nested-tag-in-field": sandbox_message(1).replace("<status>", "<status><b/>"),
    "field-self-closed": sandbox_message(1).replace(
        "<statusDescription>Sent to Carrier</statusDescription>", "<statusDescription/>"
    ),
    "processing-instruction": sandbox_message(1).replace("<text>", "<?pi x?><text>"),
    "namespaced-field": sandbox_message(1).replace("<to>", '<to xmlns="urn:x">'),
    "unclosed-message": sandbox_message(1).removesuffix("</message>"),
}


@pytest.mark.parametrize("extra", IRREGULAR_LISTS.values(), ids=IRREGULAR_LISTS.keys())
def test_irregular_lists_fall_back_to_lxml(extra: str) -> None:
    """Whatever the scan cannot read exactly, it refuses; the answer is then lxml's (columns
    or MalformedResponse alike)."""
    body = reply(*(sandbox_message(n) for n in range(2, 5)), extra)
    assert scan_regular_reply(body) is None
    try:
        expected = tree(body)
    except MalformedResponse:
        with pytest.raises(MalformedResponse):
            parse_message_columns(body)
    else:
        assert parse_message_columns(body) == expected


def test_a_body_that_is_not_utf8_is_not_scanned() -> None:
    """A byte sequence that is not UTF-8, even in a field the scan does not read, goes to
    lxml, which refuses it."""
    body = reply(sandbox_message(1), sandbox_message(2)).replace(b"Hola 2", b"Hola \xff2")
    assert scan_regular_reply(body) is None
    with pytest.raises(MalformedResponse):
        parse_message_columns(body)


def test_a_comment_anywhere_takes_the_parser_path_and_still_parses() -> None:
    """A ``<!`` outside a declaration (a comment) means no scan, and the screening's DTD
    regex runs: the reply is read by lxml."""
    body = reply(sandbox_message(1), "<!-- generated -->", sandbox_message(2))
    assert scan_regular_reply(body) is None
    assert parse_message_columns(body) == tree(body)


@pytest.mark.parametrize("declaration", ["<!DOCTYPE r>", '<!ENTITY x "y">', "<! doctype r>"])
def test_every_declaration_is_still_refused(declaration: str) -> None:
    """The fast screening (no "<!" at all) never lets a DOCTYPE or ENTITY through."""
    body = reply(sandbox_message(1)).replace(b"<messages>", f"{declaration}<messages>".encode())
    with pytest.raises(MalformedResponse, match="DOCTYPE"):
        parse_message_columns(body)


def test_message_columns_accept_lists_and_check_lengths() -> None:
    """Lists become Arrow ``string`` arrays; fields of different lengths are refused."""
    made = MessageColumns(id=["-1", None], to=["1", "2"], status=["S", "S"],
                          status_description=["d", "d"])  # fmt: skip
    assert made.id.type == pa.string() and made.id.null_count == 1 and len(made) == 2
    with pytest.raises(ValueError, match="same length"):
        MessageColumns(id=["-1"], to=["1", "2"], status=["S"], status_description=["d"])
