"""The real daemon against what goes wrong around it: a second daemon on its database, a reload with a config
it cannot use, its inbox folder replaced."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests import daemon_harness
from tests.daemon_harness import BEATWATCH, wait_for
from tests.helpers import click_track, write_wav

pytestmark = pytest.mark.slow  # each test starts a real daemon and its workers


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    signal_, _ = click_track(120, seconds=8.0)
    return write_wav(tmp_path_factory.mktemp("song") / "song.wav", signal_)


def deliver(song, folder, name: str):
    temp = folder / f".{name}.part"
    temp.write_bytes(song.read_bytes())
    os.rename(temp, folder / name)
    return folder / name


def ready_count(d) -> int:
    return sum("READY=1" in message.split("\n") for message in d.recv_messages())


def test_a_second_daemon_on_the_same_database_is_refused_naming_the_first(daemon, song):
    first = daemon()
    second = subprocess.run([BEATWATCH, "run", "--config", str(first.config)], cwd=first.root, env=first.env,
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert second.stderr.splitlines() == [
        f"beatwatch: another beatwatch daemon (host {socket.gethostname()}, pid {first.proc.pid}) already runs on "
        f"{first.db_path}; one daemon per database"]
    deliver(song, first.inbox, "song.wav")
    wait_for(lambda: first.drained(1), 120, "the first daemon to analyse the file")
    assert first.query("SELECT state, attempts FROM jobs") == [("done", 1)]
    assert first.stop() == 0
    readies = ready_count(first)
    again = subprocess.Popen([BEATWATCH, "run", "--config", str(first.config)], cwd=first.root, env=first.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: again.poll() is not None or ready_count(first) > readies, 60,
                 "a daemon started after the first stopped to get going")
        assert again.poll() is None, again.stderr.read()
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(timeout=60)


def test_a_reload_with_an_inbox_that_is_a_file_keeps_the_running_config(daemon, song):
    d = daemon()
    (d.root / "music.wav").write_bytes(song.read_bytes())
    d.config.write_text(d.config.read_text() + '[inbox]\npath = "music.wav"\n')
    readies = ready_count(d)
    os.kill(d.proc.pid, signal.SIGHUP)
    wait_for(lambda: ready_count(d) > readies, 30, "READY=1 after the reload")
    log = (d.root / "daemon.log").read_text()
    refused = [line for line in log.splitlines() if "reload refused" in line]
    assert len(refused) == 1 and f"inbox.path: {d.root / 'music.wav'} is not a folder" in refused[0]
    assert "Traceback" not in log
    assert d.proc.poll() is None
    deliver(song, d.inbox, "song.wav")
    wait_for(lambda: d.drained(1), 120, "a file in the running inbox to be analysed after the reload")
    assert d.query("SELECT path, state FROM jobs") == [(str(d.inbox / "song.wav"), "done")]
    assert d.stop() == 0


def test_an_inbox_replaced_by_a_new_folder_is_watched_again_at_once(daemon, song):
    """The next rescan is 300 s away: only a watch on the new folder can see its file in time."""
    d = daemon()
    os.rename(d.inbox, d.root / "inbox_old")
    d.inbox.mkdir()
    deliver(song, d.inbox, "song.wav")
    wait_for(lambda: d.drained(1), 60, "the file in the new inbox to be analysed")
    assert "another folder now (replaced or remounted); watching it again" in (d.root / "daemon.log").read_text()
    assert d.query("SELECT path, state FROM jobs") == [(str(d.inbox / "song.wav"), "done")]
    os.rename(d.inbox, d.root / "inbox_new")
    wait_for(lambda: "is gone" in (d.root / "daemon.log").read_text(), 10, "the missing inbox to be logged")
    os.rename(d.root / "inbox_new", d.inbox)
    deliver(song, d.inbox, "again.wav")
    wait_for(lambda: d.drained(2), 60, "the file in the inbox that came back to be analysed")
    assert d.stop() == 0


@pytest.fixture
def tiny_disk(tmpfs):
    """A 2 MiB tmpfs."""
    return tmpfs("db-disk", "2m")


def fill(disk):
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass  # full
    finally:
        os.close(fd)
    return filler


def test_a_full_database_disk_is_said_once_then_periodically_and_the_file_is_analysed_once_there_is_room(
        daemon, song, tmp_path, tiny_disk):
    (tmp_path / "beatwatch.db").symlink_to(tiny_disk / "beatwatch.db")  # the harness reads the database there
    d = daemon()
    filler = fill(tiny_disk)
    deliver(song, d.inbox, "song.wav")
    log_path = d.root / "daemon.log"
    wait_for(lambda: "database out of disk space, retrying" in log_path.read_text(), 30, "the full disk to be said")
    time.sleep(12)  # a dozen ticks, each of which tries the database again
    log = log_path.read_text()
    assert log.count("database out of disk space") == 1 and "Traceback" not in log
    assert d.proc.poll() is None
    filler.unlink()
    wait_for(lambda: d.states() == {"done": 1}, 120, "the file to be queued and analysed once there is room")
    log = log_path.read_text()
    assert "database writable again" in log and "Traceback" not in log
    assert d.stop() == 0


WRITER = """
import os, sys, time
target, source = sys.argv[1], sys.argv[2]
data = open(source, "rb").read()
fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)  # from here on another user's process, as a Samba or scp writer would be
step = len(data) // 4 + 1
for at in range(0, len(data), step):
    os.write(fd, data[at:at + step])
    time.sleep(2.0)  # a pause four times watch.settle_s, the file held open
os.close(fd)
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to run a writer as another user and setpriv to take CAP_SYS_PTRACE away")
def test_a_writer_the_daemon_cannot_see_gives_one_job_for_the_whole_file(daemon, song, tmp_path, monkeypatch):
    """The daemon runs without CAP_SYS_PTRACE, as under the systemd unit, so the writer's /proc/<pid>/fd is
    closed to it; the writer is really another user (it drops to nobody after opening the file)."""
    wrapper = tmp_path / "beatwatch-without-ptrace"
    wrapper.write_text(f"#!/bin/sh\nexec setpriv --bounding-set=-sys_ptrace {daemon_harness.BEATWATCH} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(daemon_harness, "BEATWATCH", str(wrapper))
    d = daemon()
    target = d.inbox / "slow.wav"
    writer = subprocess.run([sys.executable, "-c", WRITER, str(target), str(song)], timeout=60)
    assert writer.returncode == 0 and target.read_bytes() == song.read_bytes()
    wait_for(lambda: d.drained(1), 120, "the file to be analysed")
    time.sleep(2)  # a second job, had one been queued for a part of the file, would show by now
    assert d.query("SELECT state FROM jobs") == [("done",)]
    (duration,), = d.query("SELECT duration FROM tracks")
    assert duration == pytest.approx(8.0, abs=0.1)
    other = write_wav(tmp_path / "other.wav", click_track(140, seconds=5.0)[0])
    target.write_bytes(other.read_bytes())  # new content at the same path, after its analysis
    wait_for(lambda: d.drained(2), 120, "the new content to be analysed")
    assert d.query("SELECT state FROM jobs") == [("done",), ("done",)]
    (duration,), = d.query("SELECT duration FROM tracks WHERE path = ?", str(target))
    assert duration == pytest.approx(5.0, abs=0.1) and d.query("SELECT COUNT(*) FROM tracks") == [(1,)]
    assert d.stop() == 0
    assert "other users' open files are hidden from this process" in (d.root / "daemon.log").read_text()
