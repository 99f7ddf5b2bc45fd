"""`retry` while a watcher (this host's or another's) queues the same files: no error, one active job per file,
and `beatwatch retry` says which ids another job got to first; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import threading
import time

from sqlalchemy import Engine, text

from beatwatch.store import jobs
from beatwatch.store.db import open_database
from tests.daemon_harness import BEATWATCH

PATHS = [f"/library/inbox/{n:02}.flac" for n in range(40)]


def failed_jobs(engine: Engine) -> list[int]:
    """A failed job for every path, as after a share went away."""
    ids = jobs.enqueue_many(engine, [(path, 1, 1.0) for path in PATHS], now=time.time())
    while (job := jobs.claim(engine, "a:1:w0", lease_s=60, now=time.time())) is not None:
        jobs.fail(engine, job.id, "a:1:w0", error="unreadable", permanent=True, now=time.time(), max_attempts=3)
    return ids


def active_per_path(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT path, count(*) FROM jobs WHERE state IN ('queued', 'running',"
                                      " 'retry_wait') GROUP BY path")).tuples().all())


def test_retry_and_a_watcher_queueing_the_same_files_at_once_queue_each_once(store_url):
    """The files changed (new size), so the watcher queues each anew while `retry --failed` requeues each job."""
    engine = open_database(store_url)
    try:
        failed = failed_jobs(engine)
        start = threading.Barrier(2)
        results: dict[str, list[int]] = {}
        errors: list[BaseException] = []

        def run(name: str, action) -> None:
            own = open_database(store_url)
            try:
                start.wait()
                results[name] = action(own)
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                own.dispose()

        def watcher(own: Engine) -> list[int]:
            added = []
            for offset in range(0, len(PATHS), 5):
                added += jobs.enqueue_many(own, [(path, 2, 2.0) for path in PATHS[offset:offset + 5]],
                                           now=time.time())
            return added

        threads = [threading.Thread(target=run, args=("retry", lambda own: jobs.retry(own, now=time.time()))),
                   threading.Thread(target=run, args=("watcher", watcher))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert active_per_path(engine) == {path: 1 for path in PATHS}
        assert set(results["retry"]) <= set(failed)
        assert len(results["retry"]) + len(results["watcher"]) == len(PATHS)
    finally:
        engine.dispose()


def test_retry_waiting_on_another_hosts_uncommitted_job_leaves_it_the_file(postgres):
    """The collision itself, made certain: host b's watcher has inserted the file's new job but not committed
    when `retry` requeues the old one, which must then wait for it and give way, not fail on the unique index."""
    url = postgres.new_database()
    engine = open_database(url)
    try:
        [old] = failed_jobs_for(engine, PATHS[0])
        done: list[list[int]] = []
        with engine.connect() as other, other.begin():
            other.execute(text("INSERT INTO jobs (path, state, attempts, size, mtime, created_at, updated_at)"
                               " VALUES (:path, 'queued', 0, 2, 2.0, 0, 0)"), {"path": PATHS[0]})
            retrying = threading.Thread(target=lambda: done.append(jobs.retry(engine, ids=[old], now=time.time())))
            retrying.start()
            retrying.join(timeout=1.0)
            assert retrying.is_alive(), "retry waits for the other host's uncommitted row"
        retrying.join(timeout=30)
        assert done == [[]]
        assert active_per_path(engine) == {PATHS[0]: 1}
        assert jobs.listing(engine, ids=[old])[0].state == "failed"
    finally:
        engine.dispose()


def failed_jobs_for(engine: Engine, path: str) -> list[int]:
    ids = jobs.enqueue_many(engine, [(path, 1, 1.0)], now=time.time())
    job = jobs.claim(engine, "a:1:w0", lease_s=60, now=time.time())
    jobs.fail(engine, job.id, "a:1:w0", error="unreadable", permanent=True, now=time.time(), max_attempts=3)
    return ids


def test_the_command_names_a_job_another_got_to_first(store_url, tmp_path):
    engine = open_database(store_url)
    try:
        [old] = failed_jobs_for(engine, PATHS[0])
        [other] = failed_jobs_for(engine, PATHS[1])
        [again] = jobs.enqueue_many(engine, [(PATHS[0], 2, 2.0)], now=time.time())
    finally:
        engine.dispose()
    config = tmp_path / "beatwatch.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n')
    env = {name: value for name, value in os.environ.items() if not name.startswith("BEATWATCH_")}
    result = subprocess.run([BEATWATCH, "retry", str(old), str(other), "--config", str(config)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"requeued 1 job(s): {other}",
        f"job {old} not requeued: {PATHS[0]} is queued already, as job {again} (queued)"]
