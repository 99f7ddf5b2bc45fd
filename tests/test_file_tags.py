"""`beatwatch tag` and `output.write_tags`: tags read back with mutagen, audio untouched, no second analysis."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mutagen
import numpy as np
import pytest

from beatwatch.analysis.audio.decode import content_hash, decode, probe
from beatwatch.analysis.harmony.notation import camelot, open_key
from beatwatch.render import file_tags
from beatwatch.render.tracks import short_key
from beatwatch.render.file_tags import TagError, TagValues, tag_values, write_tags
from tests.daemon_harness import wait_for
from tests.helpers import click_track, encode, write_wav

BEATWATCH = str(Path(sys.executable).with_name("beatwatch"))
AS_USER = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"] if os.geteuid() == 0 else []
needs_file_modes = pytest.mark.skipif(bool(AS_USER) and shutil.which("setpriv") is None,
                                      reason="root needs setpriv to drop the file-mode override")
FORMATS = {"mp3": ("-b:a", "192k"), "flac": (), "ogg": ("-c:a", "libvorbis"), "m4a": ("-c:a", "aac"),
           "opus": ("-c:a", "libopus")}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*AS_USER, BEATWATCH, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_tags(path: Path) -> dict[str, str]:
    """BPM, key and gain as each format's usual fields hold them, read by mutagen."""
    tags = mutagen.File(path).tags
    if path.suffix == ".mp3":
        return {"bpm": str(tags["TBPM"]), "key": str(tags["TKEY"]),
                "gain": str(tags["TXXX:REPLAYGAIN_TRACK_GAIN"]) if "TXXX:REPLAYGAIN_TRACK_GAIN" in tags else ""}
    if path.suffix == ".m4a":
        gain = tags.get("----:com.apple.iTunes:replaygain_track_gain")
        return {"bpm": str(tags["tmpo"][0]), "key": bytes(tags["----:com.apple.iTunes:initialkey"][0]).decode(),
                "gain": bytes(gain[0]).decode() if gain else ""}
    gain = tags.get("R128_TRACK_GAIN" if path.suffix == ".opus" else "REPLAYGAIN_TRACK_GAIN")
    return {"bpm": tags["BPM"][0], "key": tags["INITIALKEY"][0], "gain": gain[0] if gain else ""}


@pytest.fixture(scope="module")
def encoded(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("encoded")
    signal, _ = click_track(124, seconds=4.0)
    wav = write_wav(folder / "src.wav", np.stack([signal, 0.5 * signal], axis=1))
    return {ext: encode(wav, folder / f"song.{ext}", "-metadata", "artist=Ann", *args)
            for ext, args in FORMATS.items()}


@pytest.mark.parametrize("ext", list(FORMATS))
def test_tags_land_in_each_formats_usual_fields_and_the_audio_stays_the_same(encoded, tmp_path, ext):
    path = Path(shutil.copy(encoded[ext], tmp_path / f"x.{ext}"))
    before = decode(probe(path)).samples
    digest, stat = write_tags(path, TagValues(bpm=124.46, key="F#m", gain_db=-3.5))
    assert digest == content_hash(path) and stat.st_size == path.stat().st_size
    expected_gain = {"opus": str(round((-3.5 - 5.0) * 256)), "mp3": "-3.50 dB"}.get(ext, "-3.50 dB")
    expected_bpm = "124" if ext in ("mp3", "m4a") else "124.46"
    assert read_tags(path) == {"bpm": expected_bpm, "key": "F#m", "gain": expected_gain}
    assert mutagen.File(path).tags is not None and "Ann" in mutagen.File(path).tags.pprint(), "other tags kept"
    assert np.array_equal(decode(probe(path)).samples, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"x.{ext}"], "no temp file left"


def test_key_notations_and_replaygain_from_the_loudness():
    document = {"summary": {"bpm": 128.0, "key": "A minor", "loudness_lufs": -9.25}}
    assert tag_values(document).key == "Am" and tag_values(document).gain_db is None
    assert tag_values(document, notation="camelot").key == "8A"
    assert tag_values(document, notation="open_key").key == "1m"
    given = {"summary": {**document["summary"], "key_camelot": "8A*", "key_open": "1m*"}}
    assert (tag_values(given, notation="camelot").key, tag_values(given, notation="open_key").key) == ("8A*", "1m*"), \
        "the sidecar's own notation wins"
    assert tag_values(document, replaygain=True).gain_db == pytest.approx(-8.75)


def test_a_failure_mid_write_leaves_the_file_as_it_was(encoded, tmp_path, monkeypatch):
    path = Path(shutil.copy(encoded["flac"], tmp_path / "x.flac"))
    original = sha(path)

    def half_write(temp: Path, values: TagValues) -> None:
        with open(temp, "r+b") as handle:
            handle.write(b"\0" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(file_tags, "_set", half_write)
    with pytest.raises(TagError, match="No space left on device.*unchanged"):
        write_tags(path, TagValues(bpm=120.0, key="C", gain_db=None))
    assert sha(path) == original
    assert [p.name for p in tmp_path.iterdir()] == ["x.flac"]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory, encoded) -> Path:
    root = tmp_path_factory.mktemp("tagged")
    (root / "beatwatch.toml").write_text("")
    for ext in ("mp3", "flac", "ogg", "m4a"):
        shutil.copy(encoded[ext], root / f"song.{ext}")
    result = run("analyze", "song.mp3", "song.flac", "song.ogg", "song.m4a", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


@pytest.mark.slow
def test_beatwatch_tag_writes_bpm_and_key_that_mutagen_reads_back(analysed):
    root = analysed
    sidecars = {ext: json.loads((root / f"song.{ext}.beatwatch.json").read_text()) for ext in ("mp3", "flac")}
    result = run("tag", "song.mp3", sidecars["flac"]["file"]["content_hash"][:16], "song.ogg", "song.m4a",
                 "--replaygain", cwd=root)
    assert result.returncode == 0, result.stderr
    for ext in ("mp3", "flac", "ogg", "m4a"):
        summary = json.loads((root / f"song.{ext}.beatwatch.json").read_text())["summary"]
        tags = read_tags(root / f"song.{ext}")
        assert float(tags["bpm"]) == pytest.approx(summary["bpm"], abs=0.5)
        assert tags["key"] == short_key(summary["key"])
        assert tags["gain"] == f"{-18.0 - summary['loudness_lufs']:.2f} dB"
    assert run("tag", "song.mp3", "--open-key", cwd=root).returncode == 0, "a tagged file is still its analysis"
    assert read_tags(root / "song.mp3")["key"] == open_key(sidecars["mp3"]["summary"]["key"])
    shown = run("show", sha(root / "song.mp3")[:16], cwd=root)
    assert shown.returncode == 0 and sidecars["mp3"]["file"]["content_hash"] in shown.stdout


@pytest.mark.slow
@needs_file_modes
def test_tag_bad_input_is_one_sentence_exit_1_and_the_file_untouched(analysed):
    root = analysed
    locked_dir = root / "locked"
    locked_dir.mkdir()
    shutil.copy(root / "song.ogg", locked_dir / "song.ogg")
    assert run("analyze", "locked/song.ogg", cwd=root).returncode == 0
    (root / "song.flac").chmod(0o444)
    locked_dir.chmod(0o555)
    changed = root / "changed.mp3"
    shutil.copy(root / "song.mp3", changed)
    assert run("analyze", "changed.mp3", cwd=root).returncode == 0
    with open(changed, "ab") as handle:
        handle.write(b"\0" * 10)
    cases = {"nothing.mp3": "no analysed track", "song.flac": "read-only", "locked/song.ogg": "cannot write in",
             "changed.mp3": "changed since it was analysed"}
    try:
        for target, words in cases.items():
            before = sha(root / target) if (root / target).exists() else None
            result = run("tag", target, cwd=root)
            assert result.returncode == 1, target
            assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
            assert (sha(root / target) if before else None) == before
        assert sorted(os.listdir(locked_dir)) == ["song.ogg", "song.ogg.beatwatch.json"]
    finally:
        locked_dir.chmod(0o755)
        (root / "song.flac").chmod(0o644)


@pytest.mark.slow
def test_the_daemon_tags_when_asked_and_does_not_analyse_the_tagged_file_again(daemon, encoded):
    d = daemon('[output]\nwrite_tags = true\ntag_key = "camelot"\n')
    temp = d.inbox / ".song.mp3.part"
    shutil.copy(encoded["mp3"], temp)
    os.rename(temp, d.inbox / "song.mp3")
    wait_for(lambda: d.drained(1), 120, "the job")
    tagged = d.inbox / "song.mp3"
    wait_for(lambda: "TKEY" in (mutagen.File(tagged).tags or {}), 10, "the tags")
    assert read_tags(tagged)["key"] == camelot(d.query("SELECT key FROM tracks")[0][0])
    assert sha(tagged) != sha(encoded["mp3"])
    time.sleep(3)  # settle_s is 0.5: the rewrite's event has long been seen
    rescan = subprocess.run([BEATWATCH, "rescan", "--config", str(d.config)], capture_output=True, text=True,
                            timeout=60)
    assert "queued 0 new" in rescan.stdout, rescan.stdout + rescan.stderr
    shutil.copy(tagged, d.inbox / ".copy.mp3.part")
    os.rename(d.inbox / ".copy.mp3.part", d.inbox / "copy.mp3")
    wait_for(lambda: d.drained(2), 120, "the copy's job")
    assert sorted(d.query("SELECT path, outcome FROM jobs")) == [(str(d.inbox / "copy.mp3"), "linked"),
                                                                  (str(tagged), "analysed")]
    assert d.query("SELECT COUNT(*) FROM analyses") == [(1,)]
    assert d.stop() == 0


def test_the_copy_a_crash_would_leave_is_what_start_up_cleans(encoded, tmp_path, monkeypatch):
    from beatwatch.store.sidecar import remove_stray_temp_files

    path = Path(shutil.copy(encoded["mp3"], tmp_path / "song.mp3"))
    names = []
    real_set = file_tags._set
    monkeypatch.setattr(file_tags, "_set", lambda temp, values: (names.append(temp.name), real_set(temp, values)))
    write_tags(path, TagValues(bpm=120.0, key="C", gain_db=None))
    assert names and names[0].startswith(".song.mp3.") and names[0].endswith(".mp3")
    crashed, users = tmp_path / names[0], tmp_path / ".song.mp3.tmp.mp3"
    for left in (crashed, users):
        left.write_bytes(b"ID3")
        os.utime(left, (0, 0))
    assert remove_stray_temp_files(tmp_path) == 1
    assert not crashed.exists() and users.exists() and path.exists()
