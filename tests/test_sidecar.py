"""Sidecar files: where they go, atomic replacement, and clean-up after a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beatwatch.store.sidecar import remove_stray_temp_files, sidecar_path, write_sidecar

REPO = Path(__file__).resolve().parents[1]
DOC = {"schema": "beatwatch.timeline/1", "file": {"path": "/m/Café Ñandú.flac"},
       "timeline": {"beats": [{"time": 0.5, "transient_time": None}]}}


def test_sidecar_path_next_to_the_audio_or_in_the_output_folder(tmp_path):
    audio = tmp_path / "in" / "Café.mp3"
    assert sidecar_path(audio) == tmp_path / "in" / "Café.mp3.beatwatch.json"
    assert sidecar_path(str(audio), tmp_path / "out") == tmp_path / "out" / "Café.mp3.beatwatch.json"


def test_write_round_trips_as_utf8_and_leaves_no_temp(tmp_path):
    target = sidecar_path(tmp_path / "Café Ñandú.flac", tmp_path / "new" / "folder")
    assert write_sidecar(DOC, target) == target
    assert json.loads(target.read_text(encoding="utf-8")) == DOC
    assert "Café Ñandú" in target.read_bytes().decode("utf-8")
    assert os.listdir(target.parent) == [target.name]


def test_an_existing_sidecar_is_replaced_not_appended(tmp_path):
    target = tmp_path / "song.mp3.beatwatch.json"
    long_doc = {"timeline": {"beats": [{"time": i / 2} for i in range(1000)]}}
    write_sidecar(long_doc, target)
    old_inode = target.stat().st_ino
    write_sidecar(DOC, target)
    assert json.loads(target.read_text(encoding="utf-8")) == DOC
    assert target.stat().st_ino != old_inode  # renamed over, not rewritten in place
    assert os.listdir(tmp_path) == [target.name]


def test_permissions_follow_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        target = write_sidecar(DOC, tmp_path / "a.beatwatch.json")
    finally:
        os.umask(previous)
    assert target.stat().st_mode & 0o777 == 0o640


def test_a_document_that_cannot_be_written_keeps_the_old_sidecar(tmp_path):
    target = write_sidecar(DOC, tmp_path / "song.mp3.beatwatch.json")
    with pytest.raises(ValueError):
        write_sidecar({"summary": {"bpm": float("nan")}}, target)
    assert json.loads(target.read_text(encoding="utf-8")) == DOC
    assert os.listdir(tmp_path) == [target.name]


CRASH_MID_WRITE = """
import os, sys
from beatwatch.store.sidecar import write_sidecar

class Beats(list):
    def __iter__(self):
        yield {"time": 0.5}
        os._exit(0)  # the process dies halfway through the document

write_sidecar({"timeline": {"beats": Beats([1])}}, sys.argv[1])
"""


def test_a_crash_mid_write_leaves_the_old_sidecar_and_a_temp_that_cleanup_removes(tmp_path):
    target = write_sidecar(DOC, tmp_path / "song.mp3.beatwatch.json")
    subprocess.run([sys.executable, "-c", CRASH_MID_WRITE, str(target)], cwd=REPO, check=True)

    assert json.loads(target.read_text(encoding="utf-8")) == DOC
    leftovers = [name for name in os.listdir(tmp_path) if name != target.name]
    assert len(leftovers) == 1 and leftovers[0].startswith(".") and leftovers[0].endswith(".tmp.json")
    assert remove_stray_temp_files(tmp_path) == 0  # too fresh: it could be a write in flight
    assert remove_stray_temp_files(tmp_path, older_than_s=0) == 1
    assert os.listdir(tmp_path) == [target.name]


def test_stray_cleanup_removes_only_old_sidecar_and_plot_temps_in_every_subfolder(tmp_path):
    old = time.time() - 3600
    strays = [tmp_path / ".a.mp3.beatwatch.json.123.0badcafe.tmp.json",
              tmp_path / "sub" / "deeper" / ".b c.flac.beatwatch.json.9.ff.tmp.json",
              tmp_path / "sub" / ".b c.flac.beatwatch.png.4242.0badcafe.tmp.png"]
    fresh = tmp_path / ".d.mp3.beatwatch.json.77.abcd.tmp.json"
    kept = [tmp_path / "a.mp3.beatwatch.json", tmp_path / ".a.mp3.tmp", tmp_path / "x.beatwatch.json.1.ab.tmp.json",
            tmp_path / ".notes.tmp", tmp_path / "sub" / ".e.mp3.beatwatch.json.tmp.json",
            tmp_path / ".f.mp3.beatwatch.png.5.ab.tmp.json", tmp_path / ".g.mp3.1234.0badcafe.tmp.mp3", fresh]
    for path in strays + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{")
        if path is not fresh:
            os.utime(path, (old, old))

    assert remove_stray_temp_files(tmp_path) == 3
    assert not any(path.exists() for path in strays)
    assert all(path.exists() for path in kept)
    assert remove_stray_temp_files(tmp_path) == 0


def test_a_name_too_long_for_the_suffix_gets_a_short_unique_sidecar(tmp_path):
    from beatwatch.store.sidecar import MAX_NAME_BYTES, sidecar_path, write_sidecar

    first, second = "a" * 246 + "1.wav", "a" * 246 + "2.wav"
    one, two = sidecar_path(tmp_path / first), sidecar_path(tmp_path / second)
    assert one != two and one.name.startswith("a" * 100) and one.name.endswith(".beatwatch.json")
    assert len(one.name.encode()) <= MAX_NAME_BYTES
    assert write_sidecar({"schema": "x"}, one).read_text().startswith("{")
