"""`beatwatch analyze` as a user runs it: a subprocess over a folder of real encoded files."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from beatwatch.analysis.harmony.spelling import pitch_class

from tests.helpers import click_track, encode, write_wav

BEATWATCH = str(Path(sys.executable).with_name("beatwatch"))
FORMATS = {"wav": (), "flac": (), "mp3": ("-b:a", "192k"), "ogg": ("-c:a", "libvorbis"), "m4a": ("-c:a", "aac")}


def run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([BEATWATCH, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Five songs in five formats at different tempi, plus the bad inputs a user's folder collects."""
    root = tmp_path_factory.mktemp("library")
    (root / "beatwatch.toml").write_text("")  # the database beside it, ./beatwatch.db
    music = root / "music"
    music.mkdir()
    tempi = {}
    for i, (ext, args) in enumerate(FORMATS.items()):
        bpm = 100 + 8 * i
        signal, _ = click_track(bpm, seconds=12.0)
        stereo = np.stack([signal, 0.8 * signal], axis=1) if i % 2 else signal
        wav = write_wav(root / f"src{i}.wav", stereo)
        encode(wav, music / f"song {i}.{ext}", *args)
        tempi[f"song {i}.{ext}"] = bpm
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.wav").write_bytes(b"")
    (bad / "notes.mp3").write_text("not music\n" * 50)
    full = encode(root / "src0.wav", root / "full.mp3", "-b:a", "192k")
    (bad / "cut.mp3").write_bytes(full.read_bytes()[:4000])
    write_wav(bad / "silence.wav", np.zeros(44100 * 5, dtype=np.float32))
    clip, _ = click_track(120, seconds=0.5, lead_in=0.1)
    write_wav(bad / "clip.wav", clip)
    return root, tempi


@pytest.fixture(scope="module")
def analysed(library):
    root, tempi = library
    result = run("analyze", "music", "bad/empty.wav", "bad/notes.mp3", "bad/cut.mp3", "bad/silence.wav",
                 "bad/clip.wav", "bad/missing.flac", cwd=root)
    return root, tempi, result


@pytest.mark.slow
def test_good_files_get_sidecars_and_rows_bad_ones_one_line_each(analysed):
    root, tempi, result = analysed
    assert result.returncode == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 4, result.stderr
    for name, reason in [("empty.wav", "empty file"), ("notes.mp3", "not an audio file"),
                         ("cut.mp3", "truncated"), ("missing.flac", "no such file")]:
        assert any(name in line and reason in line for line in errors), (name, errors)
    assert "Traceback" not in result.stderr
    for name, bpm in tempi.items():
        doc = json.loads((root / "music" / f"{name}.beatwatch.json").read_text())
        assert doc["schema"] == "beatwatch.timeline/1"
        assert doc["file"]["format"] == name.rsplit(".", 1)[1]
        assert doc["summary"]["bpm"] == pytest.approx(bpm, rel=0.03)
        assert len(doc["timeline"]["beats"]) >= 18
    assert not list((root / "bad").glob("*.tmp")) and not list((root / "music").glob(".*"))
    with sqlite3.connect(root / "beatwatch.db") as db:
        rows = dict(db.execute("SELECT path, bpm FROM tracks").fetchall())
    for name, bpm in tempi.items():
        assert rows[str(root / "music" / name)] == pytest.approx(bpm, rel=0.03)


@pytest.mark.slow
@pytest.mark.parametrize("name,note", [("silence.wav", "silence"), ("clip.wav", "too short")])
def test_silence_and_short_clips_get_a_valid_sidecar_with_a_note(analysed, name, note):
    root, _, _ = analysed
    doc = json.loads((root / "bad" / f"{name}.beatwatch.json").read_text())
    assert doc["timeline"]["beats"] == [] and doc["summary"]["bpm"] is None
    assert any(note in n for n in doc["notes"])


@pytest.mark.slow
def test_readme_queries_run_against_the_analysed_database(analysed):
    root, tempi, _ = analysed
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    queries = re.findall(r"```sql\n(.*?)```", readme, re.S)
    assert len(queries) >= 5
    with sqlite3.connect(root / "beatwatch.db") as db:
        results = [db.execute(q).fetchall() for q in queries]
    assert results[1] and len(results[1]) == len(tempi) + 2  # + silence and the short clip
    bars = [row[0] for row in results[2]]
    assert len(bars) >= 4 and bars == sorted(set(bars))  # one song: each bar once, in order
    one = json.loads((root / "music" / "song 1.flac.beatwatch.json").read_text())
    assert [(row[0], row[2]) for row in results[2]] == [(b["bar"], b["chord"]) for b in one["timeline"]["bars"]]
    assert sum(n for *_, n in results[3]) == len(tempi) + 2
    sidecars = {name: json.loads((root / "music" / f"{name}.beatwatch.json").read_text()) for name in tempi}
    mixing = {"8A", "7A", "9A", "8B"}
    assert sorted(Path(row[0]).name for row in results[9]) == sorted(
        name for name, doc in sidecars.items() if doc["summary"]["key_camelot"] in mixing)
    assert sorted((Path(row[0]).name, row[1]) for row in results[10]) == sorted(
        (name, start) for name, doc in sidecars.items() for start in _two_five_ones(doc["timeline"]["chords"]))


def _two_five_ones(chords: list[dict]) -> list[float]:
    """Where README query 11 should find a ii–V–I, computed from the sidecar instead of SQL."""
    def parts(label: str) -> tuple[int | None, str]:
        root, _, quality = label.partition(":")
        return pitch_class(root), quality
    found = []
    for two, five, one in zip(chords, chords[1:], chords[2:]):
        (r2, q2), (r5, q5), (r1, q1) = parts(two["label"]), parts(five["label"]), parts(one["label"])
        if None not in (r2, r5, r1) and q2.startswith("min7") and q5.startswith("7") and q1.startswith("maj") \
                and r5 == (r2 + 5) % 12 and r1 == (r5 + 5) % 12:
            found.append(two["start"])
    return found


@pytest.mark.slow
def test_json_output_and_show(library, tmp_path):
    root, _ = library
    out = tmp_path / "sidecars"
    result = run("analyze", "music/song 1.flac", "--json", "--out", str(out), "--no-db", cwd=root)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc == json.loads((out / "song 1.flac.beatwatch.json").read_text())
    shown = run("show", doc["file"]["content_hash"][:12], cwd=root)
    assert shown.returncode == 0, shown.stderr
    assert "song 1.flac" in shown.stdout
    fields = dict(line.split(None, 1) for line in shown.stdout.splitlines() if " " in line.strip())
    for notation in ("key_camelot", "key_open"):
        assert fields[notation] == (doc["summary"][notation] or "-")
    form = next(line for line in shown.stdout.splitlines() if line.startswith("form "))
    assert form.split(None, 1)[1] == (" · ".join(f"{s['label']} {s['bars']}" for s in doc["timeline"]["sections"])
                                      or "-")
    missing = run("show", "0123456789abcdef", cwd=root)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1


def test_config_check_names_the_bad_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[workers]\ncount = -3\n")
    result = run("config", "check", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "workers.count" in result.stderr and "-3" in result.stderr
    good = run("config", "check", str(Path(__file__).parents[1] / "config.example.toml"), cwd=tmp_path,
               env={"BEATWATCH_WORKERS__COUNT": "3"})
    assert good.returncode == 0 and "count = 3" in good.stdout


@pytest.mark.slow
def test_plot_and_click_commands_find_the_track_by_hash(analysed, tmp_path):
    import soundfile as sf

    root, tempi, _ = analysed
    doc = json.loads((root / "music" / "song 2.mp3.beatwatch.json").read_text())
    digest = doc["file"]["content_hash"][:10]
    plot = run("plot", digest, "--out", str(tmp_path / "song.svg"), cwd=root)
    assert plot.returncode == 0, plot.stderr
    assert (tmp_path / "song.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    click = run("click", str(root / "music" / "song 2.mp3"), "--out", str(tmp_path / "click.wav"), cwd=root)
    assert click.returncode == 0, click.stderr
    audio, rate = sf.read(tmp_path / "click.wav")
    assert rate == 44100 and abs(len(audio) / rate - doc["file"]["duration"]) < 0.1
    bad = run("plot", digest, "--out", str(tmp_path / "song.gif"), cwd=root)
    assert bad.returncode == 2 and "gif" in bad.stderr


@pytest.mark.parametrize("env,words", [
    ({"BEATWATCH_INFERENCE__DEVICE": "cuda"}, ["inference.device = cuda", "no CUDA provider"]),
    ({"BEATWATCH_INFERENCE__DEVICE": "cuda", "BEATWATCH_INFERENCE__MODE": "process"},
     ["inference.device = cuda", "no CUDA provider"]),
])
def test_run_refuses_what_it_cannot_honour_in_one_line(tmp_path, env, words):
    result = run("run", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    for word in words:
        assert word in result.stderr


def test_plot_by_default_goes_where_the_daemon_puts_plots_output_dir_and_long_names(analysed, tmp_path):
    from beatwatch.daemon.publish import Publisher

    root, _, _ = analysed
    document = json.loads((root / "music" / "song 2.mp3.beatwatch.json").read_text())
    document["file"]["path"] = str(tmp_path / "gone" / ("x" * 246 + ".mp3"))  # audio gone: drawn from the sidecar
    sidecar = tmp_path / "long.mp3.beatwatch.json"
    sidecar.write_text(json.dumps(document))
    out = tmp_path / "out"
    out.mkdir()
    result = run("plot", str(sidecar), cwd=tmp_path, env={"BEATWATCH_OUTPUT__DIR": str(out)})
    assert result.returncode == 0, result.stderr
    written = Path(result.stdout.strip())
    assert written == Publisher(None, output_dir=out).plot_path(document["file"]["path"])  # the daemon's rule
    assert written.parent == out and "~" in written.name and written.name.endswith(".beatwatch.png")
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
