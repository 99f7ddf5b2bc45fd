"""The one publishing path, against real SQLite and real files: no lease (analyze), a job's lease (the daemon),
inbox.after moves, where sidecars and plots land, and their shared temp-name rule."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

import pytest

from beatwatch.daemon.publish import FileChanged, Publisher, file_stamp, plot_path, write_plot
from beatwatch.store import jobs
from beatwatch.store.sidecar import MAX_NAME_BYTES, remove_stray_temp_files, sidecar_path, temp_path, write_sidecar

GOLDEN = Path(__file__).parent / "data" / "sidecar_golden.json"


def song(folder: Path, name: str = "song.wav") -> tuple[Path, dict]:
    """An audio file (its bytes do not matter here) and a real analysis document naming it."""
    folder.mkdir(parents=True, exist_ok=True)
    audio = folder / name
    audio.write_bytes(b"RIFF")
    document = json.loads(GOLDEN.read_text(encoding="utf-8"))
    document["file"]["path"] = str(audio)
    return audio, document


def tracks(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql("SELECT path, sidecar_path FROM tracks")]


def test_without_a_lease_the_sidecar_and_the_rows_land_together(engine, tmp_path):
    audio, document = song(tmp_path / "music")
    target = Publisher(engine).publish(document, audio)
    assert target == audio.with_name("song.wav.beatwatch.json")
    assert json.loads(target.read_text(encoding="utf-8")) == document
    assert tracks(engine) == [(str(audio), str(target))]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT mtime FROM files").scalar() == audio.stat().st_mtime


def test_without_a_database_only_the_sidecar_is_written(tmp_path):
    audio, document = song(tmp_path / "music")
    target = Publisher(None, output_dir=tmp_path / "out").publish(document, audio)
    assert target == tmp_path / "out" / "song.wav.beatwatch.json" and target.is_file()
    assert os.listdir(tmp_path / "music") == ["song.wav"]


def test_a_job_publishes_only_while_its_lease_is_held(engine, tmp_path):
    audio, document = song(tmp_path / "inbox")
    publisher = Publisher(engine)
    now = time.time()
    jobs.enqueue(engine, str(audio), size=4, mtime=1.0, now=now)
    job = jobs.claim(engine, "w1", lease_s=30, now=now)
    opened = file_stamp(audio.stat())
    assert publisher.publish_job(document, str(audio), job_id=job.id, token="someone else", outcome="analysed",
                                 opened=opened, now=now + 1) is None
    assert not sidecar_path(audio).exists() and tracks(engine) == []
    target = publisher.publish_job(document, str(audio), job_id=job.id, token="w1", outcome="analysed",
                                   opened=opened, now=now + 1)
    assert target == sidecar_path(audio) and target.is_file()
    assert tracks(engine) == [(str(audio), str(target))]
    with engine.connect() as conn:
        state, outcome, digest, analysis_id = conn.exec_driver_sql(
            "SELECT state, outcome, content_hash, analysis_id FROM jobs").one()
    assert (state, outcome, digest) == ("done", "analysed", document["file"]["content_hash"])
    assert analysis_id is not None


def test_a_file_rewritten_after_its_claim_is_not_published(engine, tmp_path):
    audio, document = song(tmp_path / "inbox")
    now = time.time()
    jobs.enqueue(engine, str(audio), size=4, mtime=1.0, now=now)
    job = jobs.claim(engine, "w1", lease_s=30, now=now)
    opened = file_stamp(audio.stat())
    time.sleep(0.05)
    replacement = audio.with_name(".song.wav.part")
    replacement.write_bytes(b"RIFF other audio")
    os.utime(replacement, (1.0, 1.0))  # an old mtime, as `mv` or `cp -p` keep it: the ctime still tells
    os.replace(replacement, audio)
    with pytest.raises(FileChanged, match="changed during analysis"):
        Publisher(engine).publish_job(document, str(audio), job_id=job.id, token="w1", outcome="analysed",
                                      opened=opened, now=now + 1)
    assert not sidecar_path(audio).exists() and tracks(engine) == []
    assert jobs.job_for_path(engine, str(audio)).state == "running"


def test_set_aside_moves_the_file_its_sidecar_and_plot_and_the_rows_follow(engine, tmp_path):
    inbox = tmp_path / "inbox"
    audio, document = song(inbox)
    publisher = Publisher(engine, set_aside_in=inbox)
    sidecar = publisher.publish(document, audio)
    publisher.plot_path(audio).write_bytes(b"\x89PNG")
    publisher.set_aside(str(audio), "done", sidecar=sidecar)
    done = inbox / "done"
    assert sorted(os.listdir(done)) == ["song.wav", "song.wav.beatwatch.json", "song.wav.beatwatch.png"]
    assert os.listdir(inbox) == ["done"]
    assert tracks(engine) == [(str(done / "song.wav"), str(done / "song.wav.beatwatch.json"))]


def test_without_inbox_after_move_nothing_is_set_aside(engine, tmp_path):
    audio, document = song(tmp_path / "inbox")
    sidecar = Publisher(engine).publish(document, audio)
    Publisher(engine).set_aside(str(audio), "done", sidecar=sidecar)
    assert audio.is_file() and sidecar.is_file()


def test_plots_sit_beside_their_sidecars_in_output_dir_and_with_long_names(tmp_path):
    audio = tmp_path / "inbox" / ("x" * 246 + ".wav")
    for output_dir in (None, tmp_path / "out"):
        sidecar, plot = sidecar_path(audio, output_dir), plot_path(audio, output_dir)
        assert plot.parent == sidecar.parent == (output_dir or audio.parent)
        assert plot.name == sidecar.name.removesuffix(".beatwatch.json") + ".beatwatch.png"
        assert "~" in plot.name and len(plot.name.encode()) <= MAX_NAME_BYTES
        assert Publisher(None, output_dir=output_dir).plot_path(audio) == plot


def test_sidecars_and_plots_share_one_temp_name_rule_that_the_cleanup_knows(tmp_path):
    audio = tmp_path / ("a" * 246 + ".wav")
    for final in (sidecar_path(audio), plot_path(audio, None)):
        temp = temp_path(final)
        assert temp.parent == final.parent and temp.name.startswith("." + final.name)
        assert temp.suffix == final.suffix and len(temp.name.encode()) <= 255
        temp.write_text("{")
        os.utime(temp, (0, 0))
    assert remove_stray_temp_files(tmp_path) == 2
    assert os.listdir(tmp_path) == []


def test_a_plot_is_written_atomically_under_the_temp_rule(tmp_path):
    document = json.loads(GOLDEN.read_text(encoding="utf-8"))
    out = tmp_path / "song.wav.beatwatch.png"
    assert write_plot(document, out) == out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path) == [out.name]


@pytest.mark.parametrize("write", ["plot", "sidecar"])
def test_a_symlink_planted_at_the_temp_name_is_never_written_through(tmp_path, monkeypatch, write):
    """Issue 18, case 1: the temp name made predictable (its random part fixed), a symlink waits there pointing
    at a victim; the file is created under another name and the victim keeps its bytes."""
    document = json.loads(GOLDEN.read_text(encoding="utf-8"))
    victim = tmp_path / "victim.db"
    victim.write_bytes(b"precious")
    out = tmp_path / f"song.wav.beatwatch.{'png' if write == 'plot' else 'json'}"
    draws = iter(["deadbeef", "0badf00d"])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(draws))
    planted = temp_path(out)
    planted.symlink_to(victim)
    draws = iter(["deadbeef", "0badf00d"])
    if write == "plot":
        write_plot(document, out)
    else:
        write_sidecar(document, out)
    assert victim.read_bytes() == b"precious"
    assert planted.is_symlink() and out.is_file() and not out.is_symlink()
    assert sorted(os.listdir(tmp_path)) == sorted([victim.name, planted.name, out.name])
