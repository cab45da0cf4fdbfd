"""The byte scan of big sendSMSByFile replies reads exactly what the XML parser reads, and
hands everything less regular to the parser."""

from __future__ import annotations

import pytest

from ogangi.errors import MalformedResponse
from ogangi.xml import _screen, _tree_message_columns, parse_message_columns, scan_regular_reply

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
