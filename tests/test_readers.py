"""Recipient file readers: every format as text cells, every bad file as one clear error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from jobs.limits import Limits
from jobs.readers import RecipientFileError, Table, read_table, sniff_delimiter

FILES = Path(__file__).resolve().parent / "fixtures" / "recipients"


def cells(table: Table) -> list[list[str | None]]:
    """The table as plain lists, <NA> as None: what a person would read off the sheet."""
    return [[None if v is pd.NA else v for v in row] for row in table.frame.itertuples(
        index=False, name=None)]


# --- spreadsheets -----------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["xlsx", "xls", "ods"])
def test_numeric_cells_read_back_as_the_digits_typed(ext: str) -> None:
    """A phone stored as a number by LibreOffice reads '13055550101', never '13055550101.0'."""
    table = read_table(FILES / f"recipients-numeric.{ext}")
    assert table.format == ext
    assert table.frame["A"].tolist()[1:3] == ["13055550101", "13055550102"]
    assert table.frame["C"].tolist()[1] == "42"  # the number 42.0, not "42.0"


@pytest.mark.parametrize("ext", ["xlsx", "xls", "ods"])
def test_every_column_of_a_sheet_is_text(ext: str) -> None:
    """No numeric dtype leaks out: all columns are Arrow-backed strings."""
    frame = read_table(FILES / f"recipients-numeric.{ext}").frame
    assert all(str(dtype) == "string" for dtype in frame.dtypes)


@pytest.mark.parametrize("ext", ["xlsx", "xls", "ods"])
def test_an_empty_cell_is_missing_and_the_row_is_kept(ext: str) -> None:
    """The row with an empty phone cell stays, with <NA> in that cell."""
    table = read_table(FILES / f"recipients-numeric.{ext}")
    assert cells(table)[7] == [None, "Empty", "2"]


@pytest.mark.parametrize("ext", ["xlsx", "ods"])
def test_formula_cells_give_their_cached_value(ext: str) -> None:
    """A formula's stored result is read (HYPERLINK -> 'click'), never the formula or a recalc."""
    table = read_table(FILES / f"messy.{ext}")
    row = {r[0]: r for r in cells(table)}
    assert row["Injection"][2] == "click"
    assert row["Formula"][1] == "3055550110"  # ="305555"&"0110"


def test_a_fully_empty_row_inside_a_sheet_is_kept() -> None:
    """Row 12 of messy.xlsx is empty: it stays in the table as a row of <NA>."""
    table = read_table(FILES / "messy.xlsx")
    assert table.frame.loc[12].isna().all()
    assert list(table.frame.index) == list(range(1, 18))


def test_the_index_is_the_row_number_shown_by_the_spreadsheet(tmp_path: Path) -> None:
    """Data starting at B3 keeps spreadsheet numbering: index 3.., column letters B, C."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws["B3"], ws["C3"], ws["B4"], ws["C4"] = "phone", "name", 13055550101, "Ana"
    wb.save(tmp_path / "offset.xlsx")
    table = read_table(tmp_path / "offset.xlsx")
    assert list(table.frame.columns) == ["B", "C"]
    assert list(table.frame.index) == [3, 4]


def test_a_named_sheet_is_read(tmp_path: Path) -> None:
    """sheet='Second' reads that sheet; the default reads the first and says so."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "First"
    wb.active["A1"] = "1"
    wb.create_sheet("Second")["A1"] = "2"
    wb.save(tmp_path / "two.xlsx")
    assert read_table(tmp_path / "two.xlsx", sheet="second").frame["A"].tolist() == ["2"]
    first = read_table(tmp_path / "two.xlsx")
    assert first.sheet == "First"
    assert "read the first sheet 'First' of 2" in first.notes


def test_an_unknown_sheet_is_an_error_listing_the_sheets() -> None:
    """Asking for a sheet the file lacks names the sheets it has."""
    with pytest.raises(RecipientFileError, match="no sheet named 'Nope'.*'messy'"):
        read_table(FILES / "messy.xlsx", sheet="Nope")


# --- text files -------------------------------------------------------------------------------


def test_csv_cells_are_never_converted_to_numbers() -> None:
    """'0042' stays '0042' in a CSV (only a spreadsheet program turns it into 42)."""
    table = read_table(FILES / "recipients-numeric.csv")
    assert table.frame["C"].tolist()[1] == "0042"
    assert table.encoding == "utf-8" and table.delimiter == ","


def test_semicolon_csv_with_bom_is_sniffed() -> None:
    """A UTF-8 BOM is dropped, ';' is found, and a quoted ';' stays inside its field."""
    table = read_table(FILES / "semicolon-bom.csv")
    assert (table.encoding, table.delimiter) == ("utf-8-sig", ";")
    assert cells(table)[0] == ["telefono", "nombre", "ciudad"]
    assert cells(table)[2][1] == "Bruno; Jr."


def test_utf16_tab_separated_export_is_read() -> None:
    """Excel's 'Unicode Text' (UTF-16 with BOM, tabs) reads with its accents intact."""
    table = read_table(FILES / "utf16.csv")
    assert (table.encoding, table.delimiter) == ("utf-16", "\t")
    assert cells(table)[1:] == [["13055550101", "Zoë"], ["3055550102", "Łukasz"]]


def test_utf16_without_bom_is_detected() -> None:
    """UTF-16 LE without a BOM is recognized by its zero bytes."""
    table = read_table(FILES / "utf16-nobom.csv")
    assert table.encoding == "utf-16-le"
    assert cells(table)[1] == ["13055550101", "Zoë"]


def test_windows_1252_csv_keeps_its_accents() -> None:
    """Bytes that are not UTF-8 are read as Windows-1252: 'José Müller', '10 €'."""
    table = read_table(FILES / "cp1252.csv")
    assert table.encoding == "windows-1252"
    assert cells(table)[1] == ["13055550101", "José Müller", "10 €"]


def test_txt_one_number_a_line_keeps_a_blank_line_as_a_row() -> None:
    """numbers.txt: four rows, the blank third line is an empty row."""
    table = read_table(FILES / "numbers.txt")
    assert table.format == "txt"
    assert table.frame["A"].tolist() == ["13055550101", "3055550102", pd.NA, "+1 305 555 0103"]


def test_txt_in_the_vendors_old_semicolon_syntax() -> None:
    """'13056708084;Matt Ford;this test' splits into three fields."""
    table = read_table(FILES / "vendor-old.txt")
    assert cells(table)[0] == ["13056708084", "Matt Ford", "this test"]


def test_pipe_delimiter_is_sniffed() -> None:
    """'|' separated text is split on '|'."""
    assert read_table(FILES / "pipe.txt").delimiter == "|"


def test_excel_sep_line_names_the_delimiter_and_is_not_a_row() -> None:
    """'sep=;' forces ';' (so 'Ana,Maria' stays whole) and row 1 is the header after it."""
    table = read_table(FILES / "sep-line.csv")
    assert table.delimiter == ";"
    assert cells(table) == [["phone", "name"], ["13055550101", "Ana,Maria"]]


def test_blank_lines_inside_a_csv_are_rows_and_ragged_rows_are_padded() -> None:
    """An empty line mid-file is a row; short rows get <NA>, long rows widen the table;
    blank lines at the end are not rows."""
    table = read_table(FILES / "blank-lines.csv")
    assert list(table.frame.index) == [1, 2, 3, 4, 5]
    assert cells(table)[2] == [None, None, None, None]
    assert cells(table)[3] == ["3055550102", "Bruno", None, None]
    assert cells(table)[4] == ["3055550103", "Carla", "3", "extra"]


def test_a_quoted_multiline_value_is_one_row() -> None:
    """RFC 4180: a quoted newline stays in the value and the record is one row."""
    table = read_table(FILES / "multiline.csv")
    assert cells(table)[1] == ["13055550101", "line one\nline two"]
    assert list(table.frame.index) == [1, 2, 3]


def test_delimiter_sniffing_ignores_commas_inside_a_semicolon_file() -> None:
    """Texts with commas do not outvote a consistent ';'."""
    sample = "1305;Hi, Ana;x\n1306;Hello, Bob, hi;y\n1307;Yo;z\n"
    assert sniff_delimiter(sample) == ";"


# --- the content decides the format -----------------------------------------------------------


def test_a_csv_renamed_xlsx_is_read_as_csv_with_a_note() -> None:
    """csv-named.xlsx holds text: it is read as CSV and the note says so."""
    table = read_table(FILES / "csv-named.xlsx")
    assert table.format == "csv"
    assert cells(table)[1] == ["13055550101", "Ana"]
    assert any("named .xlsx but the content is CSV text" in n for n in table.notes)


def test_an_xlsx_renamed_csv_is_read_as_xlsx() -> None:
    """xlsx-named.csv is a zip workbook: read as XLSX, not as garbage text."""
    table = read_table(FILES / "xlsx-named.csv")
    assert table.format == "xlsx"
    assert cells(table)[1][:2] == ["Ana", "13055550101"]


# --- bad files: one clear error each ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("empty.csv", "empty"),
        ("blank.csv", "empty"),
        ("garbage.xlsx", "binary content"),
        ("encrypted.xlsx", "password-protected"),
        ("corrupt.xlsx", "damaged"),
        ("zipbomb.xlsx", "zip bomb"),
        ("html-named.xls", "web page"),
        ("not-a-sheet.zip.xlsx", "zip archive, not a spreadsheet"),
        ("sparse.xlsx", "far larger than it looks"),
        ("no-such-file.csv", "no such file"),
    ],
)
def test_a_bad_file_is_one_error_naming_the_file(name: str, words: str) -> None:
    """The message starts with the file name and says what is wrong, in words."""
    with pytest.raises(RecipientFileError) as caught:
        read_table(FILES / name)
    assert str(caught.value).startswith(f"{name}: ")
    assert words in str(caught.value)


def test_the_parser_crash_guard_does_not_kill_the_process() -> None:
    """A 5 KB sheet whose cells span A1:XFD1048576 is an error; this process lives on."""
    with pytest.raises(RecipientFileError):
        read_table(FILES / "sparse.xlsx")
    assert read_table(FILES / "messy.xlsx").frame.shape == (17, 3)


def test_total_uncompressed_size_is_limited() -> None:
    """A workbook unpacking to more than max_uncompressed_bytes is refused before parsing."""
    with pytest.raises(RecipientFileError, match="unpacks to .* more than the limit"):
        read_table(FILES / "messy.xlsx", limits=Limits(max_uncompressed_bytes=10_000))


def test_file_size_is_limited() -> None:
    """A file bigger than max_bytes is refused without reading it."""
    with pytest.raises(RecipientFileError, match="more than the limit of 100 bytes"):
        read_table(FILES / "messy.csv", limits=Limits(max_bytes=100))


@pytest.mark.parametrize("name", ["messy.csv", "messy.xlsx"])
def test_row_limit(name: str) -> None:
    """More rows than max_rows is an error naming the limit."""
    with pytest.raises(RecipientFileError, match="limit of 10"):
        read_table(FILES / name, limits=Limits(max_rows=10))


@pytest.mark.parametrize("name", ["messy.csv", "messy.xlsx"])
def test_column_limit(name: str) -> None:
    """More columns than max_columns is an error."""
    with pytest.raises(RecipientFileError, match="3 columns, more than the limit of 2"):
        read_table(FILES / name, limits=Limits(max_columns=2))


def test_cell_length_limit_names_row_and_column() -> None:
    """A cell over max_cell_chars: the error gives its row and column."""
    with pytest.raises(RecipientFileError) as caught:
        read_table(FILES / "messy.csv", limits=Limits(max_cell_chars=12))
    assert str(caught.value) == (
        "messy.csv: row 1: column B: a cell has 14 characters, more than the limit of 12")
    assert caught.value.row == 1


def test_an_empty_first_sheet_is_skipped(tmp_path: Path) -> None:
    """A blank cover sheet: the first sheet with cells is read, and the note says which."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "Cover"
    wb.create_sheet("List")["A1"] = "13055550101"
    wb.save(tmp_path / "cover.xlsx")
    table = read_table(tmp_path / "cover.xlsx")
    assert (table.sheet, table.frame["A"].tolist()) == ("List", ["13055550101"])
    assert "read the first non-empty sheet 'List' of 2" in table.notes
