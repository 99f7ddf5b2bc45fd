"""Several hosts on one PostgreSQL database: wake-ups, `status` per host, and real daemons sharing one inbox."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time

import pytest
from sqlalchemy import create_engine, text

from beatwatch.daemon.instance import AlreadyRunning, check_host_name_free, this_machine
from beatwatch.daemon.status import render_text, status_data
from beatwatch.store import jobs
from beatwatch.store.clock import caller_clock
from beatwatch.store.daemon_status import write_status
from beatwatch.store.db import open_database
from beatwatch.store.records import save_timeline
from beatwatch.store.wakeups import Listener
from tests.daemon_harness import BEATWATCH, Daemon, wait_for
from tests.helpers import click_track, write_wav
from tests.test_store import make_doc

T0 = 1_700_000_000.0


def report(host: str, pid: int, *, at: float, state: str = "running") -> dict:
    return {"daemon": f"{host}:{pid}:abc", "pid": pid, "state": state, "updated_at": at,
            "throttle": "running (cpu 10%)", "workers_asleep": 0, "inference": f"in each worker on cpu ({host})",
            "workers": [{"name": "w0", "pid": pid + 1, "ready": True, "busy": False, "stage": "", "job_id": None,
                         "jobs_done": 3, "rss_mb": 300}],
            "pending_files": 0, "tags": None}


def test_status_shows_every_host_and_which_are_gone(any_engine):
    engine = caller_clock(any_engine)  # reports dated by the test's clock on PostgreSQL too
    write_status(engine, "studio-a", report("studio-a", 100, at=T0 + 55))
    write_status(engine, "studio-b", report("studio-b", 200, at=T0))
    write_status(engine, "studio-c", report("studio-c", 300, at=T0 + 10, state="stopped"))
    data = status_data(engine, now=T0 + 60)
    assert [(h["host"], h["alive"], h["gone"]) for h in data["hosts"]] == [
        ("studio-a", True, False), ("studio-b", False, True), ("studio-c", False, False)]
    lines = render_text(data).split("\n")
    assert "hosts:   3 (1 gone, 1 running, 1 stopped)" in lines
    assert "host studio-a: running (pid 100, updated 5 s ago)" in lines
    assert "  inference: in each worker on cpu (studio-a)" in lines
    assert "  worker w0 pid 101: idle (300 MB, 3 done)" in lines
    gone = next(line for line in lines if line.startswith("host studio-b:"))
    assert gone.startswith("host studio-b: gone (pid 200, updated 60 s ago); its jobs go to other hosts")
    assert not any("pid 201" in line for line in lines)  # a gone host's workers are not shown as if alive


def test_one_host_keeps_the_one_daemon_screen(any_engine):
    write_status(caller_clock(any_engine), "solo", report("solo", 100, at=T0))
    lines = render_text(status_data(caller_clock(any_engine), now=T0 + 3)).split("\n")
    assert "daemon:  running (pid 100, updated 3 s ago)" in lines
    assert not any(line.startswith("hosts:") for line in lines)


def test_a_listening_host_is_woken_when_another_queues_a_job(postgres):
    url = postgres.new_database()
    engine, other = open_database(url), open_database(url)
    listener = Listener.open(engine)
    assert listener is not None
    try:
        assert select.select([listener], [], [], 0.2)[0] == [] and not listener.drain()
        jobs.enqueue(other, "/library/inbox/a.flac", size=1, mtime=1.0, now=time.time())
        assert select.select([listener], [], [], 5)[0] == [listener]
        assert listener.drain()
        assert not listener.drain()  # one notice per commit, read once
        assert jobs.enqueue(other, "/library/inbox/a.flac", size=1, mtime=1.0, now=time.time()) is None
        assert select.select([listener], [], [], 0.3)[0] == []  # nothing queued, nobody woken
    finally:
        listener.close()
        engine.dispose()
        other.dispose()


class HostDaemon(Daemon):
    """A daemon on a PostgreSQL database under its own host name; the harness's queries go to that database."""

    def __init__(self, root, *, url: str, host: str, inbox, config: str = "") -> None:
        super().__init__(root, config=f'[store]\nurl = "{url}"\nhost_name = "{host}"\n'
                                       f'[inbox]\npath = "{inbox}"\n' + config,
                         env={"BEATWATCH_WORKERS__COUNT": "1"})
        self.host = host
        self.db = create_engine(url)

    def query(self, sql: str, *args) -> list[tuple]:
        assert not args
        with self.db.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]

    def workers_ready(self) -> bool:
        rows = self.query(f"SELECT data FROM host_status WHERE host = '{self.host}'")
        workers = json.loads(rows[0][0])["workers"] if rows else []
        return bool(workers) and all(w["ready"] for w in workers)

    def close(self) -> None:
        super().close()
        self.db.dispose()


@pytest.mark.slow
def test_two_hosts_share_one_inbox_and_one_takes_over_when_the_other_is_killed(postgres, tmp_path):
    """40 files, two daemons with their own host names; one is killed with kill -9 (daemon and workers) while it
    holds jobs: the other takes them over once their leases run out, and every file ends done exactly once."""
    url = postgres.new_database()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = "[jobs]\nlease_s = 5\n"
    hosts = [HostDaemon(tmp_path / name, url=url, host=name, inbox=inbox, config=config) for name in ("a", "b")]
    try:
        for d in hosts:
            d.start()
        songs = tmp_path / "songs"
        songs.mkdir()
        for n in range(40):
            signal_, _ = click_track(80 + 2 * n, seconds=6.0)
            wav = write_wav(songs / f"song{n:02}.wav", signal_)
            os.rename(wav, inbox / wav.name)
        a, b = hosts
        wait_for(lambda: a.query("SELECT 1 FROM jobs WHERE state = 'running' AND lease_owner LIKE 'a:%'"), 120,
                 "a job running on host a")
        for pid in [*a.worker_pids(), a.proc.pid]:
            os.kill(pid, signal.SIGKILL)
        a.proc.wait(10)
        held = [job_id for (job_id,) in b.query("SELECT id FROM jobs WHERE state = 'running'"
                                                " AND lease_owner LIKE 'a:%'")]
        assert held, "host a held a job when it was killed"
        wait_for(lambda: b.drained(40), 300, "every job done by host b")
        assert b.states() == {"done": 40}
        assert b.query("SELECT count(*) FROM jobs") == [(40,)]
        assert b.query("SELECT count(*), count(DISTINCT file_id) FROM analyses") == [(40, 40)]
        assert b.query("SELECT count(*), count(DISTINCT path) FROM file_paths") == [(40, 40)]
        taken_over = b.query("SELECT state, attempts FROM jobs WHERE id IN (" + ", ".join(map(str, held)) + ")")
        assert taken_over == [("done", 2)] * len(held)  # claimed by a, then by b once a's lease ran out
        assert b.query("SELECT count(*) FROM jobs WHERE lease_owner IS NOT NULL") == [(0,)]
        assert "lost its lease" in (tmp_path / "b" / "daemon.log").read_text()
        status = b.query("SELECT host FROM host_status ORDER BY host")
        assert status == [("a",), ("b",)]
        assert b.stop() == 0
        assert b.query("SELECT count(*) FROM jobs WHERE state = 'running'") == [(0,)]
    finally:
        for d in hosts:
            d.close()


@pytest.mark.slow
def test_the_commands_work_on_postgresql(postgres, tmp_path):
    """status, jobs, retry, show, rescan and prune: the real commands in subprocesses, on a PostgreSQL URL."""
    url = postgres.new_database()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = tmp_path / "beatwatch.toml"
    config.write_text(f'[store]\nurl = "{url}"\n[inbox]\npath = "{inbox}"\n[watch]\nsettle_s = 0\n')
    engine = open_database(url)
    try:
        sidecar = tmp_path / "kept.mp3.beatwatch.json"
        document = make_doc(path=str(tmp_path / "kept.mp3"), content_hash="c" * 64)
        sidecar.write_text(json.dumps(document))
        save_timeline(engine, document, sidecar_path=str(sidecar))
        save_timeline(engine, make_doc(path=str(tmp_path / "gone.mp3"), content_hash="d" * 64), sidecar_path=None)
        (tmp_path / "kept.mp3").write_bytes(b"kept")
        bad = jobs.enqueue(engine, str(inbox / "bad.mp3"), size=1, mtime=1.0, now=time.time())
        claimed = jobs.claim(engine, "elsewhere:1:w0", lease_s=60, now=time.time())
        jobs.fail(engine, claimed.id, "elsewhere:1:w0", error="not an audio file", permanent=True, now=time.time(),
                  max_attempts=3)
        write_wav(inbox / "new.wav", click_track(120, seconds=2.0)[0])

        status = beatwatch(config, "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["queue"]["failed"] == 1
        listed = beatwatch(config, "jobs", "--json")
        assert [job["id"] for job in json.loads(listed.stdout)] == [bad]
        retried = beatwatch(config, "retry", "--failed")
        assert retried.returncode == 0 and retried.stdout.strip() == f"requeued 1 job(s): {bad}"
        shown = beatwatch(config, "show", "c" * 12)
        assert shown.returncode == 0 and "kept.mp3" in shown.stdout, shown.stderr
        rescanned = beatwatch(config, "rescan")
        assert rescanned.returncode == 0, rescanned.stderr
        assert "queued 1 new" in rescanned.stdout and "1 analysed file(s) newly missing" in rescanned.stdout
        pruned = beatwatch(config, "prune")
        assert pruned.returncode == 0 and f"removed {tmp_path / 'gone.mp3'}" in pruned.stdout
        with engine.connect() as conn:
            assert conn.execute(text("SELECT path FROM tracks")).scalars().all() == [str(tmp_path / "kept.mp3")]
            assert conn.execute(text("SELECT path, state FROM jobs ORDER BY id")).all() == [
                (str(inbox / "bad.mp3"), "queued"), (str(inbox / "new.wav"), "queued")]
    finally:
        engine.dispose()


def beatwatch(config, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEATWATCH_")}
    return subprocess.run([BEATWATCH, *args, "--config", str(config)], cwd=config.parent, env=env,
                          capture_output=True, text=True, timeout=120)


def test_one_daemon_per_host_name_but_a_crashed_ones_restart_goes_ahead():
    mine, dead = this_machine(), 2 ** 22 + 17  # above pid_max's default: no such process
    live = {"host": "studio-a", "state": "running", "updated_at": T0 - 5, "pid": os.getpid()}
    for report in ({**live, "machine": "other-box 1234"}, {**live, "machine": mine}):
        with pytest.raises(AlreadyRunning, match="store.host_name = 'studio-a'"):
            check_host_name_free([report], "studio-a", now=T0, fresh_s=30)
    for report in ({**live, "machine": mine, "pid": dead}, {**live, "machine": "other-box 1234", "updated_at": T0 - 31},
                   {**live, "machine": "other-box 1234", "state": "stopped"}, {**live, "host": "studio-b"}):
        check_host_name_free([report], "studio-a", now=T0, fresh_s=30)


def test_a_second_daemon_under_a_live_host_name_is_refused_in_one_line(postgres, tmp_path):
    url = postgres.new_database()
    engine = open_database(url)
    try:
        write_status(engine, "studio-a", {**report("studio-a", 100, at=time.time()), "machine": "other-box 1234"})
    finally:
        engine.dispose()
    config = tmp_path / "beatwatch.toml"
    config.write_text(f'[store]\nurl = "{url}"\nhost_name = "studio-a"\n[inbox]\npath = "{tmp_path / "inbox"}"\n')
    refused = beatwatch(config, "run")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "already runs as store.host_name = 'studio-a'" in refused.stderr


def test_a_listener_whose_connection_dies_says_so_and_wakes_its_waiter(postgres):
    """The supervisor then falls back to polling and listens again later; it must not wait on a dead socket."""
    url = postgres.new_database()
    engine = open_database(url)
    listener = Listener.open(engine)
    assert listener is not None
    try:
        with engine.begin() as conn:
            killed = conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                       " WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()")).scalars().all()
        assert killed == [True]
        assert select.select([listener], [], [], 5)[0] == [listener]
        with pytest.raises(Exception, match="terminat|closed|lost"):
            listener.drain()
    finally:
        listener.close()
        engine.dispose()
