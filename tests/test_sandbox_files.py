"""sendSMSByFile in the sandbox: reading recipient files per §7.3 and the per-row reply of §5.1."""

from __future__ import annotations

import io
import random
import re
import zoneinfo
from collections.abc import Iterable
from datetime import UTC, datetime

import openpyxl
import pytest

from ogangi.sandbox import SandboxConfig
from ogangi.sandbox.blast import rows_reply, uniform_reply
from ogangi.sandbox.ledger import Accepted
from ogangi.sandbox.recipients import parse_rows, parse_uniform
from ogangi.sandbox.tables import read_table
from ogangi.sandbox.testing import sandbox_client

SAMPLE_ROW = (
    '"13056708084","19893653744","CarrierName","UTF-8","America/New_York",'
    '"Hi {0}. Welcome to {1}","Matt Ford","this test"\r\n'
)
ISO_MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d")


async def test_sample_order_row_is_sent_to_carrier_with_every_field() -> None:
    """§5.1: a valid row answers SENT_TO_CARRIER with id, fields, rendered text and dates."""
    async with sandbox_client() as api:
        reply = await api.upload(SAMPLE_ROW.encode())
    assert reply.status == "OK"
    assert reply.text("input") == "sendSMSByFile"
    [message] = reply.messages
    assert -(2**63) <= int(message.pop("id")) < 2**63
    date = message.pop("date")
    assert ISO_MILLIS.fullmatch(date)
    assert date.endswith(("-05:00", "-04:00"))  # New York, winter or summer
    assert message == {
        "carrier": "CarrierName",
        "from": "19893653744",
        "to": "13056708084",
        "text": "Hi Matt Ford. Welcome to this test",
        "status": "SENT_TO_CARRIER",
        "statusDescription": "Sent to Carrier",
        "encoding": "UTF-8",
        "timezone": "America/New_York",
    }


async def test_listed_column_order_is_detected_by_value_shape() -> None:
    """§7.3 step 5: text, encoding, timezone (the docs' list order) is read correctly too."""
    content = '"13056708084","55500","C","Hello {0}","UTF-8","Europe/Madrid","Ana"\r\n'
    async with sandbox_client() as api:
        reply = await api.upload(content.encode())
    [message] = reply.messages
    assert (message["text"], message["encoding"], message["timezone"]) == (
        "Hello Ana",
        "UTF-8",
        "Europe/Madrid",
    )


async def test_old_semicolon_file_without_quotes_is_read() -> None:
    """§7.1: the previous docs' ``;``-separated, unquoted text file."""
    content = "13056708084;55500;C;UTF-8;UTC;Hi {0} all good;Ana\n13056708085;55500;C;;UTC;Yo\n"
    async with sandbox_client() as api:
        reply = await api.upload(content.encode())
    assert [(m["to"], m["text"], m["encoding"]) for m in reply.messages] == [
        ("13056708084", "Hi Ana all good", "UTF-8"),
        ("13056708085", "Yo", "UTF-8"),
    ]


async def test_header_row_bom_and_blank_lines_are_skipped() -> None:
    """§7.3 steps 1 and 3: BOM stripped, a first line without digits is a header, blanks skipped."""
    content = "\ufeffmobile,from,carrier,encoding,timezone,text\r\n\r\n" + SAMPLE_ROW + "\r\n"
    async with sandbox_client() as api:
        reply = await api.upload(content.encode())
    assert [m["to"] for m in reply.messages] == ["13056708084"]


async def test_rfc4180_quoting_is_honoured() -> None:
    """Embedded separators, doubled quotes and line breaks inside quotes stay in the text."""
    content = '"13056708084","55500","C","UTF-8","UTC","Say ""hi"", then\nbye; ok"\r\n'
    async with sandbox_client() as api:
        reply = await api.upload(content.encode())
    [message] = reply.messages
    assert message["text"] == 'Say "hi", then\nbye; ok'


async def test_unknown_placeholders_stay_literal() -> None:
    """§7.3 step 7: ``{k}`` without a k-th optional column is left as written."""
    content = '"13056708084","55500","C","UTF-8","UTC","{0} {1} {x} {}","only"\r\n'
    async with sandbox_client() as api:
        reply = await api.upload(content.encode())
    assert reply.messages[0]["text"] == "only {1} {x} {}"


async def test_xml_special_characters_in_text_are_escaped() -> None:
    """Text with ``<&>`` comes back intact through the XML; characters XML forbids are dropped."""
    content = '"13056708084","55500","A&B","UTF-8","UTC","1 < 2 & 3 > 2\x07"\r\n'
    async with sandbox_client() as api:
        reply = await api.upload(content.encode())
        ledger = api.sandbox.ledger.entries()
    assert (reply.messages[0]["carrier"], reply.messages[0]["text"]) == ("A&B", "1 < 2 & 3 > 2")
    assert ledger[0].text == "1 < 2 & 3 > 2"


@pytest.mark.parametrize(
    ("row", "status"),
    [
        ('"1305670808X","55500","C","UTF-8","UTC","t"', "BAD_TO"),
        ('"1234567","55500","C","UTF-8","UTC","t"', "BAD_TO"),
        ('"+13056708084","55500","C","UTF-8","UTC","t"', "BAD_TO"),
        ('"13056708084","","C","UTF-8","UTC","t"', "BAD_FROM"),
        ('"13056708084","555 00","C","UTF-8","UTC","t"', "BAD_FROM"),
        ('"13056708084","55500","Nope","UTF-8","UTC","t"', "BAD_CARRIER/FROM"),
        ('"13056708084","55500","C","KOI8-R","UTC","t"', "BAD_ENCODING"),
        ('"13056708084","55500","C","UTF-8","","t"', "BAD_ENCODING"),
        ('"13056708084","55500","C","UTF-8","Mars/Olympus","t"', "BAD_TIMEZONE"),
        ('"13056708084","55500","C","UTF-8","UTC"', "NOT_SENT"),
        ('"1","55500"', "BAD_TO"),
    ],
)
async def test_invalid_rows_carry_their_failure_status(row: str, status: str) -> None:
    """§5.1: a bad row still gets a ``<message>``, with its BAD_* status, and is not sent."""
    content = f"{row}\r\n{SAMPLE_ROW}"
    async with sandbox_client(SandboxConfig(carriers=("C", "CarrierName"))) as api:
        reply = await api.upload(content.encode())
        sent = [entry.to for entry in api.sandbox.ledger.entries()]
    assert reply.status == "OK"
    assert [m["status"] for m in reply.messages] == [status, "SENT_TO_CARRIER"]
    assert reply.messages[0]["statusDescription"]
    assert sent == ["13056708084"]


def xlsx(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_xlsx_first_sheet_is_read_as_text_cells() -> None:
    """§7.3 step 1: numeric cells read as the digits a user typed (no ``.0``)."""
    content = xlsx(
        [
            ["mobile", "from", "carrier", "encoding", "timezone", "text", "code"],
            [13056708084, 55500, "C", "UTF-8", "UTC", "Your code {0}", 42],
            ["13056708085", "55500", "C", "UTF-8", "UTC", "Your code {0}", "0042"],
        ]
    )
    async with sandbox_client() as api:
        reply = await api.upload(
            content,
            filename="recipients.xlsx",
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    assert [(m["to"], m["from"], m["text"]) for m in reply.messages] == [
        ("13056708084", "55500", "Your code 42"),
        ("13056708085", "55500", "Your code 0042"),
    ]


async def test_valid_rows_enter_the_ledger_with_the_reply_ids() -> None:
    """The ledger holds exactly the accepted messages, under the ids the reply gave."""
    content = SAMPLE_ROW + '"123","55500","C","UTF-8","UTC","t"\r\n'
    async with sandbox_client() as api:
        reply = await api.upload(content.encode())
        entries = api.sandbox.ledger.entries()
    [entry] = entries
    assert entry.id == reply.messages[0]["id"]
    assert (entry.to, entry.sender, entry.text, entry.source) == (
        "13056708084",
        "19893653744",
        "Hi Matt Ford. Welcome to this test",
        "file",
    )
    assert entry.request_id == reply.headers["X-Sandbox-Request-Id"]


async def test_message_ids_are_unique_across_uploads() -> None:
    """Ids never repeat within a sandbox's life, whatever the path that made them."""
    uniform = "".join(f'"1305670{i:04d}","55500","C","UTF-8","UTC","t"\r\n' for i in range(50))
    mixed = uniform + '"1","55500"\r\n'
    async with sandbox_client() as api:
        replies = [await api.upload(c.encode()) for c in (uniform, mixed, uniform)]
    ids = [m["id"] for r in replies for m in r.messages]
    assert len(ids) == 151 == len(set(ids))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "no rows"),
        (b"mobile,text\r\n", "no rows"),
        (b'"123","x"\r\n', "no usable recipient row"),
        (b"\xff\xfe\x00garbage", "neither a spreadsheet nor UTF-8"),
        (b"PK\x03\x04not really a zip", "unreadable spreadsheet"),
    ],
)
async def test_unusable_file_is_call_level_error(content: bytes, reason: str) -> None:
    """§5.1: a file with no usable row, or unreadable, answers ERROR."""
    async with sandbox_client() as api:
        reply = await api.upload(content)
    assert reply.status == "ERROR"
    assert reason in reply.error
    assert len(api.sandbox.ledger) == 0


async def test_upload_without_file_part_is_error() -> None:
    """The multipart body must carry a part named ``file``."""
    async with sandbox_client() as api:
        url = api.path("tools/sendSMSByFile", ("8",))
        reply = await api.request("POST", url, data={"recipients": SAMPLE_ROW})
        multipart = await api.request("POST", url, data={"other": io.BytesIO(b"x")})
    assert (reply.status, multipart.status) == ("ERROR", "ERROR")
    assert "multipart" in reply.error
    assert "no 'file' part" in multipart.error


async def test_row_cap_is_enforced() -> None:
    """§10: more rows than the cap answers ERROR, nothing is sent."""
    content = SAMPLE_ROW * 4
    async with sandbox_client(SandboxConfig(max_rows=3)) as api:
        reply = await api.upload(content.encode())
        mixed = await api.upload((content + "1;2\r\n").encode())
    assert (reply.status, mixed.status) == ("ERROR", "ERROR")
    assert "more than 3 rows" in reply.error
    assert len(api.sandbox.ledger) == 0


async def test_upload_size_cap_is_enforced() -> None:
    """§10: a file above the byte cap answers ERROR (not HTTP 413)."""
    async with sandbox_client(SandboxConfig(max_upload_bytes=1000)) as api:
        reply = await api.upload(SAMPLE_ROW.encode() * 20)
    assert reply.http_status == 200
    assert "larger than 1000 bytes" in reply.error


async def test_input_can_echo_the_doc_samples_send_sms() -> None:
    """§13 A10: ``input_name="sendSMS"`` reproduces the doc sample's ``<input>``."""
    async with sandbox_client(SandboxConfig(input_name="sendSMS")) as api:
        reply = await api.upload(SAMPLE_ROW.encode())
    assert reply.text("input") == "sendSMS"


def same(reply: tuple[str | bytes, Iterable[Accepted]]) -> tuple[str, list[Accepted]]:
    """A reply builder's answer in one form: the XML as text, the ledger rows as tuples."""
    xml, accepted = reply
    return (xml.decode("utf-8") if isinstance(xml, bytes) else xml), list(accepted)


EQUIVALENCE_FILES = [
    SAMPLE_ROW * 3,
    "h,e,a,d,e,r\r\n" + SAMPLE_ROW * 2,
    '"13056708084","55500","C","Hi {0}","UTF-8","UTC","x"\n' * 2,
    '"13056708084"," 55500 ","C"," utf-8 ","UTC","a & b <c>","{0}"\n',
    "13056708084;55500;C;GSM;Etc/GMT+5;Hi {0};q\n13056708085;55500;C;GSM;Etc/GMT+5;Ho {0};p\n",
    '"13056708084","55500","C","UTF-8","UTC","A"\r\n"13056708085","55500","C","UTF-8","UTC","B"',
    '"13056708084","55500","C","UTF-8","UTC","t\x01"\r\n',
    '"13056708084","55500","C","UTF-8","UTC","{0}{1}{0}","a","b"\r\n',
]


@pytest.mark.parametrize("content", EQUIVALENCE_FILES)
def test_uniform_and_row_by_row_readings_give_the_same_reply(content: str) -> None:
    """The column-wise fast path is an optimisation only: same XML, same ledger rows."""
    table = read_table(content.encode())
    carriers = ("C", "CarrierName")
    uniform = parse_uniform(table, carriers=carriers, max_rows=100)
    assert uniform is not None
    rows = parse_rows(table, carriers=carriers, max_rows=100)
    ids = [str(-i) for i in range(len(rows))]
    instant = datetime(2024, 1, 2, 3, 4, 5, 678000, UTC)
    zone = zoneinfo.ZoneInfo("UTC")
    assert same(uniform_reply(uniform, ids, instant, zone)) == same(
        rows_reply(rows, ids, instant, zone)
    )


@pytest.mark.parametrize(
    "content",
    [
        SAMPLE_ROW + '"13056708085","55501","CarrierName","UTF-8","UTC","t"\r\n',
        SAMPLE_ROW + "\r\n" + SAMPLE_ROW,
        SAMPLE_ROW + '"1","55500","CarrierName","UTF-8","UTC","t"\r\n',
        '"13056708084","55500","C","UTF-8","UTC","t","p"\r\n"13056708085","55500","C","UTF-8","UTC","t"',
        '"13056708084 ","55500","C","UTF-8","UTC","t"\r\n',
        '"13056708084\n13056708085","55500","C","UTF-8","UTC","t"\r\n',
    ],
    ids=["two senders", "blank line", "bad mobile", "ragged", "padded mobile", "newline in mobile"],
)
def test_non_uniform_files_take_the_row_by_row_reading(content: str) -> None:
    """Anything the fast path cannot prove equivalent falls back to the general reading."""
    assert parse_uniform(read_table(content.encode()), carriers=None, max_rows=100) is None


def test_fast_path_agrees_with_row_by_row_reading_on_random_tables() -> None:
    """Randomised: whenever the uniform reading answers, its reply equals the general one."""
    rng = random.Random(20240601)
    pools = [
        ["13056708084", "13056708085", "13056708086", " 13056708086", "1234", "", "mobile"],
        ["55500", "55500", " 55500", "555 00", ""],
        ["C", "C", "C ", "Other", ""],
        ["UTF-8", "utf8", "", "Hi {0}", "UTC", "KOI8-R"],
        ["UTC", "Europe/Madrid", "UTF-8", "UTF-8", "Mars/Base", "GSM"],
        ["Hi {0}", "Yo {1}{0}", "UTC", "Europe/Madrid", "{9}"],
        ["Ann", "", "{0}"],
        ["Bob", "x"],
    ]
    zone = zoneinfo.ZoneInfo("UTC")
    instant = datetime(2024, 1, 2, 3, 4, 5, 678000, UTC)
    answered = 0
    for _ in range(6000):
        width = rng.choice([6, 6, 7, 8])
        fixed = [rng.choice(pool) for pool in pools[:width]]
        table = []
        for _ in range(rng.randint(1, 4)):
            row = [rng.choice(pools[0]) if i == 0 else fixed[i] for i in range(width)]
            if rng.random() < 0.1:
                row[rng.randrange(width)] = rng.choice(pools[rng.randrange(width)])
            table.append(row)
        carriers = rng.choice([None, ("C",)])
        uniform = parse_uniform(table, carriers=carriers, max_rows=100)
        if uniform is None:
            continue
        answered += 1
        rows = parse_rows(table, carriers=carriers, max_rows=100)
        ids = [str(i) for i in range(len(rows))]
        assert same(uniform_reply(uniform, ids, instant, zone)) == same(
            rows_reply(rows, ids, instant, zone)
        )
    assert answered > 150
