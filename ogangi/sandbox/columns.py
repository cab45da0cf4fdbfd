"""Arrow string columns: the sandbox's hot path keeps a 10 000-row upload as a few of these.

A ``pa.StringArray`` holds its values back to back in one buffer, so a column built by joining
fragments (``pc.binary_join_element_wise``) *is* the concatenated text: ``joined_bytes`` hands
that buffer over without making a Python object per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Column: TypeAlias = pa.StringArray


def strings(values: Sequence[str] | pa.Array | pa.ChunkedArray) -> Column:
    """``values`` as one contiguous string array (no copy when it already is one)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if not isinstance(values, pa.Array):
        values = pa.array(values, pa.string())
    if values.type != pa.string():
        values = values.cast(pa.string())
    return values


def joined_bytes(column: Column) -> pa.Buffer:
    """The column's values concatenated, without a copy; nulls contribute nothing."""
    if len(column) == 0:
        return pa.py_buffer(b"")
    offsets = np.frombuffer(
        column.buffers()[1], dtype=np.int32, count=len(column) + 1, offset=4 * column.offset
    )
    data = column.buffers()[2]
    first, last = int(offsets[0]), int(offsets[-1])
    if data is None or first == last:
        return pa.py_buffer(b"")
    return data.slice(first, last - first)


def constant(column: Column) -> str | None:
    """The column's one value when every row holds the same one (no nulls), else None."""
    if len(column) == 0 or column.null_count:
        return None
    first = column[0].as_py()
    if len(column) > 1 and not pc.all(pc.equal(column, first)).as_py():
        return None
    return str(first)


def decimal_range(column: Column, shortest: int, longest: int) -> bool:
    """Every value is ASCII digits only, ``shortest`` to ``longest`` of them."""
    if len(column) == 0 or column.null_count:
        return False
    if not pc.all(pc.ascii_is_decimal(column)).as_py():
        return False
    lengths = pc.min_max(pc.binary_length(column)).as_py()
    return bool(shortest <= lengths["min"] and lengths["max"] <= longest)


def int_strings(start: int, count: int) -> Column:
    """``str(start)``, ``str(start + 1)``, ... as a column (signed 64-bit values)."""
    return pa.array(np.arange(start, start + count, dtype=np.int64)).cast(pa.string())
