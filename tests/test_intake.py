"""Intake with a real watchdog observer on a temp folder and a real SQLite queue: only complete files, each once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from beatwatch.daemon.config import DEFAULT_IGNORE
from beatwatch.daemon.intake import Intake
from beatwatch.daemon.stability import files_open_for_writing
from beatwatch.daemon.watcher import NameFilter
from beatwatch.store import jobs
from beatwatch.store.db import open_database, sqlite_url
from tests.daemon_harness import wait_for

SETTLE_S = 0.5


@pytest.fixture
def intake(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    engine = open_database(sqlite_url(tmp_path / "q.db"))
    names = NameFilter(inbox, DEFAULT_IGNORE, skip_result_folders=True)
    it = Intake(engine, names, settle_s=SETTLE_S, rescan_interval_s=3600, polling=False)
    it.start()
    it.step(time.monotonic())  # the start-up reconcile pass
    yield it
    it.stop()
    engine.dispose()


def paths(intake: Intake) -> list[str]:
    with intake.engine.connect() as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT path FROM jobs ORDER BY id")]


def pump(intake: Intake, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        intake.step(time.monotonic())
        time.sleep(0.05)


def test_slow_writer_is_queued_once_after_it_finishes(intake):
    target = intake.names.inbox / "slow.flac"
    with open(target, "wb") as handle:
        for _ in range(12):  # 3 s of writing, a pause longer than settle_s in the middle
            handle.write(os.urandom(4096))
            handle.flush()
            pump(intake, 0.25)
        pump(intake, SETTLE_S * 2)  # still open for writing: not complete even though unchanged
        assert paths(intake) == []
    pump(intake, SETTLE_S * 3)
    assert paths(intake) == [str(target)]
    job = jobs.job_for_path(intake.engine, str(target))
    assert job.size == 12 * 4096
    pump(intake, SETTLE_S * 2)
    assert len(paths(intake)) == 1


def test_temp_name_then_rename_gives_one_job_for_the_final_name(intake):
    temp = intake.names.inbox / "song.mp3.part"
    temp.write_bytes(os.urandom(20000))
    pump(intake, SETTLE_S * 3)
    assert paths(intake) == []
    final = intake.names.inbox / "song.mp3"
    temp.rename(final)
    pump(intake, SETTLE_S * 3)
    assert paths(intake) == [str(final)]


def test_a_folder_moved_in_is_found(intake, tmp_path):
    album = tmp_path / "album"
    album.mkdir()
    for i in range(3):
        (album / f"{i}.ogg").write_bytes(b"x" * 100)
    album.rename(intake.names.inbox / "album")
    pump(intake, SETTLE_S * 4)
    assert sorted(Path(p).name for p in paths(intake)) == ["0.ogg", "1.ogg", "2.ogg"]


def test_open_for_writing_is_seen_through_proc(tmp_path):
    path = tmp_path / "held.wav"
    path.write_bytes(b"1")
    identity = (path.stat().st_dev, path.stat().st_ino)
    with open(path, "ab"):
        assert identity in files_open_for_writing()
    with open(path, "rb"):
        assert identity not in files_open_for_writing()


def test_burst_of_2000_files_with_junk_gives_one_job_per_audio_file(intake, record_property):
    inbox = intake.names.inbox
    (inbox / "sub").mkdir()
    audio = []
    started = time.monotonic()

    def writer():
        for i in range(2000):
            folder = inbox / "sub" if i % 3 == 0 else inbox
            path = folder / f"track {i:04d}.{('mp3', 'flac', 'wav', 'ogg', 'm4a')[i % 5]}"
            path.write_bytes(b"\0" * 64)
            audio.append(str(path))
            junk = ["notes.txt", f".hidden{i}.mp3", f"dl{i}.mp3.part", f"x{i}.tmp", f"c{i}.crdownload",
                    "Thumbs.db", f"~$lock{i}.wav", f"track {i:04d}.mp3.beatwatch.json"][i % 8]
            (folder / junk).write_bytes(b"junk")

    thread = threading.Thread(target=writer)
    thread.start()
    while thread.is_alive():
        intake.step(time.monotonic())
        time.sleep(0.02)
    wait_for(lambda: (intake.step(time.monotonic()), len(paths(intake)) >= 2000)[1], 60, "2000 jobs")
    pump(intake, SETTLE_S * 3)
    elapsed = time.monotonic() - started
    queued = paths(intake)
    record_property("burst_seconds", round(elapsed, 2))
    print(f"\nburst: 2000 audio files + 2000 junk/temp names -> {len(queued)} jobs in {elapsed:.1f} s, "
          f"duplicates: {len(queued) - len(set(queued))}")
    assert len(queued) == len(set(queued)) == 2000
    assert set(queued) == set(audio)


def test_without_sight_of_writers_the_close_decides_and_a_file_without_events_waits_longer(tmp_path):
    """As under `User=beatwatch`: /proc is not asked at all, so only the writer's close (or the longer window for a
    file that got no event) may end the wait."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "before.flac").write_bytes(os.urandom(4096))  # there before the watch: no event will come
    engine = open_database(sqlite_url(tmp_path / "q.db"))
    it = Intake(engine, NameFilter(inbox, DEFAULT_IGNORE, skip_result_folders=True), settle_s=SETTLE_S,
                rescan_interval_s=3600, polling=False, writers_visible=False, unclosed_settle_s=4.0)
    it.start()
    try:
        started = time.monotonic()
        target = inbox / "held.flac"
        with open(target, "wb") as handle:
            handle.write(os.urandom(4096))
            handle.flush()
            pump(it, SETTLE_S * 4)  # unchanged far past settle_s, but not closed
            assert paths(it) == []
            handle.write(os.urandom(4096))
        pump(it, SETTLE_S * 3)
        assert paths(it) == [str(target)]
        assert jobs.job_for_path(engine, str(target)).size == 2 * 4096
        assert time.monotonic() - started < 4.0
        pump(it, 4.0 - (time.monotonic() - started) + SETTLE_S * 2)
        assert paths(it) == [str(target), str(inbox / "before.flac")]
    finally:
        it.stop()
        engine.dispose()


def rescan(config: Path, *, drop_ptrace: bool = False) -> str:
    command = [str(Path(sys.executable).with_name("beatwatch")), "rescan", "--config", str(config)]
    if drop_ptrace:
        command = ["setpriv", "--bounding-set=-sys_ptrace", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_beatwatch_rescan_skips_files_still_open_for_writing_or_too_recent_for_unseen_writers(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = tmp_path / "beatwatch.toml"
    config.write_text(f'[inbox]\npath = "{inbox}"\n[watch]\nsettle_s = 0.5\nunclosed_settle_s = 600\n')
    done = inbox / "done.flac"
    done.write_bytes(os.urandom(4096))
    os.utime(done, (time.time() - 60, time.time() - 60))
    held = inbox / "held.flac"
    with open(held, "wb") as handle:
        handle.write(os.urandom(4096))
        handle.flush()
        os.utime(held, (time.time() - 60, time.time() - 60))
        assert rescan(config).endswith("queued 1 new\n")  # done.flac; held.flac is open for writing
        if os.geteuid() == 0 and shutil.which("setpriv"):
            assert rescan(config, drop_ptrace=True).endswith("queued 0 new\n")  # held is a minute old, not 600 s
    assert rescan(config).endswith("queued 1 new\n")


def test_the_reconcile_pass_marks_analysed_files_that_are_gone_missing(intake):
    from beatwatch.store.records import known_paths, save_timeline
    from tests.test_store import make_doc

    song = intake.names.inbox / "song.wav"
    song.write_bytes(b"RIFF")
    save_timeline(intake.engine, make_doc(path=str(song)), sidecar_path=None)
    intake.rescan_soon()
    intake.step(time.monotonic())
    assert known_paths(intake.engine) == [(str(song), None)]
    song.unlink()
    intake.rescan_soon()
    intake.step(time.monotonic())
    [(path, since)] = known_paths(intake.engine)
    assert path == str(song) and since is not None
