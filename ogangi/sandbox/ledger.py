"""Every message the sandbox accepted: the ground truth for "was anyone sent twice / left out".

Kept in memory as one batch per request: the parser's tuples for a general file, or the Arrow
columns of a uniform upload as they are (ids, numbers, texts and one sender), so recording a
10 000-message request costs no Python object per message. Reads turn the rows they return
into ``LedgerEntry`` objects. Optionally every message is also appended to a JSONL file so
another process can read it without the control API.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from ogangi.sandbox.columns import Column, strings

Source = Literal["file", "broadcast"]

#: (message id, to, from, text): what the ledger needs of one accepted message.
Accepted = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class AcceptedColumns:
    """Accepted messages of one request as columns: ids, numbers and texts, one sender."""

    ids: Column
    to: Column
    sender: str
    texts: Column

    def __post_init__(self) -> None:
        if not len(self.ids) == len(self.to) == len(self.texts):
            raise ValueError("accepted columns must have the same length")

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[Accepted]:
        return iter(self.rows(0, len(self)))

    def rows(self, start: int, stop: int) -> list[Accepted]:
        """Rows ``start`` to ``stop`` as tuples (the only place they become Python objects)."""
        count = max(0, stop - start)
        ids, to, texts = (
            c.slice(start, count).to_pylist() for c in (self.ids, self.to, self.texts)
        )
        return list(zip(ids, to, repeat(self.sender, len(ids)), texts, strict=True))


Rows = Sequence[Accepted] | AcceptedColumns


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    seq: int
    id: str
    to: str
    sender: str
    text: str
    source: Source
    broadcast_id: int | None
    request_id: str
    at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.id,
            "to": self.to,
            "from": self.sender,
            "text": self.text,
            "source": self.source,
            "broadcast_id": self.broadcast_id,
            "request_id": self.request_id,
            "at": _iso(self.at),
        }


@dataclass(frozen=True, slots=True)
class _Batch:
    source: Source
    broadcast_id: int | None
    request_id: str
    at: float
    rows: Rows

    def slice(self, start: int, stop: int) -> Sequence[Accepted]:
        if isinstance(self.rows, AcceptedColumns):
            return self.rows.rows(start, stop)
        return self.rows[start:stop]

    def destinations(self) -> Column:
        if isinstance(self.rows, AcceptedColumns):
            return self.rows.to
        return strings([to for _, to, _, _ in self.rows])


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


class Ledger:
    """Append-only record of accepted messages, in acceptance order.

    ``sync`` runs before every read: the sandbox uses it to bring broadcasts up to the clock, so
    messages "sent" by a running broadcast appear without anyone polling it.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.sync: Callable[[], None] = lambda: None
        self._batches: list[_Batch] = []
        self._starts: list[int] = []
        self._count = 0
        self._by_source: dict[str, int] = {"file": 0, "broadcast": 0}
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def record(
        self,
        source: Source,
        rows: Rows,
        *,
        request_id: str,
        at: float,
        broadcast_id: int | None = None,
    ) -> None:
        if not len(rows):
            return
        batch = _Batch(source, broadcast_id, request_id, at, rows)
        if self._file is not None:
            self._append_jsonl(batch, self._count)
        self._batches.append(batch)
        self._starts.append(self._count)
        self._count += len(rows)
        self._by_source[source] += len(rows)

    def _append_jsonl(self, batch: _Batch, first_seq: int) -> None:
        assert self._file is not None
        enc = encode_basestring_ascii
        tail = (
            f',"source":"{batch.source}",'
            f'"broadcast_id":{"null" if batch.broadcast_id is None else batch.broadcast_id},'
            f'"request_id":{enc(batch.request_id)},"at":"{_iso(batch.at)}"}}\n'
        )
        self._file.write(
            "".join(
                f'{{"seq":{seq},"id":"{mid}","to":{enc(to)},"from":{enc(sender)},'
                f'"text":{enc(text)}{tail}'
                for seq, (mid, to, sender, text) in enumerate(
                    batch.slice(0, len(batch.rows)), first_seq
                )
            )
        )
        self._file.flush()

    def __len__(self) -> int:
        self.sync()
        return self._count

    def entries(
        self, offset: int = 0, limit: int | None = None, source: Source | None = None
    ) -> list[LedgerEntry]:
        """Entries from position ``offset`` on (before filtering by ``source``), at most ``limit``."""
        self.sync()
        out: list[LedgerEntry] = []
        offset = max(0, offset)
        first = max(0, bisect.bisect_right(self._starts, offset) - 1)
        for batch, start in zip(self._batches[first:], self._starts[first:], strict=True):
            if source is not None and batch.source != source:
                continue
            room = None if limit is None else limit - len(out)
            if room is not None and room <= 0:
                break
            skip = max(0, offset - start)
            stop = len(batch.rows) if room is None else min(len(batch.rows), skip + room)
            out.extend(
                LedgerEntry(
                    seq,
                    mid,
                    to,
                    sender,
                    text,
                    batch.source,
                    batch.broadcast_id,
                    batch.request_id,
                    batch.at,
                )
                for seq, (mid, to, sender, text) in enumerate(batch.slice(skip, stop), start + skip)
            )
        return out

    def summary(self) -> dict[str, Any]:
        self.sync()
        distinct = repeated = 0
        if self._batches:
            destinations = pa.chunked_array(
                [batch.destinations() for batch in self._batches], pa.string()
            )
            counts = pc.value_counts(destinations).field("counts")
            distinct = len(counts)
            repeated = int(pc.sum(pc.greater(counts, 1)).as_py() or 0)
        return {
            "total": self._count,
            "by_source": dict(self._by_source),
            "requests": len({batch.request_id for batch in self._batches}),
            "distinct_to": distinct,
            "repeated_to": repeated,
            "extra_sends_to_repeated": self._count - distinct,
        }

    def clear(self) -> None:
        self._batches.clear()
        self._starts.clear()
        self._count = 0
        self._by_source = {"file": 0, "broadcast": 0}
        if self._file is not None:
            self._file.truncate(0)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
