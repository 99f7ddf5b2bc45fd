"""`beatwatch analyze` shows its progress: a redrawn bar on a terminal (a real pty), plain lines into a pipe."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from beatwatch.daemon.progress import ProgressDisplay
from tests.helpers import click_track, write_wav

BEATWATCH = str(Path(sys.executable).with_name("beatwatch"))


def test_plain_lines_carry_stage_percent_and_an_eta_from_the_elapsed_time():
    times = iter([100.0, 110.0, 120.0, 121.0, 160.0])
    out = io.StringIO()
    display = ProgressDisplay(out, tty=False, now=lambda: next(times))
    display.start("mix\n.mp3")
    display("decode", 0.0)
    display("analyse", 0.2)
    display("analyse", 0.25)  # same stage, less than a tenth further: no line
    display("chords", 0.6)
    assert out.getvalue().splitlines() == [
        "mix\\n.mp3: decode 0% (ETA --:--)",
        "mix\\n.mp3: analyse 20% (ETA 01:20)",
        "mix\\n.mp3: chords 60% (ETA 00:40)",
    ]


def test_on_a_terminal_one_line_is_redrawn_and_erased():
    times = iter([0.0, 30.0])
    out = io.StringIO()
    display = ProgressDisplay(out, tty=True, now=lambda: next(times))
    display.start("song.wav")
    display("inference", 0.5)
    display.finish()
    text = out.getvalue()
    assert text.startswith("\r\x1b[K[##########..........]  50% inference  ETA 00:30  song.wav")
    assert text.endswith("\r\x1b[K") and "\n" not in text


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("progress")
    (folder / "beatwatch.toml").write_text("")
    signal, _ = click_track(120, seconds=12.0)
    return write_wav(folder / "song.wav", signal)


@pytest.mark.slow
def test_analyze_into_a_pipe_prints_plain_progress_lines_then_the_result(song):
    result = subprocess.run([BEATWATCH, "analyze", str(song), "--no-db"], cwd=song.parent, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "song.wav: decode 0% (ETA --:--)"
    assert any(line.startswith("song.wav: analyse ") for line in lines)
    assert "\r" not in result.stdout and lines[-1].startswith(f"{song}: ") and "BPM" in lines[-1]


@pytest.mark.slow
def test_analyze_on_a_terminal_draws_a_bar_with_stage_and_eta(song):
    master, slave = pty.openpty()
    proc = subprocess.Popen([BEATWATCH, "analyze", str(song), "--no-db"], cwd=song.parent, stdout=subprocess.PIPE,
                            stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    stdout, _ = proc.communicate(timeout=300)
    os.close(master)
    assert proc.returncode == 0
    screen = seen.decode()
    assert "\r\x1b[K[" in screen and "ETA" in screen and "song.wav" in screen and "analyse" in screen
    assert screen.endswith("\r\x1b[K")  # erased before the result line
    assert stdout.decode().splitlines() == [line for line in stdout.decode().splitlines() if "BPM" in line]
