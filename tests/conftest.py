"""Shared fixtures: one Analyzer per test session, a folder for the audio the tests write, a fresh database
(SQLite, or each backend in turn), a private PostgreSQL cluster, and real daemons started on demand."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from beatwatch.store.db import open_database, sqlite_url
from tests.daemon_harness import Daemon
from tests.postgres import Cluster, server_bindir

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session", autouse=True)
def own_home(tmp_path_factory):
    """A command run without a config reads and writes the user's XDG folders: in tests, folders of their own,
    so a user's real database or config is never touched and never changes a result."""
    home = tmp_path_factory.mktemp("home")
    saved = {name: os.environ.get(name) for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME")}
    os.environ["XDG_CONFIG_HOME"], os.environ["XDG_DATA_HOME"] = str(home / "config"), str(home / "data")
    yield home
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def analyzer():
    from beatwatch.analysis.nets.networks import Networks
    from beatwatch.analysis.pipeline import Analyzer
    return Analyzer(Networks())


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture
def engine(tmp_path):
    """A migrated SQLite file of the test's own, closed after it."""
    engine = open_database(sqlite_url(tmp_path / "beatwatch.db"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL cluster for the session (tests/postgres.py); `new_database()` gives each test its own."""
    bindir = server_bindir()
    if bindir is None:
        pytest.skip("the PostgreSQL server (initdb, pg_ctl) is not installed; `make install` adds Debian's postgresql")
    cluster = Cluster(bindir).start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path) -> str:
    """A URL of a new, empty database on each backend in turn."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "beatwatch.db")
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def any_engine(store_url):
    """A migrated database on each backend in turn, closed after the test."""
    engine = open_database(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def daemon(tmp_path):
    """`daemon(config, env)` starts a real `beatwatch run` on a temp inbox; each is closed after the test."""
    made: list[Daemon] = []

    def make(config: str = "", env: dict[str, str] | None = None) -> Daemon:
        d = Daemon(tmp_path, config=config, env=env)
        made.append(d)
        return d.start()

    yield make
    for d in made:
        d.close()


@pytest.fixture
def tmpfs(tmp_path):
    """`tmpfs(name, size)` mounts a tmpfs of that size (`"256k"`, `"2m"`) at tmp_path/name: a disk the test can
    fill. Mounting needs root; without it the test is skipped. Each is unmounted after the test."""
    mounts: list[Path] = []

    def mount(name: str, size: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                          capture_output=True).returncode != 0:
            pytest.skip("mounting a tmpfs needs root")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], check=True)
