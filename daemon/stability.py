"""Deciding when a file is complete: unchanged size and mtime for settle_s, and nobody writing to it.

A download or a slow copy grows in steps with pauses between; a file is only
handed on once it has stopped changing for the settle time and no process
still holds it open for writing. Who holds a file open is read from
/proc/<pid>/fd, which shows another user's processes only to a process
with CAP_SYS_PTRACE; without it (the systemd unit's `User=beatwatch`,
`ProtectProc=invisible`) a Samba, scp or admin's writer that pauses would
look finished. Then the writer's own word counts instead: the close after
writing (inotify IN_CLOSE_WRITE) or the rename into place, and a file with
neither (found by a scan, or under watch.polling) must stay unchanged for
the longer `unclosed_settle_s`.
"""

from __future__ import annotations

import os
from stat import S_ISREG as stat_is_regular
from dataclasses import dataclass
from pathlib import Path

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR


CAP_SYS_PTRACE = 19


@dataclass
class _Seen:
    size: int
    mtime: float
    since: float
    closed: bool = False  # its writer closed it (or renamed it into place) since it last changed


@dataclass(frozen=True)
class StableFile:
    path: str
    size: int
    mtime: float


class StabilityTracker:
    """Call `observe` for every event or scanned path, then `due` each tick; times are time.monotonic() seconds."""

    def __init__(self, settle_s: float, *, writers_visible: bool = True, unclosed_settle_s: float = 0.0) -> None:
        self.settle_s = settle_s
        self.writers_visible = writers_visible
        self.unclosed_settle_s = max(unclosed_settle_s, settle_s)
        self._seen: dict[str, _Seen] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def observe(self, path: str, monotonic_s: float, *, closed: bool = False) -> None:
        """closed: the event was the writer closing the file after writing, or renaming it into place."""
        stat = _stat(path)
        if stat is None:
            self._seen.pop(path, None)
            return
        seen = self._seen.get(path)
        if seen is None or (seen.size, seen.mtime) != stat[:2]:
            self._seen[path] = _Seen(stat[0], stat[1], monotonic_s, closed)
        elif closed:
            seen.closed = True

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
        writing = files_open_for_writing() if self.writers_visible else set()
        ready = []
        for path, seen, identity in settled:
            if identity in writing or not (self.writers_visible or seen.closed or
                                           monotonic_s - seen.since >= self.unclosed_settle_s):
                continue
            del self._seen[path]
            ready.append(StableFile(path, seen.size, seen.mtime))
        return ready

    def next_deadline(self) -> float | None:
        """Monotonic time at which the oldest tracked file may be due, so the loop sleeps until then."""
        if not self._seen:
            return None
        return min(seen.since + (self.settle_s if self.writers_visible or seen.closed else self.unclosed_settle_s)
                   for seen in self._seen.values())


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


def other_writers_visible() -> bool:
    """Whether /proc shows us every process's open files: only with CAP_SYS_PTRACE (root normally has it; a
    service user, or root with an empty CapabilityBoundingSet, does not) do other users' writers show."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    effective = next((line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), "0")
    return bool(int(effective, 16) >> CAP_SYS_PTRACE & 1)


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
