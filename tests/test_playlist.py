"""Names from tags in `tracks` (schema step 9) and `beatwatch playlist`: M3U with relative paths, harmonic order."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from beatwatch.analysis.audio.decode import read_metadata
from beatwatch.render.playlist import Entry, harmonic_order, m3u, wheel_distance
from beatwatch.store.db import open_database, sqlite_url
from beatwatch.store.migrations import STEPS, migrate
from beatwatch.store.records import save_timeline

BEATWATCH = str(Path(sys.executable).with_name("beatwatch"))
GOLDEN = json.loads((Path(__file__).parent / "data" / "sidecar_golden.json").read_text())


def song(path: Path, content_hash: str, *, bpm: float, key: str, **metadata) -> dict:
    """The golden sidecar as another file: its path, hash, tempo, key and tag names."""
    doc = copy.deepcopy(GOLDEN)
    doc["file"].update(path=str(path), content_hash=content_hash)
    if metadata:
        doc["file"]["metadata"] = metadata
    doc["summary"].update(bpm=bpm, key=key)
    return doc


def test_tag_names_from_ffprobe_whatever_their_case_and_the_year_of_a_date():
    assert read_metadata({"ARTIST": "Ann", "date": "2019-04-01"}, {"title": "Go", "album": ""}) == {
        "artist": "Ann", "title": "Go", "year": 2019}
    assert read_metadata({"album_artist": "Band", "TITLE": "x"}, {"DATE": "May 1987"}) == {
        "artist": "Band", "title": "x", "year": 1987}
    assert read_metadata({}) == {}


def test_camelot_neighbours_are_one_step_and_harmonic_order_follows_them_within_the_tempo_range():
    assert [wheel_distance("A minor", k) for k in ("A minor", "E minor", "D minor", "C major", "G major")] == [
        0, 1, 1, 1, 2]
    entries = [Entry("/m/a.mp3", 200.0, 120.0, "A minor"),      # 8A, the slowest: the start
               Entry("/m/clash.mp3", 200.0, 122.0, "F# major"),  # 2B: next in tempo, a clash in key
               Entry("/m/c.mp3", 200.0, 123.0, "C major"),      # 8B: the relative major
               Entry("/m/g.mp3", 200.0, 124.0, "G major"),      # 9B: a fifth up from C
               Entry("/m/fast.mp3", 200.0, 140.0, "E minor")]   # 9A, beside G but 13 % faster
    order = [e.path for e in harmonic_order(entries, tempo_percent=6.0)]
    assert order == ["/m/a.mp3", "/m/c.mp3", "/m/g.mp3", "/m/fast.mp3", "/m/clash.mp3"]
    assert [e.path for e in harmonic_order(entries, tempo_percent=20.0)][:4] == [
        "/m/a.mp3", "/m/c.mp3", "/m/g.mp3", "/m/fast.mp3"]


def test_m3u_paths_are_relative_to_the_playlists_folder(tmp_path):
    entries = [Entry(str(tmp_path / "music" / "a b.mp3"), 201.4, 120.0, "A minor", "Ann", "Go"),
               Entry(str(tmp_path / "x.flac"), None, None, None)]
    text_ = m3u(entries, tmp_path / "lists" / "set.m3u")
    assert text_.splitlines() == ["#EXTM3U", "#EXTINF:201,Ann - Go", "../music/a b.mp3", "#EXTINF:-1,x.flac",
                                  "../x.flac"]


def test_a_database_at_step_8_gains_names_and_keeps_its_tracks(tmp_path):
    url = sqlite_url(tmp_path / "old.db")
    old = create_engine(url)
    try:
        assert migrate(old, STEPS[:8]) == 8
        with old.begin() as conn:  # the rows as step 8's code wrote them
            conn.execute(text("INSERT INTO files (id, content_hash, path) VALUES (1, 'aa', '/m/old.mp3')"))
            conn.execute(text("INSERT INTO file_paths (file_id, path) VALUES (1, '/m/old.mp3')"))
            conn.execute(text("INSERT INTO analyses (file_id, analyzer_version, bpm) VALUES (1, '0.1.0', 99.0)"))
    finally:
        old.dispose()
    engine = open_database(url)
    try:
        save_timeline(engine, song(tmp_path / "new.mp3", "bb" * 32, bpm=120.0, key="A minor", artist="Ann",
                                   title="Go", album="Set", year=2020), sidecar_path=None)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT path, bpm, artist, title, album, year FROM tracks ORDER BY path")).all()
        assert [tuple(r) for r in rows] == [("/m/old.mp3", 99.0, None, None, None, None),
                                            (str(tmp_path / "new.mp3"), 120.0, "Ann", "Go", "Set", 2020)]
    finally:
        engine.dispose()


@pytest.fixture
def library(tmp_path):
    """Four tracks on disk in a real database, and the config that names it."""
    music = tmp_path / "music"
    music.mkdir()
    engine = open_database(sqlite_url(tmp_path / "beatwatch.db"))
    for name, bpm, key, artist in (("a.mp3", 124.0, "A minor", "Ann"), ("b.mp3", 125.0, "C major", "Bo"),
                                   ("c.mp3", 127.0, "E minor", "Cy"), ("slow.mp3", 90.0, "A minor", "Di")):
        (music / name).write_bytes(b"stand-in for audio")
        save_timeline(engine, song(music / name, name.encode().hex().ljust(64, "0"), bpm=bpm, key=key,
                                   artist=artist, title=name.upper()), sidecar_path=None)
    engine.dispose()
    config = tmp_path / "beatwatch.toml"
    config.write_text(f'[store]\nurl = "{sqlite_url(tmp_path / "beatwatch.db")}"\n')
    return tmp_path, config


@pytest.mark.slow
def test_beatwatch_playlist_writes_the_selected_tracks_in_harmonic_order(library):
    root, config = library
    (root / "lists").mkdir()
    result = subprocess.run([BEATWATCH, "playlist", "bpm BETWEEN 120 AND 128 AND artist <> 'Bo'", "--m3u",
                             "lists/dance.m3u", "--harmonic", "--config", str(config)], cwd=root,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = (root / "lists" / "dance.m3u").read_text().splitlines()
    assert lines == ["#EXTM3U", "#EXTINF:18,Ann - A.MP3", "../music/a.mp3", "#EXTINF:18,Cy - C.MP3",
                     "../music/c.mp3"]
    assert all((root / "lists" / line).is_file() for line in lines[2::2])
    bad = subprocess.run([BEATWATCH, "playlist", "tempo > 1", "--m3u", "x.m3u", "--config", str(config)], cwd=root,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "no such column: tempo" in bad.stderr and not (root / "x.m3u").exists()
