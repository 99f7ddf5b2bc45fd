"""How many CPUs this process may really use: affinity mask and cgroup CPU quota, not os.cpu_count().

Under systemd `CPUQuota=` or a container limit the quota sits on this
process's own cgroup or one of its parents, so every level up to the root
is read and the tightest one wins.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def usable_cpus(cgroup_root: Path = Path("/sys/fs/cgroup"), self_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpu_limit(cgroup_root, self_cgroup)
    if quota is not None:
        count = min(count, max(1, math.floor(quota)))
    return max(count, 1)


def cgroup_cpu_limit(root: Path, self_cgroup: Path) -> float | None:
    """CPUs allowed by the tightest cgroup quota (v2 cpu.max, else v1 cfs); None when unlimited."""
    limits = [limit for folder in _cgroup_folders(root, self_cgroup) if (limit := _read_limit(folder)) is not None]
    return min(limits) if limits else None


def _cgroup_folders(root: Path, self_cgroup: Path) -> list[Path]:
    relative = ""
    try:
        for line in self_cgroup.read_text().splitlines():
            hierarchy, _controllers, path = line.split(":", 2)
            if hierarchy == "0":
                relative = path.lstrip("/")
    except (OSError, ValueError):
        pass
    folder = root / relative
    folders = [folder]
    while folder != root and root in folder.parents:
        folder = folder.parent
        folders.append(folder)
    return folders + [root / "cpu"]


def _read_limit(folder: Path) -> float | None:
    try:
        if (folder / "cpu.max").exists():
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        if (folder / "cpu.cfs_quota_us").exists():
            quota_us = int((folder / "cpu.cfs_quota_us").read_text())
            return None if quota_us <= 0 else quota_us / int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None
