"""Shared fixtures: one Analyzer per test session, a folder for the audio the tests write, a fresh database,
and real daemons started on demand."""

from __future__ import annotations

from pathlib import Path

import pytest

from beatwatch.store.db import open_database, sqlite_url
from tests.daemon_harness import Daemon


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
