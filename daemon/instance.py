"""One daemon per database: a second `beatwatch run` on the same SQLite file is refused at start-up; on a
PostgreSQL database several hosts share, one daemon per host name (`check_host_name_free`).

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


def this_machine() -> str:
    """This boot of this machine: a host name set in config may be shared by mistake, a boot id is not."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "unknown boot"
    return f"{socket.gethostname()} {boot}"


def check_host_name_free(reports: list[dict], host: str, *, now: float, fresh_s: float) -> None:
    """Several hosts share a PostgreSQL database, one daemon per host name: a restart on a host takes back every
    running job whose owner starts with its name, so two live daemons under one name would each throw away the
    other's work. `reports` are the hosts' status rows (store/daemon_status.py), `now` on their clock.

    A report of `host` that is recent and not "stopped" is a live daemon unless it is this machine's own
    predecessor whose pid is gone (killed, crashed): that one is what the restart is for.
    """
    for report in reports:
        if report.get("host") != host or report.get("state") == "stopped" or now - report["updated_at"] >= fresh_s:
            continue
        if report.get("machine") == this_machine() and not _pid_alive(report["pid"]):
            continue
        age = now - report["updated_at"]
        raise AlreadyRunning(f"another beatwatch daemon (pid {report['pid']}, reported {age:.0f} s ago) already "
                             f"runs as store.host_name = {host!r} on this database; give each host its own name")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
