"""The WHERE clause of `export` and `playlist` selects tracks and can only read, on SQLite and PostgreSQL alike: a
clause that tries to end its read-only transaction and write after it is refused and changes nothing."""

from __future__ import annotations

import time

import pytest

from beatwatch.store import jobs
from beatwatch.store.records import BadFilter, save_timeline, tracks_where
from tests.test_store import make_doc


@pytest.fixture
def library(any_engine):
    for n, (bpm, key) in enumerate([(124.0, "A minor"), (90.0, "C major"), (126.0, "A minor")]):
        save_timeline(any_engine, make_doc(path=f"/music/song {n}.mp3", content_hash=f"{n}" * 64, bpm=bpm, key=key),
                      sidecar_path=None)
    jobs.enqueue(any_engine, "/music/inbox/new.mp3", size=1, mtime=1.0, now=time.time())
    return any_engine


def paths(rows: list[dict]) -> list[str]:
    return [row["path"] for row in rows]


def test_a_clause_with_percent_signs_colons_and_parentheses_selects_as_written(library):
    assert paths(tracks_where(library, "path LIKE '%song 1%'")) == ["/music/song 1.mp3"]
    assert paths(tracks_where(library, "key = 'A minor' AND bpm > 120")) == ["/music/song 0.mp3", "/music/song 2.mp3"]
    assert paths(tracks_where(library, "(bpm < 100) OR (path LIKE '%2.mp3')")) == [
        "/music/song 1.mp3", "/music/song 2.mp3"]
    assert paths(tracks_where(library, "'A:min' LIKE 'A:%' AND bpm = 90")) == ["/music/song 1.mp3"]


@pytest.mark.parametrize("clause", [
    "true; COMMIT; DELETE FROM jobs; SELECT * FROM tracks WHERE true",
    "true; DELETE FROM jobs",
    "true) OR (true); COMMIT; UPDATE jobs SET state = 'failed'; SELECT * FROM tracks WHERE (true",
])
def test_a_clause_that_would_write_is_refused_and_writes_nothing(library, clause):
    with pytest.raises(BadFilter, match="not a valid WHERE clause"):
        tracks_where(library, clause)
    assert jobs.counts(library)["queued"] == 1
    assert len(tracks_where(library, "true")) == 3
