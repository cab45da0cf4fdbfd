"""Hardened XML parsing: hostile documents refused, lenient envelope, fast message lists."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ogangi.errors import MalformedResponse
from ogangi.models import BroadcastStatus
from ogangi.xml import (
    parse_broadcast,
    parse_date,
    parse_envelope,
    parse_messages,
    parse_shortcodes,
    parse_transaction,
)

MESSAGE = (
    "<message><id>-6710228708174720670</id><carrier>carrierName</carrier>"
    "<from>19893653744</from><to>18133210984</to><text>OGANGI TEST MESSAGE</text>"
    "<status>SENT_TO_CARRIER</status><statusDescription>Sent to Carrier</statusDescription>"
    "<encoding>UTF-8</encoding><date>2014-12-17T00:12:13.571-04:30</date>"
    "<timezone>America/Caracas</timezone><clientId>As223sdadq8d8287v5v</clientId></message>"
)
#: The vendor page's sendSMSByFile sample: four top-level elements, no root.
ROOTLESS = (
    "<input>sendSMS</input> <status>OK</status> <description>Completed</description> "
    f"<result> <messages> {MESSAGE} </messages> </result>"
).encode()
ROOTED = (
    '<?xml version="1.0" encoding="UTF-8"?><response><input>sendSMSByFile</input>'
    f"<status>OK</status><description>Completed</description><result><messages>{MESSAGE}"
    "</messages></result></response>"
).encode()

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<response><status>OK</status><description>&lol9;</description></response>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<response><status>OK</status><description>&xxe;</description></response>"""
PARSERS: list[Callable[..., Any]] = [parse_envelope, parse_messages]


def _envelope(status: str = "OK", result: str = "") -> bytes:
    return (
        f"<response><input>x</input><status>{status}</status>"
        f"<description>d</description><result>{result}</result></response>"
    ).encode()


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        b'<!DOCTYPE response SYSTEM "http://127.0.0.1:9/evil.dtd"><response/>',
        b"<response><status>OK</status></response><!ENTITY a 'b'>",
    ],
    ids=["billion-laughs", "external-entity", "external-dtd", "stray-entity"],
)
def test_dtd_and_entity_declarations_are_refused(parse: Callable[..., Any], body: bytes) -> None:
    """Any DOCTYPE or ENTITY declaration is refused, never expanded or fetched."""
    with pytest.raises(MalformedResponse, match="DOCTYPE or ENTITY") as caught:
        parse(body)
    assert "root:" not in str(caught.value)


@pytest.mark.parametrize("parse", PARSERS)
def test_utf16_body_cannot_smuggle_a_doctype(parse: Callable[..., Any]) -> None:
    """A UTF-16 document (whose DOCTYPE the byte scan cannot see) is refused as garbage."""
    body = EXTERNAL_ENTITY.replace(b'<?xml version="1.0"?>', b"").decode().encode("utf-16")
    with pytest.raises(MalformedResponse):
        parse(body)


@pytest.mark.parametrize("parse", PARSERS)
def test_declared_foreign_encoding_is_refused(parse: Callable[..., Any]) -> None:
    """Only ASCII-compatible encodings are accepted, so the DOCTYPE scan stays sound."""
    with pytest.raises(MalformedResponse, match="encoding"):
        parse(b'<?xml version="1.0" encoding="UTF-16"?>' + _envelope())


@pytest.mark.parametrize("parse", PARSERS)
def test_oversized_body_is_refused_before_parsing(parse: Callable[..., Any]) -> None:
    """A body over the cap is refused by size alone."""
    with pytest.raises(MalformedResponse, match="larger than 100 bytes"):
        parse(_envelope(result="x" * 200), max_bytes=100)


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize(
    "body",
    [b"", b"not xml at all", b"<html><body>502 Bad Gateway</body></html>", b"<response><status>"],
    ids=["empty", "text", "html", "truncated"],
)
def test_garbage_is_malformed(parse: Callable[..., Any], body: bytes) -> None:
    """Non-XML, truncated XML and XML without <status> all raise MalformedResponse."""
    with pytest.raises(MalformedResponse):
        parse(body)


@pytest.mark.parametrize("body", [ROOTLESS, ROOTED], ids=["no-root", "response-root"])
def test_envelope_parses_with_or_without_root(body: bytes) -> None:
    """The documented root-less form and the <response> root give the same envelope."""
    envelope = parse_envelope(body)
    assert (envelope.status, envelope.description) == ("OK", "Completed")
    assert envelope.result is not None and "messages" in envelope.result


def test_envelope_accepts_utf8_bom_and_latin1_declaration() -> None:
    """A UTF-8 BOM is skipped and a declared ISO-8859-1 body is decoded as such."""
    latin1 = b'<?xml version="1.0" encoding="ISO-8859-1"?>' + _envelope(
        result="<error>Caf\u00e9</error>", status="ERROR"
    ).decode().encode("latin-1")
    assert parse_envelope(b"\xef\xbb\xbf" + _envelope()).status == "OK"
    assert parse_envelope(latin1).error == "Caf\u00e9"


def test_unknown_call_status_is_kept_as_text() -> None:
    """A status the docs never mention is reported verbatim, not rejected."""
    assert parse_envelope(_envelope(status="MAINTENANCE")).status == "MAINTENANCE"


def test_error_detail_is_exposed() -> None:
    """The simulator's <result><error> text is surfaced on the envelope."""
    envelope = parse_envelope(_envelope("ERROR", "<error>unknown broadcast 7</error>"))
    assert (envelope.status, envelope.error) == ("ERROR", "unknown broadcast 7")


def test_envelope_repr_leaves_out_the_raw_body() -> None:
    """The raw bytes are kept on the envelope but not printed by repr."""
    envelope = parse_envelope(_envelope())
    assert envelope.raw == _envelope()
    assert "raw=" not in repr(envelope) and "<response>" not in repr(envelope)


@pytest.mark.parametrize("body", [ROOTLESS, ROOTED], ids=["no-root", "response-root"])
def test_messages_keep_every_field(body: bytes) -> None:
    """The sample <message> maps onto Message, id kept as signed decimal text."""
    envelope, messages = parse_messages(body)
    assert envelope.status == "OK" and messages is not None
    (message,) = messages
    assert message.id == "-6710228708174720670"
    assert (message.to, message.sender, message.carrier) == (
        "18133210984",
        "19893653744",
        "carrierName",
    )
    assert (message.status, message.status_description) == ("SENT_TO_CARRIER", "Sent to Carrier")
    assert message.date == datetime(
        2014, 12, 17, 0, 12, 13, 571000, tzinfo=timezone(-timedelta(hours=4, minutes=30))
    )
    assert (message.timezone, message.client_id, message.accepted) == (
        "America/Caracas",
        "As223sdadq8d8287v5v",
        True,
    )


def test_unknown_message_status_is_kept() -> None:
    """A carrier status outside the enum (with a space) survives as a plain string."""
    body = ROOTED.replace(b"SENT_TO_CARRIER", b"BAD ADDRESS")
    _, messages = parse_messages(body)
    assert messages is not None and messages[0].status == "BAD ADDRESS"
    assert not messages[0].accepted


def test_error_reply_has_no_messages() -> None:
    """An ERROR reply parses to its envelope with messages None and the error text."""
    envelope, messages = parse_messages(_envelope("ERROR", "<error>no file part</error>"))
    assert (envelope.status, envelope.error, messages) == ("ERROR", "no file part", None)


def test_empty_messages_element_is_an_empty_list() -> None:
    """<messages/> means zero rows, which differs from a missing element."""
    assert parse_messages(_envelope(result="<messages/>"))[1] == []


def test_ten_thousand_messages_parse_quickly() -> None:
    """A 10 000-message reply parses in well under a second (measured ~0.1 s)."""
    body = ROOTED.replace(MESSAGE.encode(), MESSAGE.encode() * 10_000)
    started = time.perf_counter()
    _, messages = parse_messages(body)
    assert messages is not None and len(messages) == 10_000
    assert time.perf_counter() - started < 0.75


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "2014-01-24T12:45:50.903-04:30",
            datetime(
                2014, 1, 24, 12, 45, 50, 903000, tzinfo=timezone(timedelta(hours=-4, minutes=-30))
            ),
        ),
        (
            "2013-09-04T15:15:00-04:00",
            datetime(2013, 9, 4, 15, 15, tzinfo=timezone(timedelta(hours=-4))),
        ),
        ("2016-08-16T17:49:42.346-04:002", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_dates_parse_or_become_none(text: str | None, expected: datetime | None) -> None:
    """ISO-8601 with colon offset parses with or without millis; anything else is None."""
    assert parse_date(text) == expected


@pytest.mark.parametrize("raw", ["2", "STATUS_DONE", "DONE"])
def test_broadcast_status_forms_normalize(raw: str) -> None:
    """Numeric code, STATUS_ prefix and bare name all read as DONE; the raw text is kept."""
    result = parse_envelope(
        _envelope(result=f"<broadcast><id>2</id><status>{raw}</status></broadcast>")
    ).result
    broadcast = parse_broadcast(result)
    assert broadcast is not None
    assert (broadcast.status, broadcast.raw_status) == (BroadcastStatus.DONE, raw)


def test_create_sample_uses_status_description_and_tolerates_bad_date() -> None:
    """The vendor's create reply: statusDescription gives the state, its -04:002 date is None."""
    result = parse_envelope(
        _envelope(
            result=(
                "<broadcast><id>1</id><text>Test message</text>"
                "<startDate>2016-08-16T17:49:42.346-04:002</startDate><expectedMessages>2</expectedMessages>"
                "<statusDescription>SCHEDULED</statusDescription><shortcode>0000000</shortcode></broadcast>"
            )
        )
    ).result
    broadcast = parse_broadcast(result)
    assert broadcast is not None
    assert (broadcast.id, broadcast.status, broadcast.start_date) == (
        1,
        BroadcastStatus.SCHEDULED,
        None,
    )
    assert (broadcast.expected_messages, broadcast.shortcode) == (2, "0000000")


def test_unknown_broadcast_status_is_unknown_with_raw_text() -> None:
    """An unrecognized state maps to UNKNOWN and keeps what the provider said."""
    result = parse_envelope(
        _envelope(result="<broadcast><id>3</id><status>9</status><endDate/></broadcast>")
    ).result
    broadcast = parse_broadcast(result)
    assert broadcast is not None
    assert (broadcast.status, broadcast.raw_status, broadcast.end_date) == (
        BroadcastStatus.UNKNOWN,
        "9",
        None,
    )


@pytest.mark.parametrize(
    ("inner", "codes"),
    [
        (
            "<shortcode><sc>0000000</sc></shortcode><shortcode><sc>1111111</sc></shortcode>",
            ["0000000", "1111111"],
        ),
        ("<shortcode><sc>00434</sc></shortcode>", ["00434"]),
        ("", []),
    ],
    ids=["two", "one", "none"],
)
def test_shortcodes_stay_text(inner: str, codes: list[str]) -> None:
    """Codes keep leading zeros, and one code is still a list."""
    result = parse_envelope(_envelope(result=f"<shortcodes>{inner}</shortcodes>")).result
    assert parse_shortcodes(result) == codes


def test_transaction_result_parses() -> None:
    """The generic action result becomes a TransactionResult."""
    result = parse_envelope(
        _envelope(
            result=(
                "<transactionResult><successful>true</successful>"
                "<message>Broadcast deleted</message></transactionResult>"
            )
        )
    ).result
    transaction = parse_transaction(result)
    assert transaction is not None
    assert (transaction.successful, transaction.message) == (True, "Broadcast deleted")
