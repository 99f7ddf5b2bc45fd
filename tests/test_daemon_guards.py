"""The real daemon against what goes wrong around it: a second daemon on its database, a reload with a config
it cannot use, its inbox folder replaced."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import pytest

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
