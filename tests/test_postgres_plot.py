"""`beatwatch analyze` then `beatwatch plot` on a PostgreSQL URL: the track is found by path and by hash prefix in
that database, and the figures are real images of its analysis."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest
from matplotlib import image as mpimg
from sqlalchemy import text

from beatwatch.render.plot import chord_name
from beatwatch.store.db import open_database
from tests.daemon_harness import BEATWATCH
from tests.helpers import FORM, form_song, write_wav

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def beatwatch(config, *args: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith("BEATWATCH_")}
    return subprocess.run([BEATWATCH, *args, "--config", str(config)], cwd=config.parent, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_plot_draws_a_track_stored_in_postgresql(postgres, tmp_path):
    url = postgres.new_database()
    config = tmp_path / "beatwatch.toml"
    config.write_text(f'[store]\nurl = "{url}"\n')
    song = write_wav(tmp_path / "song.wav", form_song(120.0, form=FORM[:2])[0])
    analysed = beatwatch(config, "analyze", str(song))
    assert analysed.returncode == 0, analysed.stderr
    document = json.loads((tmp_path / "song.wav.beatwatch.json").read_text())
    engine = open_database(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT path FROM tracks")).scalars().all() == [str(song)]
    finally:
        engine.dispose()

    png = beatwatch(config, "plot", str(song), "--out", str(tmp_path / "song.png"))
    assert png.returncode == 0, png.stderr
    assert png.stdout.strip() == str(tmp_path / "song.png")
    assert (tmp_path / "song.png").read_bytes()[:8] == PNG_MAGIC
    height, width, _ = mpimg.imread(tmp_path / "song.png").shape
    assert width >= 800 and height >= 200

    svg = beatwatch(config, "plot", document["file"]["content_hash"][:12], "--out", str(tmp_path / "song.svg"))
    assert svg.returncode == 0, svg.stderr
    assert ET.parse(tmp_path / "song.svg").getroot().tag.endswith("svg")
    drawn = (tmp_path / "song.svg").read_text()
    chords = {chord_name(bar["chord"]) for bar in document["timeline"]["bars"] if bar["chord"] != "N"}
    assert chords and all(f">{chord}<" in drawn for chord in chords), chords
    sections = document["timeline"]["sections"]
    assert sections and all(f">{s['label']} {s['letter']}<" in drawn for s in sections)
    assert "song.wav" in drawn
