"""Releasing free memory between chunks really hands the freed arrays back to the system."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys, numpy as np
from beatwatch.daemon.memory import release_free_memory
def rss_mb():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
big = np.ones(1 << 21)  # a 16 MB block: freeing it raises glibc's mmap threshold, as a chunk's arrays do
del big
chunk = [np.ones(1 << 20) for _ in range(40)]  # 8 MB arrays from the heap, 320 MB
keeper = np.ones(1 << 15)  # still alive, above them in the heap: the heap cannot shrink past it
del chunk
if sys.argv[1] == "release":
    assert release_free_memory()
print(rss_mb())
"""


def _rss_after(policy: str) -> float:
    out = subprocess.run([sys.executable, "-c", SCRIPT, policy], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def test_released_heap_pages_leave_the_process_and_kept_ones_do_not():
    kept, released = _rss_after("keep"), _rss_after("release")
    assert kept - released > 200, (kept, released)
