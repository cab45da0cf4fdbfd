"""Send stages on data: chunk numbering, chunk files, reply matching, the final merge."""

from __future__ import annotations

import pandas as pd

from jobs import chunks
from ogangi.xml import MessageColumns, parse_message_columns


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
    assert chunks.chunk_msisdns(content).to_pylist() == ["13055550101", "13055550102"]
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


# --- provider replies -> outcomes, in Arrow -----------------------------------------------------


def reply_body(*messages: tuple[str, str, str, str]) -> bytes:
    """A sendSMSByFile reply as the sandbox writes it: (id, to, status, description) each."""
    listed = "".join(
        f"<message><id>{i}</id><carrier></carrier><from>55500</from><to>{to}</to>"
        f"<text>Hola, código {to}</text><status>{status}</status>"
        f"<statusDescription>{description}</statusDescription><encoding>UTF-8</encoding>"
        f"<date>2026-11-25T10:30:34.443+00:00</date><timezone>UTC</timezone></message>"
        for i, to, status, description in messages
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><response><input>sendSMSByFile</input>'
        "<status>OK</status><description>Completed</description><result>"
        f"<messages>{listed}</messages></result></response>"
    ).encode()


def chunk_of(*numbers: str) -> bytes:
    rows = pd.DataFrame({"msisdn": list(numbers), "text": ["Hola"] * len(numbers)})
    return chunks.chunk_file(rows, sender="55500")


def test_a_reply_in_file_order_becomes_outcomes_without_realigning() -> None:
    """The usual case: the reply lists the chunk's numbers in order; each row takes its own
    message's verdict, id and status."""
    content = chunk_of("13055550101", "13055550102", "13055550103")
    body = reply_body(
        ("-1", "13055550101", "SENT_TO_CARRIER", "Sent to Carrier"),
        ("-2", "13055550102", "BAD_TO", "Bad destination"),
        ("", "13055550103", "NO_CREDIT", ""),
    )
    _, reply = parse_message_columns(body)
    assert reply is not None
    out = chunks.outcomes_from_reply(chunks.chunk_msisdns(content), reply)
    assert out.columns.tolist() == list(chunks.OUTCOME_COLUMNS)
    assert out["msisdn"].tolist() == ["13055550101", "13055550102", "13055550103"]
    assert out["state"].tolist() == ["SENT", "FAILED", "FAILED"]
    assert out["reason"].tolist() == [pd.NA, "Bad destination", "NO_CREDIT"]
    assert out["message_id"].tolist() == ["-1", "-2", pd.NA]
    assert out["provider_status"].tolist() == ["SENT_TO_CARRIER", "BAD_TO", "NO_CREDIT"]
    assert all(dtype == "string" for dtype in out.dtypes)
    assert chunks.outcome_counts(out) == {"sent": 1, "failed": 2, "unknown": 0}


def test_a_reply_in_another_order_missing_a_number_is_matched_by_number() -> None:
    """Reordered reply: rows are matched by number, the first message of a repeated number
    wins, and a number the reply leaves out is UNKNOWN, never SENT."""
    numbers = chunks.chunk_msisdns(chunk_of("13055550101", "13055550102", "13055550103"))
    body = reply_body(
        ("-3", "13055550103", "SENT_TO_CARRIER", "Sent to Carrier"),
        ("-1", "13055550101", "BAD_TO", "Bad destination"),
        ("-9", "13055550101", "SENT_TO_CARRIER", "Sent to Carrier"),
    )
    _, reply = parse_message_columns(body)
    assert reply is not None
    out = chunks.outcomes_from_reply(numbers, reply)
    assert out["msisdn"].tolist() == ["13055550101", "13055550102", "13055550103"]
    assert out["state"].tolist() == ["FAILED", "UNKNOWN", "SENT"]
    assert out["reason"].tolist() == [
        "Bad destination", "the provider's reply does not mention this number", pd.NA,
    ]  # fmt: skip
    assert out["message_id"].tolist() == ["-1", pd.NA, "-3"]
    assert out["provider_status"].tolist() == ["BAD_TO", pd.NA, "SENT_TO_CARRIER"]


def test_outcomes_take_numbers_as_a_list_or_arrow_alike() -> None:
    """``chunk_msisdns`` gives Arrow; a plain list of numbers gives the same outcomes."""
    content = chunk_of("13055550101", "13055550102")
    body = reply_body(("-1", "13055550101", "SENT_TO_CARRIER", ""), ("-2", "13055550102", "X", ""))
    _, reply = parse_message_columns(body)
    assert reply is not None
    from_arrow = chunks.outcomes_from_reply(chunks.chunk_msisdns(content), reply)
    from_list = chunks.outcomes_from_reply(["13055550101", "13055550102"], reply)
    pd.testing.assert_frame_equal(from_arrow, from_list)
    uniform = chunks.uniform_outcomes(chunks.chunk_msisdns(content), chunks.UNKNOWN, "why")
    pd.testing.assert_frame_equal(
        uniform, chunks.uniform_outcomes(["13055550101", "13055550102"], chunks.UNKNOWN, "why")
    )
    assert uniform["reason"].tolist() == ["why", "why"]
    assert uniform["message_id"].isna().all() and len(chunks.uniform_outcomes([], "", "")) == 0


def test_an_outcome_file_reads_back_as_written() -> None:
    """The outcome parquet round-trips: same columns, values, nulls and dtypes."""
    numbers = chunks.chunk_msisdns(chunk_of("13055550101", "13055550102"))
    _, reply = parse_message_columns(reply_body(("-1", "13055550102", "BAD_TO", "Bad")))
    assert reply is not None
    out = chunks.outcomes_from_reply(numbers, reply)
    pd.testing.assert_frame_equal(chunks.from_parquet(chunks.to_parquet(out)), out)
