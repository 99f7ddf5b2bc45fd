"""Hostile inboxes against the real daemon: a WAV header that lies, names that would forge log lines, kill -9.

Issue 17, cases 4, 6 and 9. Each test runs `beatwatch run` as a subprocess (tests/daemon_harness.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil
import pytest

from tests.daemon_harness import BEATWATCH, wait_for
from tests.helpers import click_track, encode, lying_wav, write_wav

pytestmark = pytest.mark.slow

FORGED = "a\nFAKE ERROR line\x1b[31m.wav"
FORGED_SHOWN = "a\\nFAKE ERROR line\\x1b[31m.wav"


def test_a_wav_header_claiming_ten_hours_over_one_second_fails_at_once(daemon, tmp_path):
    d = daemon()
    liar = lying_wav(tmp_path / "liar.wav", 1.0, 10 * 3600)
    before = liar.read_bytes()
    os.rename(liar, d.inbox / "liar.wav")
    wait_for(lambda: d.drained(1), 60, "the job to end")
    [(state, attempts, error)] = d.query("SELECT state, attempts, error FROM jobs")
    assert (state, attempts) == ("failed", 1)
    assert error == f"{d.inbox / 'liar.wav'}: truncated or corrupt (1.0 s of audio, 36000.0 s declared)"
    assert (d.inbox / "liar.wav").read_bytes() == before
    assert not list(d.inbox.glob("*.beatwatch.json"))
    assert d.stop() == 0


def test_names_with_newlines_and_escape_bytes_are_escaped_in_the_log_and_the_cli(daemon, tmp_path):
    d = daemon()
    song, _ = click_track(120, seconds=6.0)
    write_wav(tmp_path / "song.wav", song)
    os.rename(tmp_path / "song.wav", d.inbox / FORGED)
    (d.inbox / "b\nFAKE WARNING\x07.mp3").write_text("not audio\n" * 50)
    wait_for(lambda: d.drained(2), 90, "both jobs to end")
    assert d.stop() == 0
    log = (d.root / "daemon.log").read_text(encoding="utf-8", errors="replace")
    assert f"done (analysed): {d.inbox}/{FORGED_SHOWN}" in log
    assert f"{d.inbox}/b\\nFAKE WARNING\\x07.mp3: not an audio file (" in log
    [(error,)] = d.query("SELECT error FROM jobs WHERE state = 'failed'")
    assert "FAKE" not in error.split(": not an audio file (")[1]  # ffmpeg's reason, not the tail of the name
    assert not [line for line in log.splitlines() if line.startswith("FAKE")], log
    assert "\x1b" not in log and "\x07" not in log

    shown = subprocess.run([BEATWATCH, "show", str(d.inbox / FORGED), "--config", str(d.config)], cwd=d.root,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert f"{d.inbox}/{FORGED_SHOWN}" in shown.stdout
    assert "\x1b" not in shown.stdout and not [line for line in shown.stdout.splitlines() if line.startswith("FAKE")]
    missing = subprocess.run([BEATWATCH, "show", str(d.inbox / "gone\nFAKE\x1b[2J.wav"), "--config", str(d.config)],
                             cwd=d.root, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1
    assert missing.stderr == f"beatwatch: {d.inbox}/gone\\nFAKE\\x1b[2J.wav: no analysed track with this path or hash\n"


def _survivors(processes: list[psutil.Process], within_s: float) -> list[str]:
    """The processes still running after up to within_s seconds; a zombie waiting for its new parent to reap it
    has died already."""
    deadline = time.monotonic() + within_s
    while True:
        left = []
        for process in processes:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{process.pid} {' '.join(process.cmdline())[:100]}")
            except psutil.NoSuchProcess:
                pass
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def test_kill_9_of_the_daemon_takes_its_workers_inference_and_resource_tracker_with_it(daemon, tmp_path):
    d = daemon('[inference]\nmode = "process"\n')
    long_song, _ = click_track(110, seconds=90.0)
    encode(write_wav(tmp_path / "long.wav", long_song), tmp_path / "long.flac")
    os.rename(tmp_path / "long.flac", d.inbox / "long.flac")
    wait_for(lambda: d.query("SELECT 1 FROM jobs WHERE state = 'running' AND stage NOT IN ('claimed', 'decode')"),
             60, "the long job to be mid-analysis")
    children = psutil.Process(d.proc.pid).children(recursive=True)
    commands = [" ".join(child.cmdline()) for child in children]
    assert sum("spawn_main" in c for c in commands) == 3, commands  # two workers and the inference process
    assert any("resource_tracker" in c for c in commands), commands
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait(timeout=10)
    assert _survivors(children, within_s=2.0) == []
