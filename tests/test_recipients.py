"""Recipient preparation: columns, normalization, duplicates, suppression, texts, summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from jobs.readers import RecipientFileError
from jobs.recipients import STATES, PreparedRecipients, locate_columns, prepare_recipients

FILES = Path(__file__).resolve().parent / "fixtures" / "recipients"


def prepare(name: str, text: str = "Hi {0}", **kwargs: object) -> PreparedRecipients:
    kwargs.setdefault("region", "US")
    return prepare_recipients(FILES / name, text, **kwargs)  # type: ignore[arg-type]


def by_row(prepared: PreparedRecipients) -> dict[int, dict[str, object]]:
    """Rows as plain dicts keyed by row number, <NA> as None."""
    frame = prepared.frame.astype(object).where(prepared.frame.notna(), None)
    return {int(r["row"]): r for r in frame.to_dict("records")}


@pytest.mark.parametrize("ext", ["csv", "xlsx", "xls", "ods"])
def test_the_sample_list_gives_the_same_verdicts_in_every_format(ext: str) -> None:
    """8 rows: 5 ready, a duplicate of row 1, a too-short number, an empty cell."""
    prepared = prepare(f"recipients-numeric.{ext}", "Hi {0}, code {1}")
    summary = prepared.summary
    assert (summary.rows, summary.ready, summary.duplicates, summary.suppressed) == (8, 5, 1, 0)
    assert dict(summary.rejected_by_reason) == {"INVALID_NUMBER": 1, "EMPTY": 1}
    rows = by_row(prepared)
    assert rows[5]["state"] == "DUPLICATE" and rows[5]["reason"] == "duplicate of row 1"
    assert rows[6]["reason"] == "INVALID_NUMBER" and rows[7]["reason"] == "EMPTY"
    assert rows[8]["msisdn"] == "584121234567"  # international number written without '+'


def test_numeric_cells_render_as_typed_and_csv_text_as_written() -> None:
    """xlsx holds the number 42 ('Hi Ana, code 42'); the CSV holds the text '0042'."""
    assert by_row(prepare("recipients-numeric.xlsx", "Hi {0}, code {1}"))[1]["text"] == (
        "Hi Ana, code 42")
    assert by_row(prepare("recipients-numeric.csv", "Hi {0}, code {1}"))[1]["text"] == (
        "Hi Ana, code 0042")


def test_every_input_row_appears_once_in_file_order() -> None:
    """messy.xlsx has 16 data rows: rows 1..16, including the empty row 11."""
    prepared = prepare("messy.xlsx")
    assert prepared.frame["row"].tolist() == list(range(1, 17))
    assert prepared.frame["input"].tolist()[:2] == ["13055550101", "(305) 555-0102"]
    assert prepared.source.first_file_row == 2


def test_a_header_naming_the_phone_column_moves_it() -> None:
    """'Teléfono móvil' in column B is the phone; Nombre and Código become {0} and {1}."""
    prepared = prepare("messy.xlsx", "Hola {0} ({1})")
    assert prepared.source.header is True
    assert prepared.source.phone_column == "Teléfono móvil"
    assert prepared.source.parameters == ("Nombre", "Código")
    assert by_row(prepared)[1]["text"] == "Hola Ana (42)"


def test_the_messy_list_verdicts() -> None:
    """Formatted, international, short, blank, text, empty-row, formula and emoji rows."""
    rows = by_row(prepare("messy.xlsx", "Hola {0} ({1})"))
    states = {r: (v["state"], v["reason"]) for r, v in rows.items()}
    assert states[5] == ("DUPLICATE", "duplicate of row 1")  # 1-305-555-0101
    assert states[8] == ("REJECTED", "INVALID_NUMBER")  # 12
    assert states[9] == ("REJECTED", "EMPTY")  # no phone
    assert states[10] == ("REJECTED", "NOT_A_NUMBER")  # "call me"
    assert states[11] == ("REJECTED", "EMPTY")  # the fully empty row
    assert rows[6]["msisdn"] == "584121234567" and rows[7]["msisdn"] == "447400123456"
    assert rows[13]["text"] == "Hola Injection (click)"  # the formula's cached value
    assert rows[16]["msisdn"] == "13055550110"  # a formula in the phone column
    assert (rows[14]["encoding"], rows[14]["segments"]) == ("UCS-2", 1)  # Zoë 😀


def test_a_file_without_header_uses_the_first_column_and_counts_every_line() -> None:
    """numbers.txt: no header, four rows, the blank third line is EMPTY."""
    prepared = prepare("numbers.txt", "Sale today")
    assert prepared.source.header is False
    assert prepared.frame["state"].tolist() == ["READY", "READY", "REJECTED", "READY"]
    assert by_row(prepared)[3]["reason"] == "EMPTY"


@pytest.mark.parametrize("spec", [1, "1", "A", "Nombre", "nombre"])
def test_the_caller_can_name_the_phone_column(spec: str | int) -> None:
    """By number (1 = A), letter or header (any case): column A holds names, not phones."""
    prepared = prepare("messy.xlsx", "Hi", phone_column=spec)
    assert prepared.source.phone_column == "Nombre"
    assert prepared.summary.ready == 0


def test_an_unknown_phone_column_name_is_an_error_listing_the_headers() -> None:
    """A header that does not exist: the error lists the headers that do."""
    with pytest.raises(RecipientFileError, match="no column named 'Mobile Phone'.*'Nombre'"):
        prepare("messy.xlsx", phone_column="Mobile Phone")


def test_first_row_with_digits_is_data_not_a_header() -> None:
    """'13056708084;Matt Ford;...' is a recipient: both lines are rows."""
    prepared = prepare("vendor-old.txt", "Hi {0}, {1}")
    assert prepared.source.header is False
    assert prepared.summary.rows == 2
    assert by_row(prepared)[1]["text"] == "Hi Matt Ford, this test"


def test_header_detection_ignores_case_and_accents() -> None:
    """'TELÉFONO' names the phone column even in the second position."""
    frame = pd.DataFrame({"A": ["Name", "Ana"], "B": ["TELÉFONO", "13055550101"]},
                         dtype="string[pyarrow]")
    columns = locate_columns(frame)
    assert (columns.header, columns.phone, columns.parameters) == (True, "B", ("A",))


def test_a_placeholder_beyond_the_columns_is_one_error_naming_them() -> None:
    """{3} with columns Nombre and Código: file, placeholder and columns in one message."""
    with pytest.raises(RecipientFileError) as caught:
        prepare("messy.xlsx", "Hi {3}")
    assert str(caught.value) == (
        "messy.xlsx: the text uses {3} but the file has 2 parameter columns: "
        "{0} = Nombre, {1} = Código")


@pytest.mark.parametrize("name", ["header-only.csv", "header-only.xlsx"])
def test_a_header_without_rows_is_an_error(name: str) -> None:
    """A list with a header and nothing under it cannot be sent."""
    with pytest.raises(RecipientFileError, match=f"{name}: has a header row but no data rows"):
        prepare(name)


def test_scientific_notation_is_rejected_as_ambiguous() -> None:
    """'1.30556E+10' lost digits in a spreadsheet: AMBIGUOUS_NUMBER, never guessed."""
    rows = by_row(prepare("scientific.csv", "Hi"))
    assert rows[1]["reason"] == "AMBIGUOUS_NUMBER"
    assert rows[2]["state"] == "READY"


def test_the_first_row_of_a_number_wins_even_with_other_parameters() -> None:
    """'Ana (again)' has Ana's number in another format: DUPLICATE of row 1, not sent."""
    rows = by_row(prepare("messy.csv", "Hi {0}"))
    assert rows[1]["state"] == "READY"
    assert (rows[5]["state"], rows[5]["reason"]) == ("DUPLICATE", "duplicate of row 1")
    assert rows[5]["segments"] is None


def test_numbers_from_the_caller_are_suppressed() -> None:
    """A suppressed msisdn (as stored, '+' optional) marks its rows SUPPRESSED."""
    prepared = prepare("messy.csv", suppression={"+13055550108", "13055550101"})
    rows = by_row(prepared)
    assert rows[15]["state"] == "SUPPRESSED"
    assert rows[1]["state"] == rows[5]["state"] == "SUPPRESSED"  # every row of that number
    assert prepared.summary.suppressed == 3


def test_a_suppression_file_is_normalized_like_the_list() -> None:
    """optouts.csv writes '+1 305 555 0108' and '00 1 305 555 0102': both rows suppressed."""
    rows = by_row(prepare("messy.csv", suppression_file=FILES / "optouts.csv"))
    assert rows[15]["state"] == "SUPPRESSED"
    assert rows[2]["state"] == "SUPPRESSED"


def test_a_row_whose_text_is_blank_is_rejected() -> None:
    """Text '{1}' and no value in that column: REJECTED EMPTY_TEXT (nothing to send)."""
    rows = by_row(prepare("blank-lines.csv", "{1}"))
    assert (rows[3]["state"], rows[3]["reason"]) == ("REJECTED", "EMPTY_TEXT")
    assert rows[1]["state"] == "READY"


def test_parameters_are_trimmed() -> None:
    """' Ana ' renders as 'Ana'."""
    frame = pd.DataFrame({"A": ["13055550101"], "B": ["  Ana  "]}, dtype="string[pyarrow]")
    from jobs.recipients import build_frame
    from jobs.text import Template

    columns = locate_columns(frame, header=False)
    result = build_frame(frame, columns, Template.parse("Hi {0}!"), region="US")
    assert result["text"].tolist() == ["Hi Ana!"]


def test_summary_counts_encodings_and_parts_of_ready_rows_only() -> None:
    """Two UCS-2 texts of 2 parts would cost 4; rejected rows cost nothing."""
    prepared = prepare("utf16.csv", "Hola {0} " + "ç" * 70)
    summary = prepared.summary.as_dict()
    assert summary == {
        "rows": 2, "ready": 2, "rejected": 0, "rejected_by_reason": {}, "duplicates": 0,
        "suppressed": 0, "encodings": {"UCS-2": 2}, "segments": 4}


def test_a_list_with_nothing_to_send_fails_the_sendable_check() -> None:
    """All rows rejected: prepare reports them; check_sendable() refuses to send."""
    prepared = prepare("messy.xlsx", "Hi", phone_column="Nombre")
    with pytest.raises(RecipientFileError, match="no row can be sent: 15 NOT_A_NUMBER"):
        prepared.check_sendable()


def test_the_frame_has_the_documented_columns() -> None:
    """row, input, msisdn, state, reason, text, params, encoding, segments."""
    frame = prepare("messy.csv", "Hi {0} {1}").frame
    assert list(frame.columns) == ["row", "input", "msisdn", "state", "reason", "text",
                                   "params", "encoding", "segments"]
    assert frame["params"].iloc[0] == {"0": "Ana", "1": "0042"}


def test_a_name_list_without_phones_is_not_taken_for_a_header() -> None:
    """'Ana' over more names (no digits anywhere) is data: every row is counted."""
    frame = pd.DataFrame({"A": ["Ana", "Bruno"], "B": ["13055550101", "3055550102"]},
                         dtype="string[pyarrow]")
    assert locate_columns(frame).header is False


def test_an_unknown_region_is_one_clear_error() -> None:
    """Region 'XX' is refused before the file is read."""
    with pytest.raises(RecipientFileError, match="unknown region 'XX'"):
        prepare("messy.csv", region="XX")


def test_each_repeat_names_the_first_sendable_row_of_its_number() -> None:
    """Many numbers, many repeats, rejected rows between: the verdicts a row-by-row pass
    (first sendable row of a number wins) gives."""
    import random

    import numpy as np
    import pyarrow as pa

    from jobs.recipients import assign_states

    rng = random.Random(7)
    numbers = [None if rng.random() < 0.1 else str(13055550000 + rng.randrange(300))
               for _ in range(2_000)]  # fmt: skip
    msisdn = pa.array(numbers, pa.large_string())
    reason = pa.array([None if n else "INVALID_NUMBER" for n in numbers], pa.large_string())
    rows = np.arange(1, len(numbers) + 1)
    states, reasons = assign_states(rows, msisdn, reason)
    first: dict[str, int] = {}
    for row, number in zip(rows, numbers, strict=True):
        got = (STATES[states[row - 1]], reasons[row - 1].as_py())
        if number is None:
            assert got == ("REJECTED", "INVALID_NUMBER")
        elif number in first:
            assert got == ("DUPLICATE", f"duplicate of row {first[number]}")
        else:
            first[number] = int(row)
            assert got == ("READY", None)
