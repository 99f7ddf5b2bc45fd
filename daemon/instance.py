"""One daemon per database: a second `beatwatch run` on the same SQLite file is refused at start-up.

Two supervisors on one queue would each requeue the other's running jobs as
left over by a crash and throw away the results that come back. Until
several daemons are a supported setup, the first holds an exclusive flock
on `<database>.lock` for as long as it runs; the kernel lets go when the
process ends, however it ends, so a crash never leaves a stale lock. The
file holds the holder's host and pid, for the refusal's message.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from sqlalchemy.engine import make_url


class AlreadyRunning(Exception):
    """Another daemon holds the database; the message names its host and pid."""


class InstanceLock:
    def __init__(self, store_url: str) -> None:
        self.database = _database_path(store_url)
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.database is None:
            return
        self.database.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.database}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 256, 0).decode(errors="replace").strip() or "unknown host and pid"
            os.close(fd)
            raise AlreadyRunning(f"another beatwatch daemon ({holder}) already runs on {self.database}; "
                                 "one daemon per database") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"host {socket.gethostname()}, pid {os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _database_path(store_url: str) -> Path | None:
    """The SQLite file; None for an in-memory database or a database server, which this lock cannot cover."""
    url = make_url(store_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" or url.query.get("uri"):
        return None
    return Path(url.database)
