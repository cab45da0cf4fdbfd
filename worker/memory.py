"""How a worker's process uses memory: Arrow on glibc's allocator, tuned so that what a job
frees goes back to the system, and a trim between the slices of a big list.

A worker is measured by its peak RSS (``make bench``, case d: at most 400 MB while a 1M-row list
is sent). The pages that count are mostly freed ones the allocator keeps: a list's slices are
described, cut and merged one after another, and without a trim each leaves pages behind.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache

import pyarrow as pa

#: mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def use_lean_memory_pool() -> None:
    """Arrow buffers from glibc's allocator, which gives freed pages back, rather than pyarrow's
    default mimalloc, which keeps them for reuse: a 1M-row list then peaks at ~80 MB less in a
    worker, for no measurable loss of speed here (``make bench``, case d). An explicit
    ``ARROW_DEFAULT_MEMORY_POOL`` wins."""
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        pa.set_memory_pool(pa.system_memory_pool())
    _tune_glibc_malloc()


def give_back_freed_memory() -> None:
    """Hand the allocator's free pages back to the system (glibc ``malloc_trim``; elsewhere
    nothing). Called between the slices of a big list: ~1 ms each, and the next slice starts
    from what is in use, not from the last one's high mark (case d: ~20-60 MB lower)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _tune_glibc_malloc() -> None:
    """Big blocks straight from and back to the kernel, and two arenas, not one per thread.

    glibc raises its mmap threshold each time a big block is freed (up to 32 MB), after which
    Arrow's multi-megabyte buffers come from the heap and stay in the process when freed; each
    thread that allocates (``asyncio.to_thread``) gets an arena that keeps its own high mark.
    A fixed 1 MB threshold and two arenas keep a worker's memory near what it uses. (A lower
    threshold, 256 KB, kept it as low without trims, but cost ~20% more CPU in page faults.)
    """
    libc = _glibc()
    if libc is None:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    libc.mallopt(_M_TRIM_THRESHOLD, 4 << 20)
    libc.mallopt(_M_ARENA_MAX, 2)


@cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None
    return libc if hasattr(libc, "malloc_trim") else None
