"""A private PostgreSQL cluster for the tests: initdb into a temp folder, a Unix socket in that folder, no TCP.

Nothing needs to run beforehand: `make install` puts Debian's `postgresql` server package on the machine, and
the cluster lives and dies with the test session. initdb and the server refuse to run as root, so as root
they run as `nobody` (runuser), which then owns the folder; any other user runs them as itself. Each test gets
a database of its own, created from template0 in a fraction of a second.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy.engine import URL

SUPERUSER = "beatwatch"


def server_bindir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, else Debian's versioned folder (newest first); None if absent."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]), reverse=True)
    return Path(folders[0]).parent if folders else None


class Cluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        # Not under pytest's tmp_path: as root its folders are closed to `nobody`; and a socket path must be short.
        self.root = Path(tempfile.mkdtemp(prefix="beatwatch-pg-"))
        self.data = self.root / "data"
        self._as = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        self._names = itertools.count(1)

    def start(self) -> "Cluster":
        if self._as:
            self.root.chmod(0o755)
            shutil.chown(self.root, "nobody")
        self._run("initdb", "-D", self.data, "-U", SUPERUSER, "--auth=trust", "--no-sync", "-E", "UTF8",
                  "--locale=C")
        options = (f"-c listen_addresses='' -c unix_socket_directories='{self.root}' -c fsync=off"
                   " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", self.data, "-l", self.root / "server.log", "-o", options, "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return URL.create("postgresql+psycopg", username=SUPERUSER, database=database,
                          query={"host": str(self.root)}).render_as_string(hide_password=False)

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(host=str(self.root), user=SUPERUSER, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def _run(self, program: str, *args: object) -> None:
        command = [*self._as, str(self.bindir / program), *map(str, args)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{tail}")
