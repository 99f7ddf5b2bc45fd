"""Shared fixtures: one Analyzer per test session and a folder for the audio the tests write."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def analyzer():
    from beatwatch.analysis.nets.networks import Networks
    from beatwatch.analysis.pipeline import Analyzer
    return Analyzer(Networks())


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")
