"""Idle workers exit after workers.idle_exit_s and come back when work arrives: the real daemon, real processes."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.daemon_harness import wait_for
from tests.helpers import click_track, write_wav


def _asleep(d) -> int:
    rows = d.query("SELECT data FROM host_status")
    return json.loads(rows[0][0]).get("workers_asleep", 0) if rows else 0


@pytest.mark.slow
def test_idle_workers_exit_and_one_starts_again_for_a_new_file(daemon, tmp_path):
    d = daemon(env={"BEATWATCH_WORKERS__IDLE_EXIT_S": "3"})
    first = set(d.worker_pids())
    assert len(first) == 2
    wait_for(lambda: d.worker_pids() == [], 30, "the idle workers to exit")
    wait_for(lambda: _asleep(d) == 2, 15, "status to count them asleep")
    assert d.proc.poll() is None

    signal, _ = click_track(120, seconds=8.0)
    write_wav(tmp_path / "src.wav", signal).rename(d.inbox / "late.wav")
    woken = wait_for(lambda: d.worker_pids(), 30, "a worker to start for the new file")
    assert len(woken) == 1 and not set(woken) & first  # one job waiting: one worker, a new process
    wait_for(lambda: d.query("SELECT 1 FROM jobs WHERE state = 'done'"), 120, "the new file to be analysed")
    assert (d.inbox / "late.wav.beatwatch.json").exists()
    wait_for(lambda: d.worker_pids() == [], 30, "the woken worker to exit again")
    assert d.stop() == 0
    log = (d.root / "daemon.log").read_text()
    assert "idle for 3 s: exiting (workers.idle_exit_s)" in log


@pytest.mark.slow
def test_no_worker_wakes_while_the_throttle_holds_jobs_back(daemon, tmp_path):
    """A worker woken for a held-back job would only idle out and wake again, loading its models each time."""
    d = daemon(env={"BEATWATCH_WORKERS__IDLE_EXIT_S": "2"})
    wait_for(lambda: d.worker_pids() == [], 30, "the idle workers to exit")
    relaxed = d.config.read_text()
    d.config.write_text(relaxed.replace("min_available_mb = 0", "min_available_mb = 100000000"))
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in (d.root / "daemon.log").read_text(), 15, "the reload")
    started = (d.root / "daemon.log").read_text().count("started worker")

    write_wav(tmp_path / "src.wav", click_track(120, seconds=8.0)[0]).rename(d.inbox / "held.wav")
    wait_for(lambda: d.query("SELECT 1 FROM jobs"), 15, "the file to be queued")
    time.sleep(8)  # four idle_exit_s: time enough to wake, idle out and wake again
    assert d.worker_pids() == []
    assert (d.root / "daemon.log").read_text().count("started worker") == started
    assert d.query("SELECT state FROM jobs") == [("queued",)]

    d.config.write_text(relaxed)
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: d.query("SELECT 1 FROM jobs WHERE state = 'done'"), 120, "the file once the throttle lets go")
    assert d.stop() == 0


def _inference(d) -> str:
    rows = d.query("SELECT data FROM host_status")
    return json.loads(rows[0][0])["inference"] if rows else ""


@pytest.mark.slow
def test_in_process_mode_the_inference_process_sleeps_with_the_workers(daemon, tmp_path):
    """Its models are most of an idle daemon's memory in this mode: it ends with the last worker, starts with the
    first one woken, and that is not counted as a restart after a crash."""
    d = daemon('[inference]\nmode = "process"\ndevice = "cpu"\n', env={"BEATWATCH_WORKERS__IDLE_EXIT_S": "3"})
    wait_for(lambda: d.worker_pids(), 60, "the workers and the inference process to start")
    wait_for(lambda: d.worker_pids() == [], 60, "the workers and the inference process to exit")
    wait_for(lambda: "asleep with the workers" in _inference(d), 15, "status to say the inference process sleeps")

    write_wav(tmp_path / "src.wav", click_track(120, seconds=8.0)[0]).rename(d.inbox / "late.wav")
    wait_for(lambda: d.query("SELECT 1 FROM jobs WHERE state = 'done'"), 180, "the new file to be analysed")
    document = json.loads((d.inbox / "late.wav.beatwatch.json").read_text())
    assert document["analyzer"]["device_reason"].startswith("inference process: ")
    assert "restarts: 0" in _inference(d)
    assert d.stop() == 0
    assert "inference process exiting: every worker is asleep" in (d.root / "daemon.log").read_text()
