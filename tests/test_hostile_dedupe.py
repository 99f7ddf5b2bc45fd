"""Issue 18, case 2 and part of case 10: a copy is linked only to its own content's analysis, sidecars under
output.dir keep the inbox's folders, one content is analysed once, linking keeps the analysis (and its id),
and a file gone during its analysis leaves no orphan sidecar.

One real daemon (with output.dir) serves the module; each test uses its own file names and content.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.daemon_harness import Daemon, wait_for
from tests.helpers import click_track, encode, write_wav

pytestmark = pytest.mark.slow  # every test here drives `beatwatch run`


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-dedupe")
    daemon = Daemon(root, config=f'[output]\ndir = "{root / "out"}"\n')
    yield daemon.start()
    daemon.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dedupe-media")


def song(media: Path, name: str, bpm: float, seconds: float = 10.0) -> Path:
    return write_wav(media / name, click_track(bpm, seconds=seconds)[0])


def deliver(src: Path, dst: Path) -> None:
    """Written under a hidden name, then renamed into place: the file appears (or replaces dst) whole."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    temp = dst.with_name(f".{dst.name}.part")
    shutil.copyfile(src, temp)
    os.rename(temp, dst)


def ended(d: Daemon, path: Path, jobs: int = 1) -> list[tuple]:
    """(state, outcome, content_hash, analysis_id, error) of path's jobs, once `jobs` of them have ended."""
    def done():
        rows = d.query("SELECT state, outcome, content_hash, analysis_id, error FROM jobs WHERE path = ?"
                       " AND state IN ('done', 'failed') ORDER BY id", str(path))
        return rows if len(rows) >= jobs else None
    return wait_for(done, 120, f"{jobs} job(s) of {path.name} to end")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def track(d: Daemon, path: Path) -> tuple:
    (row,) = d.query("SELECT content_hash, bpm, analysis_id FROM tracks WHERE path = ?", str(path))
    return row


def test_a_copy_of_overwritten_audio_gets_its_own_content_not_the_new_one(d, media):
    """(a): mix.wav analysed as A, overwritten with B and analysed again; the sidecar A's row names now holds B.
    A later copy of A was linked to it and recorded with B's hash, BPM and duration."""
    a, b = song(media, "a.wav", 90), song(media, "b.wav", 150)
    mix = d.inbox / "mix.wav"
    deliver(a, mix)
    ended(d, mix)
    deliver(b, mix)
    ended(d, mix, jobs=2)
    deliver(a, d.inbox / "old mix.wav")
    ((state, outcome, content, _, _),) = ended(d, d.inbox / "old mix.wav")
    assert (state, outcome, content) == ("done", "analysed", digest(a))
    hash_a, bpm_a, _ = track(d, d.inbox / "old mix.wav")
    assert hash_a == digest(a) and bpm_a == pytest.approx(90, rel=0.03)
    assert track(d, mix)[0] == digest(b)


def test_sidecars_in_output_dir_keep_the_inbox_folders_and_copies_link_to_their_own(d, media):
    """(b): albumA/track01.wav and albumB/track01.wav shared one sidecar name in output.dir; B's overwrote A's
    and a later copy of A was linked to B's data."""
    a, b = song(media, "album-a.wav", 100), song(media, "album-b.wav", 140)
    deliver(a, d.inbox / "albumA" / "track01.wav")
    ended(d, d.inbox / "albumA" / "track01.wav")
    deliver(b, d.inbox / "albumB" / "track01.wav")
    ended(d, d.inbox / "albumB" / "track01.wav")
    out = d.root / "out"
    for album, audio in (("albumA", a), ("albumB", b)):
        sidecar = json.loads((out / album / "track01.wav.beatwatch.json").read_text())
        assert sidecar["file"]["content_hash"] == digest(audio)
    assert not (out / "track01.wav.beatwatch.json").exists()
    deliver(a, d.inbox / "copy of A.wav")
    ((state, outcome, content, _, _),) = ended(d, d.inbox / "copy of A.wav")
    assert (state, outcome, content) == ("done", "linked", digest(a))
    assert track(d, d.inbox / "copy of A.wav")[:2] == (digest(a), pytest.approx(100, rel=0.03))


def test_linking_a_copy_keeps_the_analysis_and_its_id(d, media):
    """Linking deleted and re-inserted the whole analysis: a new analysis_id, and every earlier done job of that
    content lost its analysis_id (SET NULL)."""
    original = song(media, "original.wav", 110)
    deliver(original, d.inbox / "original.wav")
    ((_, _, _, first_id, _),) = ended(d, d.inbox / "original.wav")
    assert first_id is not None
    for n in range(2):
        deliver(original, d.inbox / f"copy {n}.wav")
        ((state, outcome, _, analysis_id, _),) = ended(d, d.inbox / f"copy {n}.wav")
        assert (state, outcome, analysis_id) == ("done", "linked", first_id)
    assert d.query("SELECT analysis_id FROM jobs WHERE path = ?", str(d.inbox / "original.wav")) == [(first_id,)]
    assert d.query("SELECT count(*) FROM analyses WHERE id = ?", first_id) == [(1,)]


def test_copies_claimed_together_are_analysed_once(d, media):
    """Two workers took the two copies at once; each found no stored analysis and both analysed the song."""
    twin = song(media, "twin.wav", 125, seconds=30.0)
    for name in ("twin 1.wav", "twin 2.wav"):
        shutil.copyfile(twin, media / f".{name}")
    for name in ("twin 1.wav", "twin 2.wav"):
        os.rename(media / f".{name}", d.inbox / name)
    rows = [ended(d, d.inbox / name)[0] for name in ("twin 1.wav", "twin 2.wav")]
    assert sorted(outcome for _, outcome, _, _, _ in rows) == ["analysed", "linked"]
    assert len({analysis_id for _, _, _, analysis_id, _ in rows}) == 1
    log = (d.root / "daemon.log").read_text()
    assert "twin 1.wav -> w" in log and "twin 2.wav -> w" in log


def test_a_file_deleted_during_its_analysis_fails_and_leaves_no_sidecar(d, media):
    """It was marked done, with a sidecar in output.dir for a file that no longer existed."""
    long_song = encode(song(media, "doomed.wav", 95, seconds=120.0), media / "doomed.flac")
    doomed = d.inbox / "doomed.flac"
    deliver(long_song, doomed)
    wait_for(lambda: d.query("SELECT 1 FROM jobs WHERE path = ? AND state = 'running' AND stage NOT IN"
                             " ('claimed', 'decode')", str(doomed)), 60, "the analysis to be under way")
    doomed.unlink()
    ((state, _, _, _, error),) = ended(d, doomed)
    assert state == "failed"
    assert error == f"{doomed}: file deleted or renamed during analysis; nothing stored"
    assert not (d.root / "out" / "doomed.flac.beatwatch.json").exists()
    assert d.query("SELECT count(*) FROM tracks WHERE path = ?", str(doomed)) == [(0,)]
