"""Size limits for recipient files: what a hostile or broken file may cost us, at most.

One frozen record, passed down from the caller (CLI, job payload) to the readers. The defaults
fit a 2,000,000-row list with a few parameter columns in well under a gigabyte of memory.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    #: Size of the file as stored (bytes on disk).
    max_bytes: int = 256 * MiB
    #: Sum of the uncompressed sizes of a zip container's members (xlsx, ods): the zip-bomb guard.
    max_uncompressed_bytes: int = 1024 * MiB
    #: Uncompressed / compressed ratio a big member may have. Real sheets stay under ~30;
    #: a deflate bomb is near 1000.
    max_compression_ratio: float = 200.0
    #: Members smaller than this are not held to the ratio (tiny XML parts compress very well).
    ratio_floor_bytes: int = 4 * MiB
    #: Data rows (rows of the sheet or records of the CSV, header included).
    max_rows: int = 2_000_000
    #: Columns: the phone column plus parameter columns.
    max_columns: int = 100
    #: Characters in one cell.
    max_cell_chars: int = 2_000
    #: Parse spreadsheets in a forked child (Linux, macOS), so a hostile file costs an error,
    #: never the process. Off only for debugging.
    isolate_parser: bool = True
    #: Address space the spreadsheet parser may add (a 1M x 3 sheet needs ~350 MB).
    max_parse_memory: int = 2048 * MiB
    #: Wall time the spreadsheet parser may take.
    max_parse_seconds: float = 300.0

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_uncompressed_bytes", "max_rows", "max_columns",
                     "max_cell_chars", "max_parse_memory", "max_parse_seconds"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be at least 1")


DEFAULT_LIMITS = Limits()
