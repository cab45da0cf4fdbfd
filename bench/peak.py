"""A child process's own peak memory, told by the child itself.

``wait4``'s ``ru_maxrss`` is not the child's own figure: at ``exec`` Linux folds the old address
space's high mark into it, and ``subprocess`` starts children with ``vfork``, whose old address
space is the parent's. A bench parent that has just generated a 1M-row list would lend the
child its own ~700 MB. The child reports instead.
"""

from __future__ import annotations

import resource


def own_peak_mb() -> float:
    """This process's peak RSS (``VmHWM``, reset at exec) or that of a child it waited for
    (e.g. the forked spreadsheet parser), whichever is larger, in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        hwm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(hwm_kb, children_kb) / 1024
