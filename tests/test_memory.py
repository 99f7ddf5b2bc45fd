"""The malloc policy the workers set really hands freed arrays back to the system."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys, numpy as np
from daemon.memory import return_freed_memory
if sys.argv[1] == "fixed":
    assert return_freed_memory()
def rss_mb():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
for _ in range(3):  # a few chunks' worth of 8 MB arrays, freed after each chunk
    chunk = [np.ones(1 << 20) for _ in range(40)]
    del chunk
    big = np.ones(1 << 23)  # a 64 MB block: freeing it raises glibc's default threshold
    del big
small = [np.ones(1 << 17) for _ in range(200)]  # 1 MB arrays, 200 MB
keeper = np.ones(1 << 15)  # still alive, above them in the heap: the heap cannot shrink past it
del small
print(rss_mb())
"""


def _rss_after(policy: str) -> float:
    out = subprocess.run([sys.executable, "-c", SCRIPT, policy], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def test_fixed_threshold_returns_freed_arrays_that_the_default_policy_keeps():
    kept, returned = _rss_after("default"), _rss_after("fixed")
    assert kept - returned > 100, (kept, returned)
