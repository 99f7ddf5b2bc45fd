"""Idle workers exit after workers.idle_exit_s and come back when work arrives: the real daemon, real processes."""

from __future__ import annotations

import json

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
