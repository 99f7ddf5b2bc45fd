"""The real daemon, real worker processes, real files: crashes, stalls, bad input, restarts, shutdown."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
from pathlib import Path

import psutil
import pytest

from beatwatch.daemon.notify import Notifier
from tests.helpers import click_track, encode, write_wav
from tests.daemon_harness import Daemon, wait_for

pytestmark = pytest.mark.slow  # the daemon runs as a subprocess in all but the notify test


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    """Three short songs and one long enough (90 s) to be caught mid-analysis."""
    folder = tmp_path_factory.mktemp("songs")
    made = {}
    for bpm in (96, 120, 144):
        signal_, _ = click_track(bpm, seconds=12.0)
        made[bpm] = write_wav(folder / f"song{bpm}.wav", signal_)
    long_signal, _ = click_track(110, seconds=90.0)
    made["long"] = encode(write_wav(folder / "long.wav", long_signal), folder / "long.flac")
    return made


def copy_in(src: Path, inbox: Path, name: str) -> Path:
    """Write under a temp name, then rename: how a careful copier delivers."""
    temp = inbox / f".{name}.part"
    temp.write_bytes(src.read_bytes())
    final = inbox / name
    os.rename(temp, final)
    return final


def busy_worker(d: Daemon) -> int:
    """The pid of the worker the daemon reports busy (status is rewritten whenever a job is handed out)."""
    def find():
        rows = d.query("SELECT data FROM host_status")
        return next((w["pid"] for w in json.loads(rows[0][0])["workers"] if w["busy"]), None) if rows else None
    return wait_for(find, 30, "a busy worker in the daemon's status")


def test_notify_protocol_on_a_socket_the_test_owns(tmp_path):
    for address in (str(tmp_path / "n.sock"), f"@beatwatch-test-{os.getpid()}"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(address if not address.startswith("@") else "\0" + address[1:])
            notifier = Notifier(address, watchdog_usec="3000000")
            assert notifier.watchdog_interval_s == 1.5
            assert notifier.send(READY=1, STATUS="2/2 workers busy")
            assert sock.recv(256).decode().split("\n") == ["READY=1", "STATUS=2/2 workers busy"]
    assert not Notifier("", watchdog_usec="").send(READY=1)


def test_files_are_analysed_once_and_the_daemon_speaks_sd_notify(daemon, songs):
    d = daemon()
    for bpm in (96, 120, 144):
        copy_in(songs[bpm], d.inbox, f"song {bpm}.wav")
    copy_in(songs[96], d.inbox, "a copy of 96.wav")
    wait_for(lambda: d.drained(4), 120, "four jobs to finish")
    assert d.states() == {"done": 4}
    assert dict(d.query("SELECT path, outcome FROM jobs"))[str(d.inbox / "a copy of 96.wav")] == "linked"
    assert d.query("SELECT COUNT(*) FROM analyses") == [(3,)]
    tracks = dict(d.query("SELECT path, bpm FROM tracks"))
    assert tracks[str(d.inbox / "song 144.wav")] == pytest.approx(144, rel=0.03)
    assert len(list(d.inbox.glob("*.beatwatch.json"))) == 4
    d.wait_message("WATCHDOG=1", 10)
    assert any(m.startswith("STATUS=") for m in d.messages[1:])
    os.kill(d.proc.pid, signal.SIGHUP)
    d.wait_message("RELOADING=1", 10)
    assert d.stop() == 0
    assert "STOPPING=1" in "\n".join(d.recv_messages())


def test_kill_9_of_a_worker_mid_job_requeues_and_finishes_once(daemon, songs):
    d = daemon("[jobs]\nlease_s = 10\n")
    copy_in(songs["long"], d.inbox, "long.flac")
    running = wait_for(
        lambda: d.query("SELECT id FROM jobs WHERE state = 'running' AND stage NOT IN ('claimed', 'decode')"),
        60, "the long job to be mid-analysis")
    os.kill(busy_worker(d), signal.SIGKILL)
    wait_for(lambda: d.drained(1), 120, "the job to be retried and finish")
    assert d.query("SELECT state, attempts FROM jobs WHERE id = ?", running[0][0]) == [("done", 2)]
    assert d.query("SELECT COUNT(*) FROM analyses") == [(1,)]
    assert [p.name for p in d.inbox.iterdir() if "beatwatch" in p.name] == ["long.flac.beatwatch.json"]
    json.loads((d.inbox / "long.flac.beatwatch.json").read_text())
    assert not list(d.inbox.glob(".*.tmp"))


def test_a_stopped_worker_loses_its_lease_and_its_late_result_is_discarded(daemon, songs):
    d = daemon("[jobs]\nlease_s = 4\ntimeout_s = 600\n")
    copy_in(songs["long"], d.inbox, "long.flac")
    wait_for(lambda: d.query("SELECT 1 FROM jobs WHERE state = 'running' AND stage NOT IN ('claimed', 'decode')"),
             60, "the job to be mid-analysis")
    stopped = busy_worker(d)
    assert len(d.worker_pids()) == 2
    os.kill(stopped, signal.SIGSTOP)
    try:
        wait_for(lambda: d.query("SELECT 1 FROM jobs WHERE state = 'done'"), 120, "the other worker to finish the job")
        first_analysis = d.query("SELECT id, created_at FROM analyses")
    finally:
        os.kill(stopped, signal.SIGCONT)
    assert d.query("SELECT attempts FROM jobs") == [(2,)]
    wait_for(lambda: "late result discarded" in (d.root / "daemon.log").read_text(), 60,
             "the stopped worker's late result to arrive and be discarded")
    assert d.query("SELECT id, created_at FROM analyses") == first_analysis
    assert d.query("SELECT state, attempts FROM jobs") == [("done", 2)]


def test_bad_files_and_odd_names_each_end_done_or_failed(daemon, songs):
    d = daemon()
    inbox = d.inbox
    good = songs[120].read_bytes()
    names = ["with spaces.wav", "colon:name.wav", "-leading-dash.wav", "new\nline.wav", "x" * 246 + ".wav"]
    for name in names:
        (inbox / name).write_bytes(good)
    (inbox / os.fsdecode(b"caf\xe9 latin1.wav")).write_bytes(good)
    (inbox / "zero.wav").write_bytes(b"")
    (inbox / "text.mp3").write_text("definitely not audio\n" * 100)
    (inbox / "truncated.wav").write_bytes(good[: len(good) // 4])
    flac = songs["long"].read_bytes()
    (inbox / "corrupt.flac").write_bytes(flac[:2000] + os.urandom(20000) + flac[22000:60000])
    wait_for(lambda: d.drained(10), 180, "every job to end")
    rows = {Path(p).name: (state, error) for p, state, error in d.query("SELECT path, state, error FROM jobs")}
    assert len(rows) == 10
    for name in [*names, "caf\ufffd latin1.wav"]:
        assert rows[name][0] == "done", (name, rows[name])
    for name in ("zero.wav", "text.mp3"):
        state, error = rows[name]
        assert state == "failed" and error and "\n" not in error.split(": ", 1)[1], (name, error)
    for name in ("truncated.wav", "corrupt.flac"):  # what survives decodes; a file that does not fails with why
        state, error = rows[name]
        assert (state, error) == ("done", None) or (state == "failed" and error), (name, state, error)
    assert (inbox / os.fsdecode(b"caf\xe9 latin1.wav.beatwatch.json")).exists()
    assert d.stop() == 0


@pytest.mark.parametrize("behaviour,config,reason", [
    ("hang", "[jobs]\ntimeout_s = 4\nmax_attempts = 2\n", "timed out"),
    ("hog", "[jobs]\nmemory_mb = 700\nmax_attempts = 2\n", "memory"),
])
def test_a_decoder_that_hangs_or_hogs_memory_is_killed_at_its_limit(daemon, songs, tmp_path, behaviour, config,
                                                                     reason):
    """The decoder is an outside program; a misbehaving one is put first on PATH."""
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    body = {
        "hang": "import time\nwhile True: time.sleep(1)\n",
        "hog": "import time\nx = []\nwhile True:\n    x.append(bytearray(50 * 2**20)); time.sleep(0.05)\n",
    }[behaviour]
    script = fakebin / "ffprobe"
    script.write_text(f"#!{os.sys.executable}\n{body}")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    d = daemon(config, env={"PATH": f"{fakebin}:{os.environ['PATH']}"})
    copy_in(songs[96], d.inbox, "victim.wav")
    wait_for(lambda: d.drained(1), 120, "the job to fail after its attempts")
    state, attempts, error = d.query("SELECT state, attempts, error FROM jobs")[0]
    assert state == "failed" and attempts == 2
    assert reason in error or (behaviour == "hog" and "out of memory" in error), error
    assert len(d.worker_pids()) == 2, "killed workers are replaced"
    assert d.stop() == 0


def test_killing_the_daemon_and_starting_again_finishes_every_job_once(daemon, songs):
    d = daemon()
    copy_in(songs["long"], d.inbox, "long.flac")
    for bpm in (96, 120, 144):
        copy_in(songs[bpm], d.inbox, f"s{bpm}.wav")
    wait_for(lambda: d.query("SELECT 1 FROM jobs WHERE state = 'running'"), 60, "a running job")
    for pid in [*d.worker_pids(), d.proc.pid]:
        os.kill(pid, signal.SIGKILL)
    d.proc.wait(10)
    d2 = daemon()
    wait_for(lambda: d2.drained(4), 180, "all jobs after the restart")
    assert d2.states() == {"done": 4}
    assert d2.query("SELECT COUNT(*) FROM analyses") == [(4,)]
    assert d2.query("SELECT COUNT(*) FROM file_paths") == [(4,)]
    assert d2.stop() == 0


def test_sigterm_during_a_batch_exits_0_with_nothing_left_running(daemon, songs):
    d = daemon("[shutdown]\ngrace_s = 1\n")
    copy_in(songs["long"], d.inbox, "long.flac")
    for bpm in (96, 120):
        copy_in(songs[bpm], d.inbox, f"s{bpm}.wav")
    wait_for(lambda: d.query("SELECT 1 FROM jobs WHERE state = 'running'"), 60, "a running job")
    assert d.stop(signal.SIGTERM) == 0
    assert "running" not in d.states()
    assert d.worker_pids() == []


def test_after_move_and_plots(daemon, songs, tmp_path):
    crashed = [tmp_path / "inbox" / "sub" / ".old.wav.beatwatch.png.4242.0badcafe.tmp.png",
               tmp_path / "inbox" / ".old.wav.beatwatch.json.4242.0badcafe.tmp.json"]
    for stray in crashed:  # what a crash mid-write leaves of a plot and a sidecar
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_bytes(b"\x89PNG")
        os.utime(stray, (0, 0))
    d = daemon('[inbox]\nafter = "move"\n[output]\nplots = true\n')
    assert not any(stray.exists() for stray in crashed), "start-up cleans what crashed writes left"
    (d.inbox / "done").mkdir()
    (d.inbox / "done" / "song.wav").write_bytes(b"an older file of the same name, never overwritten")
    copy_in(songs[120], d.inbox, "song.wav")
    (d.inbox / "bad.mp3").write_text("not audio\n" * 10)
    wait_for(lambda: d.drained(2), 120, "both jobs")
    wait_for(lambda: (d.inbox / "failed" / "bad.mp3").exists(), 10, "the bad file to move to failed/")
    moved = d.inbox / "done" / "song (1).wav"
    assert moved.read_bytes() == songs[120].read_bytes()
    assert (d.inbox / "done" / "song.wav").read_bytes().startswith(b"an older file")
    assert not (d.inbox / "song.wav").exists()
    sidecar = d.inbox / "done" / "song (1).wav.beatwatch.json"
    plot = d.inbox / "done" / "song (1).wav.beatwatch.png"
    assert json.loads(sidecar.read_text())["summary"]["bpm"] == pytest.approx(120, rel=0.03)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    assert d.query("SELECT path, sidecar_path FROM tracks") == [(str(moved), str(sidecar))]
    assert d.states() == {"done": 1, "failed": 1}
    assert d.stop() == 0


def _inference_status(d: Daemon) -> str:
    rows = d.query("SELECT data FROM host_status")
    return json.loads(rows[0][0])["inference"] if rows else ""


def test_inference_process_serves_the_workers_and_is_restarted_after_kill_9(daemon, songs):
    d = daemon('[inference]\nmode = "process"\ndevice = "cpu"\n')
    status = wait_for(lambda: re.search(r"inference process \(pid (\d+), restarts: 0\) on cpu", _inference_status(d)),
                      30, "status to name the inference process")
    first_pid = int(status.group(1))
    copy_in(songs["long"], d.inbox, "long.flac")
    copy_in(songs[120], d.inbox, "song.wav")
    wait_for(lambda: d.query("SELECT id FROM jobs WHERE state = 'running' AND stage NOT IN ('claimed', 'decode')"),
             60, "a job to be mid-analysis")
    os.kill(first_pid, signal.SIGKILL)
    wait_for(lambda: d.drained(2), 180, "both jobs to finish through the restarted process")
    assert d.states() == {"done": 2}
    wait_for(lambda: re.search(r"inference process \(pid \d+, restarts: 1\) on cpu", _inference_status(d)),
             30, "status to count the restart")
    document = json.loads((d.inbox / "long.flac.beatwatch.json").read_text())
    assert document["analyzer"]["device"] == "cpu"
    assert document["analyzer"]["device_reason"].startswith("inference process: ")
    assert len(document["timeline"]["beats"]) > 150
    assert d.stop() == 0
    assert not psutil.pid_exists(first_pid)
