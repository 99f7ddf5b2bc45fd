"""Shared fixtures: one Analyzer per test session, a folder for the audio the tests write, a fresh database."""

from __future__ import annotations

from pathlib import Path

import pytest

from beatwatch.store.db import open_database, sqlite_url


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
