"""The sandbox's columnar sendSMSByFile path (Arrow): same cells, same reply, same ledger as the
row-by-row reading, for every file it takes; every other file is left to the ``csv`` reader."""

from __future__ import annotations

import csv
import random
import zoneinfo
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from ogangi.sandbox import SandboxConfig, xmlgen
from ogangi.sandbox.blast import rows_reply, uniform_reply
from ogangi.sandbox.columns import Column, int_strings, strings
from ogangi.sandbox.ledger import Accepted, AcceptedColumns, Ledger, Rows, Source
from ogangi.sandbox.recipients import UniformRows, parse_recipient_file, parse_rows
from ogangi.sandbox.tables import FileRejected, read_columns, read_table
from ogangi.sandbox.testing import sandbox_client
from tests.test_sandbox_files import xlsx

INSTANT = datetime(2024, 1, 2, 3, 4, 5, 678000, UTC)
ZONE = zoneinfo.ZoneInfo("UTC")


def cells(columns: list[Column] | None) -> list[list[str]] | None:
    return (
        None if columns is None else [list(row) for row in zip(*(c.to_pylist() for c in columns))]
    )


def quoted(*rows: Iterable[str], eol: str = "\r\n") -> bytes:
    """What the client writes (§7.3): every field quoted, quotes doubled."""
    lines = ('"' + '","'.join(v.replace('"', '""') for v in row) + '"' for row in rows)
    return "".join(line + eol for line in lines).encode()


def same(reply: tuple[str | bytes, Iterable[Accepted]]) -> tuple[str, list[Accepted]]:
    xml, accepted = reply
    return (xml.decode("utf-8") if isinstance(xml, bytes) else xml), list(accepted)


CANONICAL = {
    "client CSV": quoted(["13056708084", "55500", "", "UTF-8", "UTC", "Hi José"]) * 3,
    "old semicolon text": b"13056708084;55500;C;UTF-8;UTC;Hi\n13056708085;55500;C;UTF-8;UTC;Yo\n",
    "quotes, separators and a line break inside": quoted(
        ["13056708084", "55500", "C", "UTF-8", "UTC", 'Say "hi", then\r\nbye; ok']
    ),
    "no final line end": b'"13056708084","55500","C","UTF-8","UTC","t"',
    "BOM and header": "\ufeffmobile;from;c;e;z;text\n1305670;5;C;;UTC;x\n".encode(),
    "empty fields": quoted(["13056708084", "", "", "", "", ""]),
}


@pytest.mark.parametrize("content", CANONICAL.values(), ids=CANONICAL.keys())
def test_canonical_text_files_are_read_as_columns(content: bytes) -> None:
    """Files written the canonical way take the Arrow reader, with exactly the csv cells."""
    assert cells(read_columns(content)) == read_table(content)


NOT_CANONICAL = {
    "mixed quoting": b'"13056708084",55500,"C","UTF-8","UTC","t"\r\n',
    "blank line": b'"1","2"\r\n\r\n"3","4"\r\n',
    "blank first line": b'\r\n"1","2"\r\n',
    "mixed line ends": b'"1","2"\r\n"3","4"\n',
    "lone CR line ends": b'"1","2"\r"3","4"\r',
    "quote inside an unquoted file": b'13056708084;55500;C;UTF-8;UTC;say "hi"\n',
    "ragged rows": b'"1","2","3"\r\n"4","5"\r\n',
    "invalid UTF-8": b'"13056708084","\xff"\r\n',
    "UTF-8-encoded surrogate": b'"13056708084","\xed\xa0\x80"\r\n',
    "field over the csv limit": quoted(["1", "x" * (csv.field_size_limit() + 1)]),
    "spreadsheet": xlsx([["13056708084", "55500", "C", "UTF-8", "UTC", "t"]]),
    "empty": b"",
}


@pytest.mark.parametrize("content", NOT_CANONICAL.values(), ids=NOT_CANONICAL.keys())
def test_other_files_are_left_to_the_csv_reader(content: bytes) -> None:
    assert read_columns(content) is None


def test_columnar_reading_agrees_with_the_csv_reader_on_random_files() -> None:
    """Randomised: whenever the Arrow reader answers, ``csv`` reads the same cells."""
    rng = random.Random(20240611)
    atoms = ["a", "1", '"', '""', ",", ";", "\r", "\n", "\r\n", " ", "é", "\x00", "{0}", "\t"]
    answered = 0
    for _ in range(4000):
        width, quote = rng.randint(1, 4), rng.random() < 0.6
        delimiter, eol = rng.choice([",", ";"]), rng.choice(["\r\n", "\n", "\r"])
        lines = []
        for _ in range(rng.randint(1, 3)):
            fields = [
                "".join(rng.choice(atoms) for _ in range(rng.randint(0, 3))) for _ in "x" * width
            ]
            if quote:
                fields = [
                    '"' + f.replace('"', '""') + '"' if rng.random() < 0.95 else f for f in fields
                ]
            lines.append(delimiter.join(fields))
        data = (eol.join(lines) + (eol if rng.random() < 0.7 else "")).encode()
        columns = read_columns(data)
        if columns is None:
            continue
        answered += 1
        try:
            assert cells(columns) == read_table(data), data
        except FileRejected:
            pytest.fail(f"the csv reader refuses what the columnar one read: {data!r}")
    assert answered > 800


def test_needs_work_on_utf8_bytes_agrees_with_the_regex() -> None:
    rng = random.Random(7)
    chars = [*"aé&<>\t\n\r\x00\x1f\x7f\x85\uf000\ufffd\ufffe\uffff", "😀"]
    for _ in range(20_000):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 5)))
        assert xmlgen.needs_work_utf8(text.encode()) == bool(xmlgen.NEEDS_WORK.search(text))


TEXTS = [
    "a < b & c > d",
    "say \"hi\", it's 'fine'",
    "José, Zoë, Björn 😀 — ü",
    "bell\x07 and \ufffe dropped",
    "&amp; stays &amp;amp; ]]>",
]


async def test_uniform_upload_escapes_text_and_keeps_quotes_and_non_ascii() -> None:
    """The columnar reply escapes ``& < >``, leaves quotes and non-ASCII as UTF-8 text, and drops
    characters XML cannot carry from the reply and from the ledger alike."""
    content = quoted(
        *(["1305670808" + str(i), "55500", "A&B", "UTF-8", "UTC", t] for i, t in enumerate(TEXTS))
    )
    assert read_columns(content) is not None
    assert isinstance(parse_recipient_file(content, carriers=None, max_rows=100), UniformRows)
    cleaned = [xmlgen.clean(text) for text in TEXTS]
    async with sandbox_client() as api:
        reply = await api.upload(content)
        ledger = api.sandbox.ledger.entries()
    assert reply.status == "OK"
    assert [m["text"] for m in reply.messages] == cleaned
    assert {m["carrier"] for m in reply.messages} == {"A&B"}
    assert [entry.text for entry in ledger] == cleaned
    body = reply.body
    assert b"<text>a &lt; b &amp; c &gt; d</text>" in body
    assert b"<text>say \"hi\", it's 'fine'</text>" in body
    assert "<text>José, Zoë, Björn 😀 — ü</text>".encode() in body
    assert b"<text>&amp;amp; stays &amp;amp;amp; ]]&gt;</text>" in body
    assert b"<carrier>A&amp;B</carrier>" in body
    assert int(reply.headers["Content-Length"]) == len(body)


@pytest.mark.parametrize("order", ["sample", "listed"])
def test_both_column_orders_take_the_columnar_path(order: str) -> None:
    """§7.3 step 5 on columns, params rendered per row: the same reply as row by row."""

    def row(i: int) -> list[str]:
        fields = [f"130567080{i:02d}", "55500", "C", "UTF-8", "Europe/Madrid", "Hi {0} <{1}>"]
        if order == "listed":
            fields[3:6] = [fields[5], fields[3], fields[4]]
        return [*fields, f"n{i}", "&"]

    header = ["mobile", "from", "carrier", "4", "5", "6", "p0", "p1"]  # a header row too
    content = quoted(header, *(row(i) for i in range(20)))
    assert read_columns(content) is not None
    uniform = parse_recipient_file(content, carriers=("C",), max_rows=100)
    assert isinstance(uniform, UniformRows)
    assert uniform.texts.to_pylist()[:2] == ["Hi n0 <&>", "Hi n1 <&>"]
    rows = parse_rows(read_table(content), carriers=("C",), max_rows=100)
    ids = [str(-i) for i in range(len(rows))]
    assert same(uniform_reply(uniform, ids, INSTANT, ZONE)) == same(
        rows_reply(rows, ids, INSTANT, ZONE)
    )


async def test_ids_unique_and_every_message_in_the_ledger_exactly_once() -> None:
    """Uploads taking either reading: reply ids never repeat, and the ledger (read in pages that
    cut through requests) holds each accepted message once, under its reply id."""

    def uniform(start: int) -> bytes:
        return quoted(
            *(
                [str(13050000000 + start + i), "55500", "C", "UTF-8", "UTC", f"m{i}"]
                for i in range(1500)
            )
        )

    mixed = quoted(
        ["13059999990", "55500", "C", "UTF-8", "UTC", "ok"],
        ["12", "55500", "C", "UTF-8", "UTC", "bad"],
    )
    async with sandbox_client() as api:
        replies = [await api.upload(c) for c in (uniform(0), mixed, uniform(5000), uniform(0))]
        pages, offset = [], 0
        while page := (await api.control("GET", f"ledger?offset={offset}&limit=700"))["messages"]:
            pages += page
            offset += len(page)
        summary = await api.control("GET", "ledger/summary")
    ids = [m["id"] for r in replies for m in r.messages]
    assert len(ids) == 1500 * 3 + 2 == len(set(ids))
    accepted = [
        (m["id"], m["to"], m["text"])
        for r in replies
        for m in r.messages
        if m["status"] == "SENT_TO_CARRIER"
    ]
    assert [(m["id"], m["to"], m["text"]) for m in pages] == accepted
    assert [m["seq"] for m in pages] == list(range(len(accepted)))
    assert {m["request_id"] for m in pages} == {r.headers["X-Sandbox-Request-Id"] for r in replies}
    assert summary["total"] == len(accepted) == 4501
    assert (summary["distinct_to"], summary["repeated_to"]) == (3001, 1500)


def test_ledger_pages_through_column_and_row_batches() -> None:
    """``entries`` (offset before the source filter, then limit) and ``summary`` over both kinds
    of batch, checked against the same reading done on plain tuples."""
    ledger = Ledger()
    expected: list[tuple[str, str, str, str, str]] = []

    def columns(first: int, count: int, to: str) -> AcceptedColumns:
        numbers = strings([to] * count)
        return AcceptedColumns(
            int_strings(first, count), numbers, "S", strings([f"t{i}" for i in range(count)])
        )

    batches: list[tuple[Source, Rows]] = [
        ("file", columns(-100, 5, "111")),
        ("broadcast", [("7", "222", "B", "x"), ("8", "111", "B", "y")]),
        ("file", columns(-50, 4, "333")),
    ]
    for n, (kind, rows) in enumerate(batches):
        ledger.record(kind, rows, request_id=f"r{n}", at=1.0)
        expected += [(kind, *row) for row in rows]
    assert len(ledger) == 11
    sources: tuple[Source | None, ...] = (None, "file", "broadcast")
    for offset in range(-1, 13):
        for limit in (None, 0, 1, 3, 20):
            for source in sources:
                got = [
                    (e.seq, e.source, e.id, e.to, e.sender, e.text)
                    for e in ledger.entries(offset, limit, source)
                ]
                want = [
                    (seq, *row)
                    for seq, row in enumerate(expected)
                    if seq >= offset and source in (None, row[0])
                ]
                assert got == want[:limit], (offset, limit, source)
    assert ledger.summary() == {
        "total": 11,
        "by_source": {"file": 9, "broadcast": 2},
        "requests": 3,
        "distinct_to": 3,
        "repeated_to": 2,
        "extra_sends_to_repeated": 8,
    }


async def test_a_field_over_the_csv_limit_is_still_refused() -> None:
    """Such a file is left to the csv reader, whose refusal stands (ERROR, as before)."""
    content = quoted(
        ["13056708084", "55500", "C", "UTF-8", "UTC", "x" * (csv.field_size_limit() + 1)]
    )
    async with sandbox_client(SandboxConfig()) as api:
        reply = await api.upload(content)
    assert reply.status == "ERROR"
    assert "unreadable CSV" in reply.error
