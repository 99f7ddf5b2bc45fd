"""Copies of one song on two hosts sharing a PostgreSQL database: one analysis, the other linked to it, and no
wait without end for a host that died while analysing."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from beatwatch.daemon.publish import Publisher, file_stamp
from beatwatch.store import jobs
from beatwatch.store.content_turns import take_content
from beatwatch.store.db import open_database
from tests.daemon_harness import wait_for
from tests.helpers import click_track, write_wav
from tests.test_many_hosts import HostDaemon

LEASE = 5.0
TIMEOUT = 12.0


@contextmanager
def host_a_analysing(engine, path, owner: str, *, arriving_from=None) -> Iterator[tuple[jobs.Job, threading.Event]]:
    """Host a's worker, played by the test: it claims `path`, holds its content's turn and heartbeats until the
    event is set (a finished analysis, or a host that died). A file `arriving_from` elsewhere is moved to `path`
    once claimed, so host b's watcher finds it taken."""
    source = arriving_from or path
    stat = os.stat(source)
    with engine.begin() as conn:  # queued and claimed in one step: host b, woken by a queued job, could take it
        job_id = conn.execute(text(
            "INSERT INTO jobs (path, state, attempts, size, mtime, lease_owner, lease_expires, stage, progress,"
            " created_at, updated_at, started_at) SELECT :path, 'running', 1, :size, :mtime, :owner, now + :lease,"
            " 'claimed', 0, now, now, now FROM (SELECT extract(epoch FROM clock_timestamp())::float8 AS now) AS t"
            " RETURNING id"), {"path": str(path), "size": stat.st_size, "mtime": stat.st_mtime, "owner": owner,
                               "lease": LEASE}).scalar_one()
    [job] = jobs.listing(engine, ids=[job_id])
    assert take_content(engine, job.id, owner, hashlib.sha256(source.read_bytes()).hexdigest(),
                        now=time.time()) is None
    if arriving_from is not None:
        os.rename(arriving_from, path)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(1.0):
            jobs.heartbeat(engine, job.id, owner, lease_s=LEASE, now=time.time())

    beating = threading.Thread(target=beat, daemon=True)
    beating.start()
    try:
        yield job, stop
    finally:
        stop.set()
        beating.join()


@pytest.mark.slow
def test_a_copy_on_another_host_waits_and_links_and_a_dead_hosts_copy_is_analysed(postgres, analyzer, tmp_path):
    """Host a is the test (host_a_analysing); host b a real daemon with one worker on the same database and inbox."""
    url = postgres.new_database()
    engine = open_database(url)
    inbox, songs = tmp_path / "inbox", tmp_path / "songs"
    inbox.mkdir()
    songs.mkdir()
    live = write_wav(inbox / "live.wav", click_track(100, seconds=6.0)[0])
    dead = write_wav(songs / "dead.wav", click_track(130, seconds=6.0)[0])
    b = HostDaemon(tmp_path / "b", url=url, host="b", inbox=inbox,
                   config=f"[jobs]\nlease_s = {LEASE}\ntimeout_s = {TIMEOUT}\n")
    log = tmp_path / "b" / "daemon.log"
    try:
        with host_a_analysing(engine, live, "a:1:w0") as (job, finished):
            b.start()
            shutil.copy(live, songs / "live copy.wav")
            os.rename(songs / "live copy.wav", inbox / "live copy.wav")
            wait_for(lambda: f"job {job.id} on another host" in log.read_text(), 60, "b to wait for host a's job")
            assert b.query("SELECT stage FROM jobs WHERE path LIKE '%live copy.wav'") == [("waiting",)]
            time.sleep(TIMEOUT + 2)  # waiting is not analysing: jobs.timeout_s does not end the wait
            opened = file_stamp(live.stat())
            document = analyzer.analyze(live)
            finished.set()
            assert Publisher(engine).publish_job(document, str(live), job_id=job.id, token="a:1:w0",
                                                 outcome="analysed", opened=opened, now=time.time())
        wait_for(lambda: b.drained(2), 60, "b to link its copy")
        assert b.query("SELECT outcome, attempts FROM jobs WHERE path LIKE '%live copy.wav'") == [("linked", 1)]
        assert "timed out" not in log.read_text()

        with host_a_analysing(engine, inbox / "dead.wav", "a:1:w1", arriving_from=dead) as (job, died):
            shutil.copy(inbox / "dead.wav", songs / "dead copy.wav")
            os.rename(songs / "dead copy.wav", inbox / "dead copy.wav")
            wait_for(lambda: f"job {job.id} on another host" in log.read_text(), 60, "b to wait for host a's job")
            died.set()
        wait_for(lambda: b.drained(4), 120, "b to analyse its copy, then take over the dead host's job")

        assert b.states() == {"done": 4}
        outcomes = dict(b.query("SELECT path, outcome FROM jobs"))
        assert outcomes == {str(live): "analysed", str(inbox / "live copy.wav"): "linked",
                            str(inbox / "dead copy.wav"): "analysed", str(inbox / "dead.wav"): "linked"}
        assert b.query("SELECT attempts, lease_owner FROM jobs WHERE path LIKE '%/dead.wav'") == [(2, None)]
        assert b.query("SELECT count(*), count(DISTINCT file_id) FROM analyses") == [(2, 2)]
        assert b.query("SELECT count(*) FROM file_paths") == [(4,)]
        assert b.stop() == 0
    finally:
        b.close()
        engine.dispose()
