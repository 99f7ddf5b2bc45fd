"""Deciding when a file is complete: unchanged size and mtime for settle_s, and nobody writing to it.

A download or a slow copy grows in steps with pauses between; a file is only
handed on once it has stopped changing for the settle time and no process
(that we can see) still holds it open for writing.
"""

from __future__ import annotations

import os
from stat import S_ISREG as stat_is_regular
from dataclasses import dataclass
from pathlib import Path

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR


@dataclass
class _Seen:
    size: int
    mtime: float
    since: float


@dataclass(frozen=True)
class StableFile:
    path: str
    size: int
    mtime: float


class StabilityTracker:
    """Call `observe` for every event or scanned path, then `due` each tick; times are time.monotonic() seconds."""

    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s
        self._seen: dict[str, _Seen] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def observe(self, path: str, monotonic_s: float) -> None:
        stat = _stat(path)
        if stat is None:
            self._seen.pop(path, None)
            return
        seen = self._seen.get(path)
        if seen is None or (seen.size, seen.mtime) != stat[:2]:
            self._seen[path] = _Seen(stat[0], stat[1], monotonic_s)

    def due(self, monotonic_s: float) -> list[StableFile]:
        """Files unchanged for settle_s and not open for writing; they leave the tracker."""
        settled = []
        for path, seen in list(self._seen.items()):
            if monotonic_s - seen.since < self.settle_s:
                continue
            stat = _stat(path)
            if stat is None:
                del self._seen[path]
            elif stat[:2] != (seen.size, seen.mtime):
                self._seen[path] = _Seen(stat[0], stat[1], monotonic_s)
            else:
                settled.append((path, seen, stat[2]))
        if not settled:
            return []
        writing = files_open_for_writing()
        ready = []
        for path, seen, identity in settled:
            if identity not in writing:
                del self._seen[path]
                ready.append(StableFile(path, seen.size, seen.mtime))
        return ready

    def next_deadline(self) -> float | None:
        """Monotonic time at which the oldest tracked file may be due, so the loop sleeps until then."""
        if not self._seen:
            return None
        return min(seen.since for seen in self._seen.values()) + self.settle_s


def _stat(path: str) -> tuple[int, float, tuple[int, int]] | None:
    """Size, mtime and identity of a regular file; None for anything else, so a name swapped for a FIFO or a
    device while it settles is dropped rather than queued."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat_is_regular(st.st_mode):
        return None
    return st.st_size, st.st_mtime, (st.st_dev, st.st_ino)


def files_open_for_writing() -> set[tuple[int, int]]:
    """(device, inode) of every file a process we may inspect holds open for writing (Linux /proc).

    One pass over /proc per tick, however many files are waiting, so a burst
    of thousands of arrivals costs one scan, not thousands.
    """
    found: set[tuple[int, int]] = set()
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            fds = list((pid_dir / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(fd)
                if not stat_is_regular(st.st_mode):
                    continue
                flags = next(line for line in (pid_dir / "fdinfo" / fd.name).read_text().splitlines()
                             if line.startswith("flags:"))
            except (OSError, StopIteration):
                continue
            if int(flags.split()[1], 8) & WRITE_FLAGS:
                found.add((st.st_dev, st.st_ino))
    return found
