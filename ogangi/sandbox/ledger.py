"""Every message the sandbox accepted: the ground truth for "was anyone sent twice / left out".

Kept in memory as one batch per request (rows stay the tuples the parser produced), and
optionally appended to a JSONL file so another process can read it without the control API.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import IO, Any, Literal

Source = Literal["file", "broadcast"]

#: (message id, to, from, text): what the ledger needs of one accepted message.
Accepted = tuple[str, str, str, str]


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
    rows: Sequence[Accepted]


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
        self._by_source: Counter[str] = Counter()
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def record(
        self,
        source: Source,
        rows: Sequence[Accepted],
        *,
        request_id: str,
        at: float,
        broadcast_id: int | None = None,
    ) -> None:
        if not rows:
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
                for seq, (mid, to, sender, text) in enumerate(batch.rows, first_seq)
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
        first = max(0, bisect.bisect_right(self._starts, offset) - 1)
        for batch, start in zip(self._batches[first:], self._starts[first:], strict=True):
            if source is not None and batch.source != source:
                continue
            for seq, (mid, to, sender, text) in enumerate(batch.rows, start):
                if seq < offset:
                    continue
                if limit is not None and len(out) >= limit:
                    return out
                out.append(
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
                )
        return out

    def summary(self) -> dict[str, Any]:
        self.sync()
        destinations = Counter(to for batch in self._batches for _, to, _, _ in batch.rows)
        return {
            "total": self._count,
            "by_source": {
                "file": self._by_source["file"],
                "broadcast": self._by_source["broadcast"],
            },
            "requests": len({batch.request_id for batch in self._batches}),
            "distinct_to": len(destinations),
            "repeated_to": sum(1 for n in destinations.values() if n > 1),
            "extra_sends_to_repeated": self._count - len(destinations),
        }

    def clear(self) -> None:
        self._batches.clear()
        self._starts.clear()
        self._count = 0
        self._by_source.clear()
        if self._file is not None:
            self._file.truncate(0)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
