"""Recipient files -> a table of text cells, whatever program made them.

The content decides the format; the extension only names what the user expected:

    PK zip   -> xlsx / xlsm / xlsb (by ``[Content_Types].xml``) or ods (by its ``mimetype``)
    OLE2     -> xls, or a password-protected xlsx (an ``EncryptedPackage`` stream: refused)
    else     -> delimited text (.csv, .txt): UTF-8, UTF-16 (with or without BOM), Windows-1252;
                delimiter sniffed among ``,`` ``;`` tab ``|`` (an Excel ``sep=`` line wins)

Every cell comes back as text as the user typed it: spreadsheets store numbers as floats and an
integral float becomes integer text (``13056708084.0`` -> ``"13056708084"``, ``42.0`` -> ``"42"``);
a formula gives its cached value (never evaluated); a date reads ``2024-05-01`` (with
`` 13:30:00`` when it has a time), a boolean ``true``/``false``; an error cell (``#DIV/0!``)
is empty. CSV fields are never converted to numbers. Empty cells are ``<NA>``.

Rows: the table's index is the row number a person sees (the spreadsheet's row header, or the
record number when the CSV is opened in a spreadsheet). Empty rows before the first and after
the last non-empty row are not part of the table; an empty row between them is, so the recipient
stage can report it rather than lose it.

Every problem is one ``RecipientFileError`` naming the file (and the row when there is one).
"""

from __future__ import annotations

import codecs
import csv
import faulthandler
import io
import json
import mmap
import os
import re
import resource
import select
import signal
import tempfile
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastexcel
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc

from jobs.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "DELIMITERS",
    "RecipientFileError",
    "Table",
    "arrow_strings",
    "column_letter",
    "read_table",
    "sniff_format",
]

DELIMITERS = (",", ";", "\t", "|")
SPREADSHEETS = ("xlsx", "xlsm", "xlsb", "xls", "ods")
_EXTENSIONS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "txt", ".xlsx": "xlsx", ".xlsm": "xlsm",
    ".xltx": "xlsx", ".xlsb": "xlsb", ".xls": "xls", ".ods": "ods",
}
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"
_SAMPLE = 64 * 1024
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
_LEADING_BLANK_RE = re.compile(rb"(?:[ \t]*(?:\r\n|\n|\r))*")
_TRAILING_BLANK_RE = re.compile(rb"(?:(?:\r\n|\n|\r)[ \t]*)+\Z")
_NOT_BLANK_RE = re.compile(rb"\S")
#: Bytes pyarrow parses at a time (a block is the unit of its temporaries).
_BLOCK_BYTES = 1024 * 1024
_SEP_LINE_RE = re.compile(r"\Asep=(.)[ \t]*(?:\r\n|\n|\r|\Z)")


class RecipientFileError(Exception):
    """The recipient file cannot be used; the text says which file, which row, and why."""

    def __init__(self, path: str | Path, message: str, *, row: int | None = None) -> None:
        self.path = Path(path)
        self.message = message
        self.row = row
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path.name}: row {self.row}" if self.row is not None else self.path.name
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Table:
    """The cells of one sheet (or text file) as text, with what we learnt about the file."""

    path: Path
    #: Arrow-backed string columns named by spreadsheet letter (A, B, ...); index = row number.
    frame: pd.DataFrame
    #: Real format, by content: csv, txt, xlsx, xlsm, xlsb, xls or ods.
    format: str
    sheet: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    #: Things the user may want to know (a renamed file, other sheets left unread).
    notes: tuple[str, ...] = field(default=())


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: how a spreadsheet names a column."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def read_table(
    path: str | Path, *, limits: Limits = DEFAULT_LIMITS, sheet: str | int | None = None
) -> Table:
    """Read a recipient file of any supported format; ``sheet`` is a name or a 1-based index."""
    path = Path(path)
    data = _read_bytes(path, limits)
    fmt = sniff_format(data, path)
    notes = _extension_notes(path, fmt)
    if fmt in SPREADSHEETS:
        if fmt in ("xlsx", "xlsm", "xlsb", "ods"):
            _check_zip(path, data, limits)
        table = _read_spreadsheet(path, data, fmt, sheet, limits, notes)
    else:
        held = [data]  # handed over: the text reader lets the bytes go once they are parsed
        del data
        table = _read_text(path, held, "txt" if path.suffix.lower() == ".txt" else "csv",
                           limits, notes)
    _check_shape(table, limits)
    return table


# --- format -----------------------------------------------------------------------------------


def sniff_format(data: bytes, path: str | Path = "file") -> str:
    """The file's real format from its first bytes (and zip directory); refuse what we can't read."""
    if not data[:_SAMPLE].strip() and not data.strip():
        raise RecipientFileError(path, "the file is empty")
    if data.startswith(_ZIP):
        return _zip_kind(path, data)
    if data.startswith(_OLE2):
        return _ole2_kind(path, data)
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html", b"<table")):
        raise RecipientFileError(
            path, "is a web page (HTML), not a spreadsheet, whatever its name says; open it in "
            "a spreadsheet program and save it as .xlsx or .csv")
    if head.startswith(b"<?xml"):
        raise RecipientFileError(
            path, "is an XML document (an 'XML Spreadsheet 2003'?), not a supported format; "
            "save it as .xlsx or .csv")
    return "text"


def _zip_kind(path: str | Path, data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if "mimetype" in names:
                mime = zf.read("mimetype").strip()
                if mime == _ODS_MIME:
                    return "ods"
                kind = mime.decode("ascii", "replace").rsplit(".", 1)[-1]
                raise RecipientFileError(
                    path, f"is an OpenDocument {kind} file, not a spreadsheet")
            if "[Content_Types].xml" not in names:
                raise RecipientFileError(path, "is a zip archive, not a spreadsheet")
            types = zf.read("[Content_Types].xml")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise RecipientFileError(
            path, f"is damaged: its zip container cannot be opened ({exc}); "
            "was the upload complete?") from exc
    except NotImplementedError as exc:
        raise RecipientFileError(path, f"uses an unsupported zip feature ({exc})") from exc
    if b"sheet.binary.macroEnabled.main" in types:
        return "xlsb"
    if b"sheet.macroEnabled.main+xml" in types:
        return "xlsm"
    if b"spreadsheetml.sheet.main+xml" in types or b"spreadsheetml.template.main+xml" in types:
        return "xlsx"
    if b"wordprocessingml" in types:
        raise RecipientFileError(path, "is a Word document, not a spreadsheet")
    if b"presentationml" in types:
        raise RecipientFileError(path, "is a PowerPoint file, not a spreadsheet")
    raise RecipientFileError(path, "is an Office zip package without a workbook")


def _ole2_kind(path: str | Path, data: bytes) -> str:
    # Directory entry names are UTF-16LE; an encrypted OOXML file is an OLE2 container holding
    # "EncryptionInfo" + "EncryptedPackage" instead of the workbook itself.
    if "EncryptedPackage".encode("utf-16-le") in data:
        raise RecipientFileError(
            path, "is password-protected (encrypted); save a copy without a password and send "
            "that one")
    if "Workbook".encode("utf-16-le") in data or "Book".encode("utf-16-le") in data:
        return "xls"
    raise RecipientFileError(
        path, "is an old-style Office document (OLE2) without a workbook, e.g. a Word .doc")


def _extension_notes(path: Path, fmt: str) -> tuple[str, ...]:
    expected = _EXTENSIONS.get(path.suffix.lower())
    real = "CSV text" if fmt == "text" else fmt.upper()
    if expected is None:
        return (f"read as {real} by its content",)
    if expected in ("csv", "txt") and fmt == "text":
        return ()
    if expected == fmt or {expected, fmt} <= {"xlsx", "xlsm"}:
        return ()
    return (f"named {path.suffix} but the content is {real}: read as {real}",)


def _read_bytes(path: Path, limits: Limits) -> bytes:
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise RecipientFileError(
                path, f"is {_size(size)}, more than the limit of {_size(limits.max_bytes)}")
        with path.open("rb") as fh:
            return fh.read(limits.max_bytes + 1)
    except FileNotFoundError as exc:
        raise RecipientFileError(path, "no such file") from exc
    except IsADirectoryError as exc:
        raise RecipientFileError(path, "is a folder, not a file") from exc
    except PermissionError as exc:
        raise RecipientFileError(path, "cannot be read: permission denied") from exc


def _check_zip(path: Path, data: bytes, limits: Limits) -> None:
    """Zip-bomb guard: the directory's uncompressed sizes and ratios, before any parsing.

    A directory that lies about sizes gets past this check, but not past the parser's own
    memory and time limits (see ``_load_isolated``).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise RecipientFileError(path, f"is damaged: {exc}; was the upload complete?") from exc
    total = sum(i.file_size for i in infos)
    if total > limits.max_uncompressed_bytes:
        raise RecipientFileError(
            path, f"unpacks to {_size(total)}, more than the limit of "
            f"{_size(limits.max_uncompressed_bytes)} (a zip bomb?)")
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_floor_bytes and ratio > limits.max_compression_ratio:
            raise RecipientFileError(
                path, f"part {info.filename} unpacks to {ratio:.0f} times its packed size "
                f"(limit {limits.max_compression_ratio:.0f}): a zip bomb?")


# --- spreadsheets -----------------------------------------------------------------------------


def _read_spreadsheet(
    path: Path, data: bytes, fmt: str, sheet: str | int | None, limits: Limits,
    notes: tuple[str, ...],
) -> Table:
    batch, meta = _load_isolated(path, data, fmt, sheet, limits)
    names: list[str] = meta["sheets"]
    index: int = meta["index"]
    if len(names) > 1 and sheet is None:
        which = "first" if index == 0 else "first non-empty"
        notes += (f"read the {which} sheet '{names[index]}' of {len(names)}",)
    columns = {
        column_letter(offset): _plain_dates(batch.column(i))
        for i, offset in enumerate(meta["columns"])
    }
    frame = _frame(columns, first_row=1)
    return Table(path=path, frame=frame, format=fmt, sheet=names[index], notes=notes)


def _plain_dates(values: pa.Array) -> pa.Array:
    """Date cells come as '2024-05-01 00:00:00'; a date without a time reads '2024-05-01'."""
    if not pc.any(pc.ends_with(values, " 00:00:00")).as_py():
        return values
    return pc.replace_substring_regex(
        values, r"^(\d{4}-\d\d-\d\d) 00:00:00$", r"\1")


def _load_sheet(
    data: bytes, fmt: str, sheet: str | int | None, limits: Limits
) -> tuple[pa.RecordBatch, dict[str, Any]]:
    """fastexcel (calamine) -> one RecordBatch of strings; raises ValueError with a user text."""
    try:
        reader = fastexcel.read_excel(data)
        names = list(reader.sheet_names)
    except Exception as exc:  # fastexcel's own error tree, and pyo3's PanicException
        raise ValueError(f"cannot be read as {fmt.upper()}: {_brief(exc)}") from exc
    if not names:
        raise ValueError("has no sheets")
    # Without a choice, the first sheet that has a cell (an empty cover sheet is skipped).
    candidates = [_sheet_index(names, sheet)] if sheet is not None else range(len(names))
    for index in candidates:
        batch, offsets = _load_one(reader, index, names, fmt, limits)
        if batch.num_rows:
            break
    else:
        index = candidates[0]
    return batch, {"sheets": names, "index": index, "columns": offsets[: batch.num_columns]}


def _load_one(
    reader: Any, index: int, names: list[str], fmt: str, limits: Limits
) -> tuple[pa.RecordBatch, list[int]]:
    offsets: list[int] = []

    def keep(column: Any) -> bool:
        offsets.append(column.absolute_index)
        return len(offsets) <= limits.max_columns

    try:
        batch = reader.load_sheet(
            index, header_row=None, skip_rows=0, dtypes="string", eager=True,
            use_columns=keep, n_rows=limits.max_rows + 2)
    except Exception as exc:
        raise ValueError(f"cannot be read as {fmt.upper()}: {_brief(exc)}") from exc
    if len(offsets) > limits.max_columns:
        raise ValueError(f"sheet '{names[index]}' has {len(offsets):,} columns, more than the "
                         f"limit of {limits.max_columns:,}")
    if batch.num_rows > limits.max_rows + 1:
        raise ValueError(f"sheet '{names[index]}' has more rows than the limit of "
                         f"{limits.max_rows:,}")
    return batch, offsets


def _load_isolated(
    path: Path, data: bytes, fmt: str, sheet: str | int | None, limits: Limits
) -> tuple[pa.RecordBatch, dict[str, Any]]:
    """Parse the workbook in a forked child with a memory cap and a deadline.

    calamine builds a dense grid from the extreme cell positions, so a 5 KB file with one cell
    in A1 and one in XFD1048576 asks for hundreds of GB and *aborts* the process (a Rust
    allocation failure cannot be caught). In a child that is one clear error instead of a dead
    worker. The child hands the cells back as Arrow IPC in an anonymous memory file, which the
    parent maps without copying.
    """
    if not hasattr(os, "fork") or not limits.isolate_parser:
        try:
            return _load_sheet(data, fmt, sheet, limits)
        except ValueError as exc:
            raise RecipientFileError(path, str(exc)) from exc
    out = _anonymous_file()
    rpipe, wpipe = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        _child(out, rpipe, wpipe, data, fmt, sheet, limits)
    os.close(wpipe)
    try:
        try:
            message = _read_status(rpipe, pid, limits.max_parse_seconds)
        except TimeoutError as exc:
            raise RecipientFileError(
                path, f"took more than {limits.max_parse_seconds:.0f} s to read: the "
                f"{fmt.upper()} is far larger or more complex than a recipient list") from exc
        _, status = os.waitpid(pid, 0)
        pid = 0
        if "error" in message:
            raise RecipientFileError(path, message["error"])
        if status != 0 or "meta" not in message:
            raise RecipientFileError(
                path, f"could not be read: the {fmt.upper()} parser crashed or went over its "
                f"memory limit ({_size(limits.max_parse_memory)}); the sheet is far larger than "
                "it looks (cells spread over a huge range?) or damaged")
        size = os.fstat(out.fileno()).st_size
        buffer = pa.py_buffer(mmap.mmap(out.fileno(), size, prot=mmap.PROT_READ))
        batch = pa.ipc.open_file(buffer).get_batch(0)
        return batch, message["meta"]
    finally:
        if pid:
            _kill(pid)
        os.close(rpipe)
        out.close()


def _child(
    out: Any, rpipe: int, wpipe: int, data: bytes, fmt: str, sheet: str | int | None,
    limits: Limits,
) -> None:
    code = 1
    try:
        os.close(rpipe)
        faulthandler.disable()  # a crash here is reported by the parent, not dumped
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)  # Rust prints allocation failures and panics on stderr
        cap = _vm_size() + limits.max_parse_memory
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        try:
            batch, meta = _load_sheet(data, fmt, sheet, limits)
        except ValueError as exc:
            os.write(wpipe, json.dumps({"error": str(exc)}).encode())
            code = 0
        else:
            with pa.PythonFile(out, mode="w") as sink, pa.ipc.new_file(
                sink, batch.schema
            ) as writer:
                writer.write_batch(batch)
            os.write(wpipe, json.dumps({"meta": meta}).encode())
            code = 0
    except BaseException as exc:  # noqa: BLE001 - nothing may escape a forked child
        try:
            os.write(wpipe, json.dumps({"crash": f"{type(exc).__name__}: {exc}"[:300]}).encode())
        finally:
            code = 1
    finally:
        os._exit(code)


def _read_status(rpipe: int, pid: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            _kill(pid)
            raise TimeoutError
        ready, _, _ = select.select([rpipe], [], [], left)
        if not ready:
            continue
        chunk = os.read(rpipe, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    text = b"".join(chunks)
    try:
        return dict(json.loads(text)) if text else {}
    except ValueError:
        return {}


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _anonymous_file() -> Any:
    """A file with no name: in memory where Linux allows (memfd), else an unlinked temp file."""
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("smspipe-sheet"), "w+b")
    return tempfile.TemporaryFile()


def _vm_size() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _sheet_index(names: list[str], sheet: str | int | None) -> int:
    if sheet is None:
        return 0
    if isinstance(sheet, int):
        if 1 <= sheet <= len(names):
            return sheet - 1
        raise ValueError(f"has {len(names)} sheet(s); there is no sheet {sheet}")
    wanted = sheet.strip().casefold()
    for i, name in enumerate(names):
        if name.strip().casefold() == wanted:
            return i
    raise ValueError(f"has no sheet named '{sheet}' (sheets: {', '.join(map(repr, names))})")


# --- text -------------------------------------------------------------------------------------


def _read_text(
    path: Path, held: list[bytes], fmt: str, limits: Limits, notes: tuple[str, ...]
) -> Table:
    """``held`` holds the file's bytes, and nothing else does: they are let go once parsed."""
    utf8, encoding = _to_utf8(path, held.pop())
    # The rows lie between ``start`` and ``end``: offsets, not slices, so a big file is never
    # copied on its way to the parser.
    start, end, first_row = 0, len(utf8), 1
    forced = _SEP_LINE_RE.match(utf8[:16].decode("utf-8", "ignore"))
    if forced:  # Excel's "sep=;" first line names the delimiter; Excel does not show it as a row
        start = len(forced.group(0).encode())
    lead = _LEADING_BLANK_RE.match(utf8, start)
    if lead and lead.end() > start:
        skipped = utf8[start : lead.end()]
        first_row += skipped.count(b"\n") + skipped.count(b"\r") - skipped.count(b"\r\n")
        start = lead.end()
    tail = _TRAILING_BLANK_RE.search(utf8, max(start, end - 4096))
    if tail:
        end = tail.start()
    if not _NOT_BLANK_RE.search(utf8, start, end):
        raise RecipientFileError(path, "has no rows: the file is empty or only blank lines")
    sample = utf8[start : start + _SAMPLE].decode("utf-8", "ignore")
    delimiter = forced.group(1) if forced else sniff_delimiter(sample)
    held.append(utf8)
    del utf8
    frame = _parse_fast(held, start, end, delimiter, first_row)
    if frame is None:
        text = held.pop()[start:end].decode("utf-8")
        frame = _parse_slow(path, text, delimiter, first_row, limits)
    return Table(path=path, frame=frame, format=fmt, encoding=encoding,
                 delimiter=delimiter, notes=notes)


def _to_utf8(path: Path, data: bytes) -> tuple[bytes, str]:
    """The text as UTF-8 bytes (what pyarrow parses), and the encoding it was found in."""
    if data.startswith(b"\xef\xbb\xbf"):
        body, encoding = data[3:], "utf-8-sig"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        body, encoding = _transcode(path, data, "utf-16"), "utf-16"
    elif (utf16 := _bomless_utf16(data)) is not None:
        body, encoding = _transcode(path, data, utf16), utf16
    else:
        body, encoding = data, "utf-8"
    if b"\x00" in body:
        raise _binary(path)
    if encoding in ("utf-8", "utf-8-sig") and not body.isascii():
        try:
            _check_utf8(body)
        except UnicodeDecodeError:
            try:
                body = body.decode("cp1252").encode("utf-8")
                encoding = "windows-1252"
            except UnicodeDecodeError as exc:
                raise _binary(path) from exc
    sample = body[:_SAMPLE].decode("utf-8", "ignore")
    if len(_CONTROL_RE.findall(sample)) > max(2, len(sample) // 100):
        raise _binary(path)
    return body, encoding


def _check_utf8(data: bytes) -> None:
    """Raise UnicodeDecodeError unless ``data`` is UTF-8, decoding a block at a time (a whole
    file decoded at once would be a second, bigger copy of it)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    for at in range(0, len(view), _BLOCK_BYTES):
        decoder.decode(view[at : at + _BLOCK_BYTES])
    decoder.decode(b"", final=True)


def _bomless_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM: mostly-ASCII text has a zero in every other byte."""
    head = data[:4096]
    if len(head) < 4:
        return None
    half = len(head) // 2
    if head[1::2].count(0) > 0.6 * half and head[0::2].count(0) < 0.1 * half:
        return "utf-16-le"
    if head[0::2].count(0) > 0.6 * half and head[1::2].count(0) < 0.1 * half:
        return "utf-16-be"
    return None


def _transcode(path: Path, data: bytes, encoding: str) -> bytes:
    try:
        return data.decode(encoding).encode("utf-8")
    except UnicodeError as exc:
        raise RecipientFileError(path, f"is not valid {encoding.upper()} text: {exc}") from exc


def _binary(path: Path) -> RecipientFileError:
    return RecipientFileError(
        path, "is not a spreadsheet or a text list (binary content); expected .xlsx, .xlsm, "
        ".xls, .ods, .csv or .txt")


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the sample's lines into the most consistent number of fields.

    Candidates are ``,`` ``;`` tab ``|``; a file where none splits anything (one number a line)
    gets ``,``, the vendor's current syntax. Quotes are honoured, so a comma inside a quoted
    text does not vote.
    """
    lines = sample.splitlines()
    if len(sample) >= _SAMPLE and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut in the middle
    lines = [line for line in lines if line.strip()][:200]
    best: tuple[float, int, int] = (0.0, 1, 0)
    choice = ","
    for order, delimiter in enumerate(DELIMITERS):
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter) if row]
        if not counts:
            continue
        values, freq = np.unique(np.array(counts), return_counts=True)
        mode = int(values[freq.argmax()])
        if mode < 2:
            continue
        score = (float(freq.max()) / len(counts), mode, -order)
        if score > best:
            best, choice = score, delimiter
    return choice


def _parse_fast(
    held: list[bytes], start: int, end: int, delimiter: str, first_row: int
) -> pd.DataFrame | None:
    """pyarrow's parser for the common case; None when the slow parser must decide.

    The fast path cannot report empty lines (pyarrow skips them) nor ragged rows, so a file with
    either goes to the slow path, which keeps every record. The file is parsed a block at a
    time on this thread: the table is the only big thing made (pyarrow's threaded reader holds
    the blocks of every thread as well, about twice the table at 1M rows).
    """
    # pyarrow skips empty lines, which are rows to us: two line ends in a row (LF LF, CR CR,
    # LF CR) send the file to the slow parser. A quoted multi-line value is one record in both
    # parsers, as in a spreadsheet.
    utf8 = held[0]
    if any(utf8.find(pair, start, end) >= 0 for pair in (b"\n\n", b"\r\r", b"\n\r")):
        return None
    head = utf8[start : start + _SAMPLE].decode("utf-8", "ignore")
    first = next(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter), [])
    names = [f"f{i}" for i in range(max(len(first), 1))]
    body = pa.BufferReader(pa.py_buffer(utf8).slice(start, end - start))
    try:
        reader = pacsv.open_csv(
            body,
            read_options=pacsv.ReadOptions(
                column_names=names, block_size=_BLOCK_BYTES, use_threads=False),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, quote_char='"', double_quote=True, escape_char=False,
                newlines_in_values=utf8.find(b'"', start, end) >= 0, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.large_string() for n in names}, strings_can_be_null=True,
                quoted_strings_can_be_null=True, null_values=[""]),
        )
        batches = list(reader)
    except (pa.ArrowInvalid, pa.ArrowException):
        return None  # ragged rows, most likely
    if not batches:
        return None
    del body, utf8
    held.clear()  # parsed: the bytes go before the table is shaped
    table = pa.Table.from_batches(batches)
    del batches
    columns = {column_letter(i): table.column(i) for i in range(len(names))}
    return _frame(columns, first_row=first_row)


def _parse_slow(
    path: Path, text: str, delimiter: str, first_row: int, limits: Limits
) -> pd.DataFrame:
    """Python's csv module: keeps empty lines as empty rows and pads ragged rows."""
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    try:
        for row in reader:
            rows.append(row)
            if len(rows) > limits.max_rows + 1:
                raise RecipientFileError(
                    path, f"has more rows than the limit of {limits.max_rows:,}")
            if len(row) > limits.max_columns:
                raise RecipientFileError(
                    path, f"has {len(row)} fields, more than the limit of {limits.max_columns}",
                    row=first_row + len(rows) - 1)
    except csv.Error as exc:
        raise RecipientFileError(
            path, f"cannot be read as CSV: {exc}", row=first_row + len(rows)) from exc
    width = max((len(r) for r in rows), default=1) or 1
    columns: dict[str, Iterable[str | None]] = {}
    for i in range(width):
        columns[column_letter(i)] = [r[i] if i < len(r) and r[i] != "" else None for r in rows]
    return _frame({k: pa.array(v, type=pa.string()) for k, v in columns.items()},
                  first_row=first_row)


# --- shared -----------------------------------------------------------------------------------


def _frame(columns: dict[str, pa.Array | pa.ChunkedArray], *, first_row: int) -> pd.DataFrame:
    """Arrow string columns -> DataFrame, without the empty rows at both ends.

    The index is the row number the user sees; only null cells count as empty here (a cell of
    blanks is content the recipient stage reports). Columns stay chunked large_string (what
    pandas' Arrow strings hold), so nothing is copied.
    """
    arrays: dict[str, pa.ChunkedArray] = {}
    for name, array in columns.items():
        if isinstance(array, pa.Array):
            array = pa.chunked_array([array])
        if array.type != pa.large_string():
            array = array.cast(pa.large_string())
        arrays[name] = array
    length = len(next(iter(arrays.values()))) if arrays else 0
    lo, hi = 0, length
    if arrays and all(a.null_count for a in arrays.values()):
        filled = np.zeros(length, dtype=bool)
        for array in arrays.values():
            filled |= pc.is_valid(array).to_numpy(zero_copy_only=False)
        hits = np.flatnonzero(filled)
        lo, hi = (int(hits[0]), int(hits[-1]) + 1) if len(hits) else (0, 0)
    data = {name: pd.arrays.ArrowStringArray(a.slice(lo, hi - lo)) for name, a in arrays.items()}
    index = pd.RangeIndex(first_row + lo, first_row + hi, name="file_row")
    return pd.DataFrame(data, index=index, copy=False)


def _check_shape(table: Table, limits: Limits) -> None:
    frame = table.frame
    if len(frame) > limits.max_rows:
        raise RecipientFileError(
            table.path, f"has {len(frame):,} rows, more than the limit of {limits.max_rows:,}")
    if frame.shape[1] > limits.max_columns:
        raise RecipientFileError(
            table.path, f"has {frame.shape[1]} columns, more than the limit of "
            f"{limits.max_columns}")
    for name in frame.columns:
        array = arrow_strings(frame[name])
        # Bytes >= characters: the cheap byte count clears almost every file.
        widest = pc.max(pc.binary_length(array)).as_py()
        if widest is None or widest <= limits.max_cell_chars:
            continue
        lengths = pc.utf8_length(array)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > limits.max_cell_chars:
            at = pc.index(pc.greater(lengths, limits.max_cell_chars), True).as_py()
            raise RecipientFileError(
                table.path, f"column {name}: a cell has {lengths[at].as_py():,} characters, more "
                f"than the limit of {limits.max_cell_chars:,}", row=int(frame.index[at]))


def arrow_strings(column: pd.Series) -> pa.ChunkedArray:
    """The Arrow data behind a string column, as chunked large_string (no copy when it is)."""
    array = pa.array(column.array)
    if isinstance(array, pa.Array):
        array = pa.chunked_array([array])
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    return array


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} TB"


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__

