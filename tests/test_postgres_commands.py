"""`beatwatch analyze`, `plot` and `tag` on a PostgreSQL URL: tracks are found by path and by hash prefix in that
database, the figures are real images of their analysis, and tags land in the file with the new hash stored."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import mutagen
import pytest
from matplotlib import image as mpimg
from sqlalchemy import text

from beatwatch.render.plot import chord_name
from beatwatch.render.tracks import short_key
from beatwatch.store.db import open_database
from tests.daemon_harness import BEATWATCH
from tests.helpers import FORM, encode, form_song, write_wav

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def beatwatch(config: Path, *args: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith("BEATWATCH_")}
    return subprocess.run([BEATWATCH, *args, "--config", str(config)], cwd=config.parent, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def analysed(postgres, tmp_path_factory) -> tuple[str, Path]:
    """A PostgreSQL database holding the analyses of a form song as wav and as mp3; its URL and the config."""
    url = postgres.new_database()
    root = tmp_path_factory.mktemp("postgres-commands")
    config = root / "beatwatch.toml"
    config.write_text(f'[store]\nurl = "{url}"\n')
    song = write_wav(root / "song.wav", form_song(120.0, form=FORM[:2])[0])
    encode(song, root / "song.mp3")
    result = beatwatch(config, "analyze", "song.wav", "song.mp3")
    assert result.returncode == 0, result.stderr
    return url, config


@pytest.mark.slow
def test_plot_draws_a_track_stored_in_postgresql(analysed):
    url, config = analysed
    root = config.parent
    song = root / "song.wav"
    document = json.loads((root / "song.wav.beatwatch.json").read_text())
    engine = open_database(url)
    try:
        with engine.connect() as conn:
            assert str(song) in conn.execute(text("SELECT path FROM tracks")).scalars().all()
    finally:
        engine.dispose()

    png = beatwatch(config, "plot", str(song), "--out", str(root / "song.png"))
    assert png.returncode == 0, png.stderr
    assert png.stdout.strip() == str(root / "song.png")
    assert (root / "song.png").read_bytes()[:8] == PNG_MAGIC
    height, width, _ = mpimg.imread(root / "song.png").shape
    assert width >= 800 and height >= 200

    svg = beatwatch(config, "plot", document["file"]["content_hash"][:12], "--out", str(root / "song.svg"))
    assert svg.returncode == 0, svg.stderr
    assert ET.parse(root / "song.svg").getroot().tag.endswith("svg")
    drawn = (root / "song.svg").read_text()
    chords = {chord_name(bar["chord"]) for bar in document["timeline"]["bars"] if bar["chord"] != "N"}
    assert chords and all(f">{chord}<" in drawn for chord in chords), chords
    sections = document["timeline"]["sections"]
    assert sections and all(f">{s['label']} {s['letter']}<" in drawn for s in sections)
    assert "song.wav" in drawn


@pytest.mark.slow
def test_tag_writes_into_a_file_analysed_in_postgresql_and_stores_its_new_hash(analysed):
    url, config = analysed
    mp3 = config.parent / "song.mp3"
    summary = json.loads((config.parent / "song.mp3.beatwatch.json").read_text())["summary"]
    tagged = beatwatch(config, "tag", "song.mp3")
    assert tagged.returncode == 0, tagged.stderr
    tags = mutagen.File(mp3).tags
    assert tags["TKEY"].text == [short_key(summary["key"])]
    assert float(tags["TBPM"].text[0]) == pytest.approx(summary["bpm"], abs=0.5)
    new_hash = hashlib.sha256(mp3.read_bytes()).hexdigest()
    shown = beatwatch(config, "show", new_hash[:16])
    assert shown.returncode == 0 and "song.mp3" in shown.stdout, shown.stderr


@pytest.mark.slow
def test_export_and_playlist_select_tracks_from_postgresql_and_a_writing_clause_changes_nothing(analysed):
    url, config = analysed
    root = config.parent
    exported = beatwatch(config, "export", "--where", "path LIKE '%song.%'", "--format", "lab",
                         "--out", str(root / "labels"))
    assert exported.returncode == 0, exported.stderr
    labels = sorted(path.name for path in (root / "labels").iterdir())
    assert [name for name in labels if "song.wav" in name] and [name for name in labels if "song.mp3" in name]
    playlist = beatwatch(config, "playlist", "bpm > 100", "--m3u", str(root / "fast.m3u"))
    assert playlist.returncode == 0, playlist.stderr
    assert [line for line in (root / "fast.m3u").read_text().splitlines() if not line.startswith("#")] == [
        "song.mp3", "song.wav"]
    clause = "true; COMMIT; UPDATE analyses SET bpm = 0; SELECT * FROM tracks WHERE true"
    writing = beatwatch(config, "playlist", clause, "--m3u", str(root / "x.m3u"))
    assert writing.returncode == 1 and "not a valid WHERE clause" in writing.stderr
    engine = open_database(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM analyses WHERE bpm > 100")).scalar() == 2
    finally:
        engine.dispose()
