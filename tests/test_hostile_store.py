"""The real daemon against hostile conditions around its store: files overwritten in place, a locked database."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import time

import pytest

from tests.daemon_harness import BEATWATCH, wait_for
from tests.helpers import click_track, encode, write_wav

pytestmark = pytest.mark.slow  # every test here runs `beatwatch run` as a subprocess


def deliver(src, dst) -> None:
    """Write under a temp name, then rename over dst: a finished file appears (or replaces dst) at once."""
    temp = dst.with_name(f".{dst.name}.part")
    temp.write_bytes(src.read_bytes())
    os.rename(temp, dst)


def test_a_file_overwritten_with_other_audio_has_one_tracks_row(daemon, tmp_path):
    song_a = write_wav(tmp_path / "a.wav", click_track(96, seconds=8.0)[0])
    song_b = write_wav(tmp_path / "b.wav", click_track(140, seconds=10.0)[0])
    d = daemon()
    mix = d.inbox / "mix.wav"
    deliver(song_a, mix)
    wait_for(lambda: d.drained(1), 120, "song A to be analysed")
    deliver(song_b, mix)
    wait_for(lambda: d.drained(2), 120, "song B, written over it, to be analysed")

    assert d.query("SELECT count(*) FROM analyses") == [(2,)]
    hash_b = hashlib.sha256(song_b.read_bytes()).hexdigest()
    assert d.query("SELECT path, content_hash FROM tracks WHERE path LIKE '%mix.wav'") == [(str(mix), hash_b)]
    show = subprocess.run([BEATWATCH, "show", str(mix), "--config", str(d.config)], capture_output=True, text=True)
    assert show.returncode == 0 and hash_b in show.stdout


def test_a_locked_database_is_one_line_a_status_that_says_so_and_a_daemon_that_carries_on(daemon, tmp_path):
    song = write_wav(tmp_path / "song.wav", click_track(120, seconds=8.0)[0])
    d = daemon()
    # Longer than store/db.py's 10 s busy_timeout, so the daemon's own writes (its status every 5 s) fail for real.
    locker = sqlite3.connect(d.db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        status = subprocess.run([BEATWATCH, "status", "--config", str(d.config)], capture_output=True, text=True,
                                timeout=60)
        wait_for(lambda: b"database locked by another process" in (d.root / "daemon.log").read_bytes(), 40,
                 "the daemon to say the database is locked")
        time.sleep(max(0.0, 25 - (time.monotonic() - started)))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert status.returncode == 1, status
    assert "database locked by another process" in status.stderr
    assert status.stdout == ""

    deliver(song, d.inbox / "after the lock.wav")
    wait_for(lambda: d.states() == {"done": 1}, 120, "a job after the lock to finish")
    assert d.stop() == 0
    log = (d.root / "daemon.log").read_text()
    locked_lines = [line for line in log.splitlines() if "locked by another process" in line]
    assert 1 <= len(locked_lines) <= 3, locked_lines
    assert "database writable again" in log
    assert "Traceback" not in log
    after = subprocess.run([BEATWATCH, "status", "--config", str(d.config)], capture_output=True, text=True)
    assert after.returncode == 0 and "done 1" in after.stdout


def test_a_file_replaced_while_it_is_analysed_is_analysed_again(daemon, tmp_path):
    song_a = encode(write_wav(tmp_path / "a.wav", click_track(110, seconds=90.0)[0]), tmp_path / "a.flac")
    song_b = encode(write_wav(tmp_path / "b.wav", click_track(150, seconds=30.0)[0]), tmp_path / "b.flac")
    d = daemon()
    mix = d.inbox / "mix.flac"
    deliver(song_a, mix)
    wait_for(lambda: d.query("SELECT 1 FROM jobs WHERE state = 'running' AND stage NOT IN ('claimed', 'decode')"),
             60, "song A to be mid-analysis")
    deliver(song_b, mix)
    wait_for(lambda: d.drained(1), 180, "the job to end")

    hash_b = hashlib.sha256(song_b.read_bytes()).hexdigest()
    assert d.query("SELECT state, attempts, content_hash FROM jobs") == [("done", 2, hash_b)]
    assert d.query("SELECT path, content_hash FROM tracks") == [(str(mix), hash_b)]
    assert d.query("SELECT bpm FROM analyses")[0][0] == pytest.approx(150, rel=0.03)
    log = (d.root / "daemon.log").read_text()
    assert "mix.flac: file changed during analysis" in log and "Traceback" not in log


@pytest.fixture
def tiny_disk(tmpfs):
    """A 256 KiB tmpfs."""
    return tmpfs("out", "256k")


def test_a_full_output_disk_leaves_no_half_sidecar_and_the_job_retries(daemon, tmp_path, tiny_disk):
    song = write_wav(tmp_path / "song.wav", click_track(120, seconds=8.0)[0])
    filler = tiny_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass  # full
    finally:
        os.close(fd)
    d = daemon(f'[output]\ndir = "{tiny_disk}"\n')
    deliver(song, d.inbox / "song.wav")
    wait_for(lambda: d.query("SELECT error FROM jobs WHERE state = 'retry_wait'"), 120, "the job to wait for a retry")
    assert os.listdir(tiny_disk) == ["filler"]
    filler.unlink()
    wait_for(lambda: d.states() == {"done": 1}, 120, "the job to be retried and done")
    assert d.proc.poll() is None
    assert sorted(os.listdir(tiny_disk)) == ["song.wav.beatwatch.json"]
    assert d.stop() == 0
    log = (d.root / "daemon.log").read_text()
    assert "No space left on device" in log and "Traceback" not in log
