"""`beatwatch export`: every format parsed back, and a variable-tempo grid through rekordbox XML within 1 ms."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import jams
import mir_eval
import numpy as np
import pytest

from beatwatch.render.rekordbox import rekordbox_xml, tempo_segments
from beatwatch.render.tracks import Track
from beatwatch.render.traktor import musical_key, traktor_nml
from tests.helpers import SR, encode, write_wav

BEATWATCH = str(Path(sys.executable).with_name("beatwatch"))
# As root, commands run without the capabilities that let root ignore file modes, so a read-only folder is one.
AS_USER = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"] if os.geteuid() == 0 else []
needs_file_modes = pytest.mark.skipif(bool(AS_USER) and shutil.which("setpriv") is None,
                                      reason="root needs setpriv to drop the file-mode override")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*AS_USER, BEATWATCH, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def ramp_beats(start_bpm: float, end_bpm: float, seconds: float, lead_in: float = 0.5) -> list[float]:
    """Beat times of a tempo that glides from start_bpm to end_bpm, rounded to the ms as sidecars hold them."""
    times, t = [], lead_in
    while t < seconds:
        times.append(round(t, 3))
        t += 60.0 / (start_bpm + (end_bpm - start_bpm) * t / seconds)
    return times


def ramp_song(path: Path, start_bpm: float, end_bpm: float, seconds: float) -> list[float]:
    """Clicks on the ramp's beats, the downbeat lower and louder, as tests/helpers.click_track draws them."""
    beats = ramp_beats(start_bpm, end_bpm, seconds)
    signal = np.zeros(int((seconds + 1.0) * SR))
    length = int(0.08 * SR)
    t = np.arange(length) / SR
    for i, beat in enumerate(beats):
        freq, amp = (60.0, 1.0) if i % 4 == 0 else (180.0, 0.55)
        at = int(round(beat * SR))
        signal[at:at + length] += amp * np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.02)
    write_wav(path, (0.5 * signal / np.abs(signal).max()).astype(np.float32))
    return beats


def document(beats: list[float], *, key: str = "A minor", sections=()) -> dict:
    """A sidecar with the fields the exporters read."""
    return {
        "file": {"path": "/music/x.mp3", "content_hash": "ab" * 32, "size": 1000, "format": "mp3",
                 "duration": beats[-1] + 1.0, "sample_rate": 44100, "channels": 2,
                 "metadata": {"artist": "Ann & Bo", "title": "Glide <1>", "year": 2019}},
        "summary": {"bpm": 60.0 * (len(beats) - 1) / (beats[-1] - beats[0]), "bpm_confidence": 0.8, "meter": 4,
                    "key": key},
        "timeline": {
            "beats": [{"time": t, "bar": i // 4 + 1, "position": i % 4 + 1} for i, t in enumerate(beats)],
            "bars": [{"bar": i // 4 + 1, "time": t, "duration": 2.0, "beats": 4} for i, t in enumerate(beats)
                     if i % 4 == 0],
            "sections": list(sections),
        },
    }


def rekordbox_grid(track: ET.Element, count: int) -> list[float]:
    """The beats rekordbox draws from a TRACK's TEMPO list: each grid runs until half a beat before the next."""
    tempos = [(float(t.get("Inizio")), float(t.get("Bpm"))) for t in track.findall("TEMPO")]
    grid: list[float] = []
    for i, (start, bpm) in enumerate(tempos):
        period = 60.0 / bpm
        end = tempos[i + 1][0] - period / 2 if i + 1 < len(tempos) else math.inf
        k = 0
        while start + k * period < end and len(grid) < count:
            grid.append(start + k * period)
            k += 1
    return grid


def test_a_gliding_tempo_round_trips_through_rekordbox_within_a_millisecond_per_beat():
    beats = ramp_beats(100.0, 140.0, 180.0) + [round(180.0 + 0.55 * k, 3) for k in range(1, 60)]  # then steady
    root = ET.fromstring(rekordbox_xml([Track(document(beats), "/music/x.mp3")]))
    track = root.find("COLLECTION/TRACK")
    grid = rekordbox_grid(track, len(beats))
    assert len(grid) == len(beats)
    assert max(abs(a - b) for a, b in zip(grid, beats)) < 0.001
    tempos = track.findall("TEMPO")
    assert len(tempos) < len(beats) / 3, "a grid per tempo change, not per beat"
    assert all(t.get("Metro") == "4/4" and t.get("Battito") in "1234" for t in tempos)


def test_a_steady_grid_is_one_tempo_entry():
    beats = [round(0.2 + k * 60.0 / 128.0, 3) for k in range(400)]
    assert [(s.first, s.count, s.bpm) for s in tempo_segments(beats)] == [(0, 400, 128.0)]


def test_rekordbox_collection_has_the_published_structure():
    sections = [{"start": 0.5, "end": 8.5, "label": "intro", "letter": "A"},
                {"start": 8.5, "end": 16.5, "label": "chorus", "letter": "B"}]
    beats = [round(0.5 + k * 0.5, 3) for k in range(40)]
    xml = rekordbox_xml([Track(document(beats, key="F# minor", sections=sections), "/music/a b#.mp3")])
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<DJ_PLAYLISTS Version="1.0.0">')
    root = ET.fromstring(xml)
    assert root.tag == "DJ_PLAYLISTS" and root.find("PRODUCT").get("Name") == "beatwatch"
    assert root.find("COLLECTION").get("Entries") == "1"
    track = root.find("COLLECTION/TRACK")
    assert track.get("Location") == "file://localhost/music/a%20b%23.mp3"
    assert (track.get("Name"), track.get("Artist"), track.get("Year")) == ("Glide <1>", "Ann & Bo", "2019")
    assert (track.get("Tonality"), track.get("AverageBpm"), track.get("TotalTime")) == ("F#m", "120.00", "21")
    marks = track.findall("POSITION_MARK")
    assert [(m.get("Start"), m.get("Num"), m.get("Type")) for m in marks] == [("0.500", "-1", "0"),
                                                                          ("8.500", "-1", "0")]
    assert marks[1].get("Name") == "chorus (B)"
    playlist = root.find("PLAYLISTS/NODE/NODE")
    assert [t.get("Key") for t in playlist.findall("TRACK")] == [track.get("TrackID")]


def test_traktor_nml_anchors_the_grid_on_the_first_downbeat_and_names_the_key():
    beats = [round(1.25 + k * 0.5, 3) for k in range(40)]
    root = ET.fromstring(traktor_nml([Track(document(beats, key="A minor"), "/music/x.mp3")]))
    entry = root.find("COLLECTION/ENTRY")
    assert entry.find("LOCATION").get("DIR") == "/:music/:" and entry.find("LOCATION").get("FILE") == "x.mp3"
    assert entry.find("MUSICAL_KEY").get("VALUE") == "21"
    assert float(entry.find("TEMPO").get("BPM")) == pytest.approx(120.0)
    grids = [c for c in entry.findall("CUE_V2") if c.get("TYPE") == "4"]
    assert [float(c.get("START")) for c in grids] == [1250.0], "a steady song needs one grid marker"
    key = root.find("PLAYLISTS/NODE/SUBNODES/NODE/PLAYLIST/ENTRY/PRIMARYKEY").get("KEY")
    assert key == "/:music/:x.mp3"
    assert [musical_key(k) for k in ("C major", "B major", "C minor", "Bb minor")] == [0, 11, 12, 22]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A tagged mp3 whose tempo glides from 112 to 128 BPM, analysed by `beatwatch analyze` into ./beatwatch.db."""
    root = tmp_path_factory.mktemp("export")
    (root / "beatwatch.toml").write_text("")
    ramp_song(root / "glide.wav", 112.0, 128.0, 30.0)
    encode(root / "glide.wav", root / "glide.mp3", "-b:a", "192k", "-metadata", "artist=Ann", "-metadata",
           "title=Glide", "-metadata", "album=Ramps", "-metadata", "date=2021-05-01")
    (root / "glide.wav").unlink()
    result = run("analyze", "glide.mp3", cwd=root)
    assert result.returncode == 0, result.stderr
    sidecar = json.loads((root / "glide.mp3.beatwatch.json").read_text())
    return root, sidecar


@pytest.mark.slow
def test_export_of_an_analysed_song_parses_back_in_every_format(library):
    root, sidecar = library
    beats = [b["time"] for b in sidecar["timeline"]["beats"]]
    assert sidecar["file"]["metadata"] == {"artist": "Ann", "title": "Glide", "album": "Ramps", "year": 2021}

    result = run("export", "--where", "bpm BETWEEN 100 AND 140 AND artist = 'Ann'", "--format", "rekordbox",
                 "--out", "set.xml", cwd=root)
    assert result.returncode == 0, result.stderr
    track = ET.parse(root / "set.xml").getroot().find("COLLECTION/TRACK")
    assert (track.get("Name"), track.get("Album"), track.get("Year")) == ("Glide", "Ramps", "2021")
    grid = rekordbox_grid(track, len(beats))
    assert max(abs(a - b) for a, b in zip(grid, beats, strict=True)) < 0.001
    sections = sidecar["timeline"]["sections"]
    assert [float(m.get("Start")) for m in track.findall("POSITION_MARK")] == [s["start"] for s in sections]

    assert run("export", "glide.mp3", "--format", "traktor", "--out", "set.nml", cwd=root).returncode == 0
    entry = ET.parse(root / "set.nml").getroot().find("COLLECTION/ENTRY")
    first_downbeat = next(b["time"] for b in sidecar["timeline"]["beats"] if b["position"] == 1)
    assert float(entry.find("CUE_V2").get("START")) == pytest.approx(first_downbeat * 1000)

    by_sidecar = run("export", "glide.mp3.beatwatch.json", "--format", "rekordbox", "--out", "one.xml", cwd=root)
    assert by_sidecar.returncode == 0 and (root / "one.xml").read_bytes() == (root / "set.xml").read_bytes()

    hash_prefix = sidecar["file"]["content_hash"][:12]
    for fmt in ("jams", "labels", "lab"):
        result = run("export", hash_prefix, "--format", fmt, "--out", "mir", cwd=root)
        assert result.returncode == 0, result.stderr
    annotations = jams.load(str(root / "mir" / "glide.mp3.jams"), validate=True).annotations
    jams_beats = annotations.search(namespace="beat")[0].data
    assert [o.time for o in jams_beats] == beats
    assert [o.value for o in jams_beats] == [b["position"] for b in sidecar["timeline"]["beats"]]
    assert annotations.search(namespace="tempo")[0].data[0].value == sidecar["summary"]["bpm"]
    assert len(annotations.search(namespace="segment_open")[0].data) == len(sections)

    with open(root / "mir" / "glide.mp3.beats.txt", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    assert [float(r[0]) for r in rows] == beats
    with open(root / "mir" / "glide.mp3.sections.txt", newline="") as handle:
        assert [r[2] for r in csv.reader(handle, delimiter="\t")] == [s["label"] for s in sections]
    intervals, labels = mir_eval.io.load_labeled_intervals(str(root / "mir" / "glide.mp3.lab"))
    assert labels == [c["label"] for c in sidecar["timeline"]["chords"]]
    assert intervals[0][0] == sidecar["timeline"]["chords"][0]["start"]


@pytest.mark.slow
@needs_file_modes
def test_export_bad_input_is_one_sentence_and_exit_1(library):
    root, _ = library
    cases = {
        ("export", "nothing.mp3", "--format", "rekordbox", "--out", "x.xml"): "no analysed track",
        ("export", "--where", "bpmm > 1", "--format", "lab", "--out", "x"): "not a valid WHERE clause",
        ("export", "--where", "1; DELETE FROM files", "--format", "lab", "--out", "x"): "not a valid WHERE clause",
        ("export", "--where", "bpm > 500", "--format", "lab", "--out", "x"): "no analysed track matches",
    }
    locked = root / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    cases[("export", "glide.mp3", "--format", "rekordbox", "--out", "locked/set.xml")] = "cannot write"
    try:
        for args, words in cases.items():
            result = run(*args, cwd=root)
            assert result.returncode == 1, args
            assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    finally:
        locked.chmod(0o755)
    assert not os.listdir(locked)
    assert run("show", "glide.mp3", cwd=root).returncode == 0, "the filter deleted nothing"


def test_per_track_files_of_two_songs_with_one_name_do_not_overwrite_each_other(tmp_path):
    from beatwatch.daemon.export_cmd import export

    first, second = document([0.5, 1.0, 1.5]), document([0.7, 1.2, 1.7])
    second["file"]["content_hash"] = "cd" * 32
    for doc, chord in ((first, "A:min"), (second, "C:maj")):
        doc["timeline"]["chords"] = [{"start": 0.0, "end": 2.0, "label": chord}]
    written = export([Track(first, "/a/x.mp3"), Track(second, "/b/x.mp3")], "lab", tmp_path / "labs")
    assert sorted(p.name for p in written) == ["x.mp3.abababab.lab", "x.mp3.cdcdcdcd.lab"]
    assert (tmp_path / "labs" / "x.mp3.cdcdcdcd.lab").read_text() == "0.000 2.000 C:maj\n"
