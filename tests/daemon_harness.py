"""Runs the real daemon as a subprocess against a temp inbox and database, for the reliability tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

BEATWATCH = str(Path(sys.executable).with_name("beatwatch"))


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _cmdline(process: psutil.Process) -> list[str]:
    """A child that exits between listing and reading (an idle worker leaving, a reaped helper) has none."""
    try:
        return process.cmdline()
    except psutil.Error:
        return []


class Daemon:
    """`beatwatch run` with a config of its own, a notify socket the test owns, and DB helpers."""

    def __init__(self, root: Path, *, config: str = "", env: dict[str, str] | None = None) -> None:
        self.root = root
        self.inbox = root / "inbox"
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.db_path = root / "beatwatch.db"
        self.config = root / "beatwatch.toml"
        # The machine's own load (other tests, other builds) must not pause these tests: throttling has its own.
        self.config.write_text("[watch]\nsettle_s = 0.5\n[workers]\ncount = 2\n"
                               "[resources]\nmax_cpu_percent = 100\nmin_available_mb = 0\n" + config)
        self.notify_path = root / f"notify-{id(self)}.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.notify.settimeout(0.2)
        self.messages: list[str] = []
        self.env = {**os.environ, "NOTIFY_SOCKET": str(self.notify_path), "WATCHDOG_USEC": "2000000", **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Daemon":
        self.log = open(self.root / "daemon.log", "ab")
        self.proc = subprocess.Popen([BEATWATCH, "run", "--config", str(self.config)], cwd=self.root,
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_message("READY=1", 60)
        wait_for(lambda: len(self.worker_pids()) >= 1 and self.workers_ready(), 90, "workers to load their models")
        return self

    def recv_messages(self) -> list[str]:
        try:
            while True:
                self.messages.append(self.notify.recv(4096).decode())
        except (TimeoutError, BlockingIOError):
            pass
        return self.messages

    def wait_message(self, field: str, timeout: float) -> None:
        def seen() -> bool:
            return any(field in message.split("\n") for message in self.recv_messages())
        wait_for(seen, timeout, f"{field} on the notify socket")

    def worker_pids(self) -> list[int]:
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.Error:
            return []
        return [c.pid for c in children if "spawn_main" in " ".join(_cmdline(c))]

    def workers_ready(self) -> bool:
        rows = self.query("SELECT data FROM host_status")
        workers = json.loads(rows[0][0])["workers"] if rows else []
        return bool(workers) and all(w["ready"] for w in workers)

    def query(self, sql: str, *args) -> list[tuple]:
        if not self.db_path.exists():
            return []
        with sqlite3.connect(self.db_path, timeout=10) as db:
            try:
                return db.execute(sql, args).fetchall()
            except sqlite3.OperationalError:
                return []

    def states(self) -> dict[str, int]:
        return dict(self.query("SELECT state, COUNT(*) FROM jobs GROUP BY state"))

    def drained(self, expected_jobs: int) -> bool:
        states = self.states()
        return sum(states.values()) >= expected_jobs and set(states) <= {"done", "failed"}

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            for pid in [*self.worker_pids(), self.proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait(timeout=10)
        self.notify.close()
