"""Send stages on data: chunk numbering, chunk files, reply matching, the final merge."""

from __future__ import annotations

import pandas as pd

from jobs import chunks
from ogangi.xml import MessageColumns


def prepared(states: list[str], msisdns: list[str | None]) -> pd.DataFrame:
    n = len(states)
    return pd.DataFrame(
        {
            "row": range(1, n + 1),
            "input": [m or "" for m in msisdns],
            "msisdn": pd.array(msisdns, dtype="string[pyarrow]"),
            "state": pd.Categorical(states),
            "reason": pd.array([None if s == "READY" else "X" for s in states], dtype="string"),
            "text": ["Hi"] * n,
            "segments": [1] * n,
        }
    )


def test_ready_rows_are_numbered_into_chunks_in_file_order() -> None:
    """Only READY rows get a chunk, counted from 1, chunk_size rows each."""
    frame = prepared(["READY", "REJECTED", "READY", "READY", "DUPLICATE", "READY"],
                     ["1", None, "2", "3", "1", "4"])  # fmt: skip
    out = chunks.assign_chunks(frame, chunk_size=2)
    assert out["chunk"].tolist() == [1, pd.NA, 1, 2, pd.NA, 2]
    assert chunks.chunk_count(out) == 2


def test_chunk_file_round_trips_its_numbers_and_flattens_line_breaks() -> None:
    """The upload lists the numbers in order; a multi-line text travels on one line."""
    rows = pd.DataFrame({"msisdn": ["13055550101", "13055550102"], "text": ["a\nb", "c"]})
    content = chunks.chunk_file(rows, sender="55500")
    assert chunks.chunk_msisdns(content) == ["13055550101", "13055550102"]
    assert content.split(b"\r\n")[0].endswith(b'"a b"')


def test_reply_statuses_become_sent_failed_or_unknown() -> None:
    """Accepted -> SENT, BAD_TO -> FAILED with the description, missing -> UNKNOWN."""
    reply = MessageColumns(
        id=["-1", "-2"],
        to=["13055550102", "13055550101"],
        status=["SENT_TO_CARRIER", "BAD_TO"],
        status_description=["Sent to Carrier", "Bad destination"],
    )
    out = chunks.outcomes_from_reply(["13055550101", "13055550102", "13055550103"], reply)
    assert out["state"].tolist() == ["FAILED", "SENT", "UNKNOWN"]
    assert out["reason"].tolist()[0] == "Bad destination"
    assert out["message_id"].tolist()[:2] == ["-2", "-1"]


def test_merge_gives_every_row_a_final_state() -> None:
    """READY rows take their outcome; a READY row without one is UNKNOWN; others keep theirs."""
    frame = chunks.assign_chunks(
        prepared(["READY", "REJECTED", "READY"], ["1", None, "2"]), chunk_size=10
    )
    outcome = chunks.uniform_outcomes(["1"], chunks.SENT, "")
    results = chunks.merge_outcomes(frame, outcome)
    assert results["state"].tolist() == ["SENT", "REJECTED", "UNKNOWN"]
    assert chunks.final_counts(results)["unknown"] == 1


def test_rows_of_a_job_that_failed_before_sending_are_failed_with_the_reason() -> None:
    """A job that cannot send still reports each row: READY ones become FAILED."""
    frame = prepared(["READY", "REJECTED"], ["1", None])
    out = chunks.mark_unsent(frame, "not sent: no shortcode")
    assert out["state"].tolist() == ["FAILED", "REJECTED"]
    assert out["reason"].tolist() == ["not sent: no shortcode", "X"]


def test_chunk_rows_gives_each_chunk_its_rows_in_order() -> None:
    """Chunk 1 then 2, each with exactly its READY rows, skipping the others."""
    frame = chunks.assign_chunks(
        prepared(["READY", "REJECTED", "READY", "READY", "READY"], ["1", None, "2", "3", "4"]),
        chunk_size=2,
    )
    got = [(n, rows["msisdn"].tolist()) for n, rows in chunks.chunk_rows(frame)]
    assert got == [(1, ["1", "2"]), (2, ["3", "4"])]
