"""The sendSMSByFile recipient list the client writes (spec §7.3, client generation rule)."""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pytest

from ogangi.errors import InvalidParameter
from ogangi.recipient_file import (
    SmsRow,
    write_recipient_file,
    write_recipient_file_arrow,
    write_recipient_file_columns,
)

SAMPLE_ROW = SmsRow(
    mobile="13056708084",
    sender="19893653744",
    text="Hi {0}. Welcome to {1}",
    params=("Matt Ford", "this test"),
    carrier="CarrierName",
    timezone="America/New_York",
)
ROWS = [
    SAMPLE_ROW,
    SmsRow("18133210984", "55500", 'Say "hi", Zoë', ('a "quoted" param', "")),
    SmsRow("4915112345678", "55500", "¡Hola! 😀 {0}", ("Señor",), encoding="UTF-8"),
]


def _read_back(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))


def test_default_is_the_documented_sample_line() -> None:
    """The sample order reproduces the vendor's sample row byte for byte, CRLF-terminated."""
    assert write_recipient_file([SAMPLE_ROW]) == (
        b'"13056708084","19893653744","CarrierName","UTF-8","America/New_York",'
        b'"Hi {0}. Welcome to {1}","Matt Ford","this test"\r\n'
    )


def test_listed_order_puts_text_fourth() -> None:
    """order='listed' writes mobile, from, carrier, text, encoding, timezone, params."""
    assert _read_back(write_recipient_file([SAMPLE_ROW], order="listed")) == [
        [
            "13056708084",
            "19893653744",
            "CarrierName",
            "Hi {0}. Welcome to {1}",
            "UTF-8",
            "America/New_York",
            "Matt Ford",
            "this test",
        ]
    ]


def test_quotes_are_doubled_and_utf8_has_no_bom() -> None:
    """Embedded quotes are doubled, text is UTF-8 without BOM, and a CSV reader gets it back."""
    content = write_recipient_file(ROWS)
    assert not content.startswith(b"\xef\xbb\xbf")
    assert b'"Say ""hi"", Zo\xc3\xab"' in content
    assert _read_back(content)[1] == [
        "18133210984",
        "55500",
        "",
        "UTF-8",
        "UTC",
        'Say "hi", Zoë',
        'a "quoted" param',
        "",
    ]


def test_every_line_ends_crlf_with_no_header() -> None:
    """One CRLF line per row and nothing else."""
    content = write_recipient_file(ROWS)
    assert content.count(b"\r\n") == len(ROWS) and content.endswith(b"\r\n")
    assert content.startswith(b'"13056708084"')


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (SmsRow("13056708084", "55500", "two\nlines"), "row 1: text contains a line break"),
        (SmsRow("13056708084", "55500", "cr\r"), "row 1: text contains a line break"),
        (SmsRow("13056708084", "55500", "x", ("p\n",)), "row 1: a parameter contains a line break"),
        (SmsRow("+13056708084", "55500", "x"), "row 1: mobile must be digits only"),
        (SmsRow("1305 670", "55500", "x"), "row 1: mobile must be digits only"),
        (SmsRow("١٢٣٤٥٦٧٨", "55500", "x"), "row 1: mobile must be digits only"),
        (SmsRow("13056708084", "55500", "x", timezone=""), "row 1: timezone must not be empty"),
        (SmsRow("13056708084", "55500", "x", encoding=" "), "row 1: encoding must not be empty"),
    ],
    ids=["lf", "cr", "param-lf", "plus", "space", "arabic-digits", "no-timezone", "no-encoding"],
)
def test_rows_the_provider_would_misread_are_refused(row: SmsRow, message: str) -> None:
    """Line breaks, non-ASCII-digit mobiles and blank encoding/timezone raise InvalidParameter."""
    with pytest.raises(InvalidParameter, match=message):
        write_recipient_file([row])


@pytest.mark.parametrize("order", ["sample", "listed"])
def test_columns_writer_matches_row_writer(order: str) -> None:
    """The column variant writes the same bytes as the row variant for the same recipients."""
    rows = [SmsRow(r.mobile, "55500", r.text, (r.params + ("", ""))[:2], "Carrier") for r in ROWS]
    by_rows = write_recipient_file(rows, order=order)  # type: ignore[arg-type]
    by_columns = write_recipient_file_columns(
        [r.mobile for r in rows],
        [r.text for r in rows],
        sender="55500",
        carrier="Carrier",
        params=[[r.params[0] for r in rows], [r.params[1] for r in rows]],
        order=order,  # type: ignore[arg-type]
    )
    assert by_columns == by_rows


def test_columns_writer_accepts_one_text_for_all_rows() -> None:
    """A single text is repeated on every row."""
    content = write_recipient_file_columns(
        ["111111111", "222222222"], 'Hi "{0}"', sender="55500", params=[["Ana", "Bo"]]
    )
    assert [row[5:] for row in _read_back(content)] == [['Hi "{0}"', "Ana"], ['Hi "{0}"', "Bo"]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mobiles": ["111111111", "22x"], "texts": "x"}, "row 2: mobile must be digits only"),
        ({"mobiles": ["111111111", ""], "texts": "x"}, "row 2: mobile must be digits only"),
        ({"mobiles": ["111111111"], "texts": ["a", "b"]}, "texts has 2 values for 1 mobiles"),
        ({"mobiles": ["111111111"], "texts": "x", "params": [["a", "b"]]}, r"params\[0\] has 2"),
        ({"mobiles": ["111111111", "2"], "texts": ["ok", "bad\n"]}, "row 2: texts contains"),
        ({"mobiles": ["111111111"], "texts": "bad\r\n"}, "text contains a line break"),
        ({"mobiles": ["111111111"], "texts": "x", "timezone": ""}, "timezone must not be empty"),
    ],
    ids=[
        "letter",
        "empty-mobile",
        "texts-length",
        "params-length",
        "text-lf",
        "single-text-lf",
        "no-timezone",
    ],
)
def test_columns_writer_refuses_bad_columns(kwargs: dict[str, object], message: str) -> None:
    """Bad values name the offending row; mismatched column lengths are refused."""
    with pytest.raises(InvalidParameter, match=message):
        write_recipient_file_columns(sender="55500", **kwargs)  # type: ignore[arg-type]


def test_ten_thousand_rows_come_out_the_same_from_every_writer() -> None:
    """A chunk-sized file: rows, columns and Arrow writers give the same bytes."""
    mobiles = [str(13055550000 + i) for i in range(10_000)]
    names = [f"Ana {i}" for i in range(10_000)]
    content = write_recipient_file_columns(mobiles, "Hi {0}", sender="55500", params=[names])
    rows = write_recipient_file(
        [SmsRow(m, "55500", "Hi {0}", (n,)) for m, n in zip(mobiles, names)]
    )
    arrow = write_recipient_file_arrow(
        pa.array(mobiles), pa.array(["Hi {0}"] * 10_000), sender="55500", params=[pa.array(names)]
    )
    assert content == rows == arrow and content.count(b"\r\n") == 10_000


@pytest.mark.parametrize("order", ["sample", "listed"])
def test_arrow_writer_matches_row_writer(order: str) -> None:
    """Quotes, commas, accents and emoji, an empty parameter, sliced arrays: the same bytes."""
    rows = [SmsRow(r.mobile, "55500", r.text, (r.params + ("", ""))[:2], 'Car"rier') for r in ROWS]
    by_rows = write_recipient_file(rows, order=order)  # type: ignore[arg-type]
    mobiles = pa.array(["0", *(r.mobile for r in rows)]).slice(1)  # an offset, as slices have
    by_arrow = write_recipient_file_arrow(
        mobiles,
        pa.chunked_array([[r.text for r in rows[:1]], [r.text for r in rows[1:]]]),
        sender="55500",
        carrier='Car"rier',
        params=[pa.array([r.params[0] for r in rows]), pa.array([r.params[1] for r in rows])],
        order=order,  # type: ignore[arg-type]
    )
    assert by_arrow == by_rows


@pytest.mark.parametrize(
    ("mobiles", "texts", "message"),
    [
        (["111111111", "22x"], ["a", "b"], "row 2: mobile must be digits only"),
        (["111111111", ""], ["a", "b"], "row 2: mobile must be digits only"),
        (["111111111", None], ["a", "b"], "row 2: mobile must be digits only"),
        (["111111111", "2"], ["ok", "bad\r"], "row 2: texts contains a line break"),
        (["111111111", "2"], [None, "b"], "row 1: texts has no value"),
        (["111111111"], ["a", "b"], "texts has 2 values for 1 mobiles"),
    ],
    ids=["letter", "empty-mobile", "null-mobile", "text-cr", "null-text", "texts-length"],
)
def test_arrow_writer_refuses_bad_columns(
    mobiles: list[str | None], texts: list[str | None], message: str
) -> None:
    """Bad values name the offending row, as the other writers do."""
    with pytest.raises(InvalidParameter, match=message):
        write_recipient_file_arrow(pa.array(mobiles, pa.string()), pa.array(texts), sender="5")
