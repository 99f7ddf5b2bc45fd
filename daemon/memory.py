"""Freed memory goes back to the system at once, so a long job's peak is one chunk's, not its history's.

glibc serves allocations above a threshold with a mapping of their own and
unmaps them on free, but it raises that threshold (up to 32 MB) each time
such a block is freed; after the first chunk, the analysis's 1-30 MB
arrays come from the heap instead, whose freed pages the process keeps.
Fixing the threshold at 1 MB cut the peak RSS of a 30-minute mix analysed
in one process from 1.20 GB to 0.87 GB.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 1 << 20


def return_freed_memory() -> bool:
    """Fix glibc's mmap threshold for this process; False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
