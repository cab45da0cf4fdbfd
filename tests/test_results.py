"""The results CSV: fixed columns, every row, opens in Excel, no formula injection."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from jobs.recipients import prepare_recipients
from jobs.results import RESULT_COLUMNS, neutralize, read_results, write_results

FILES = Path(__file__).resolve().parent / "fixtures" / "recipients"


def test_results_have_exactly_the_documented_columns(tmp_path: Path) -> None:
    """Header: row,input,msisdn,state,reason,message_id,provider_status,segments,chunk."""
    prepared = prepare_recipients(FILES / "messy.csv", "Hi {0}", region="US")
    write_results(prepared.frame, tmp_path / "r.csv")
    first_line = (tmp_path / "r.csv").read_bytes().split(b"\r\n")[0]
    assert first_line == b"\xef\xbb\xbf" + ",".join(RESULT_COLUMNS).encode()


def test_every_row_is_written_with_its_verdict(tmp_path: Path) -> None:
    """16 data rows in, 16 lines out; a dry run leaves message_id and chunk empty."""
    prepared = prepare_recipients(FILES / "messy.csv", "Hi {0}", region="US")
    assert write_results(prepared.frame, tmp_path / "r.csv") == 16
    back = read_results(tmp_path / "r.csv")
    assert back["row"].tolist() == list(range(1, 17))
    assert back.loc[4, "reason"] == "duplicate of row 1"
    assert back["message_id"].isna().all() and back["chunk"].isna().all()
    assert back.loc[0, "segments"] == 1 and pd.isna(back.loc[4, "segments"])


def test_formula_like_input_is_neutralized_with_a_quote(tmp_path: Path) -> None:
    """'+1 305-555-0101' is written as "'+1 305-555-0101" so Excel shows text, not a sum."""
    prepared = prepare_recipients(FILES / "injection.csv", "Hi {0}", region="US")
    write_results(prepared.frame, tmp_path / "r.csv")
    raw = (tmp_path / "r.csv").read_text(encoding="utf-8-sig")
    assert "\"'+1 305-555-0101\"" in raw
    restored = read_results(tmp_path / "r.csv", restore=True)
    assert restored.loc[0, "input"] == "+1 305-555-0101"


def test_neutralize_guards_each_dangerous_first_character() -> None:
    """= + - @ tab CR get a leading quote; plain text and plain integers do not."""
    values = pa.array(["=1+2", "+1 305", "-2+3", "@SUM(A1)", "\tx", "\rx", "Ana",
                       "-6710228708174720670", "+13055550101", None], pa.large_string())
    assert neutralize(values).to_pylist() == [
        "'=1+2", "'+1 305", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx", "Ana",
        "-6710228708174720670", "+13055550101", None]


def test_provider_columns_are_written_when_present(tmp_path: Path) -> None:
    """A finished job's message ids, statuses and chunks appear as given."""
    frame = pd.DataFrame({
        "row": [1], "input": ["13055550101"], "msisdn": ["13055550101"], "state": ["SENT"],
        "reason": [None], "message_id": ["-6710228708174720670"],
        "provider_status": ["SENT_TO_CARRIER"], "segments": [1], "chunk": [0]})
    write_results(frame, tmp_path / "r.csv")
    lines = (tmp_path / "r.csv").read_text(encoding="utf-8-sig").splitlines()
    assert lines[1] == ('1,"13055550101","13055550101","SENT",,"-6710228708174720670",'
                        '"SENT_TO_CARRIER",1,0')


def test_writing_a_path_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The file appears whole (written aside, then renamed)."""
    prepared = prepare_recipients(FILES / "numbers.txt", "Hi", region="US")
    write_results(prepared.frame, tmp_path / "out" / "r.csv")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["r.csv"]
