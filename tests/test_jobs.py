"""The job queue against a real SQLite file and a real PostgreSQL database, with a fake clock: claims, leases,
backoff, dedupe, requeues; and, on PostgreSQL, the database's clock against a host's skewed one."""

from __future__ import annotations

import os

import threading
import time
from functools import partial

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from beatwatch.store import jobs
from beatwatch.store.clock import caller_clock, database_now
from beatwatch.store.db import open_database
from beatwatch.analysis.document import SCHEMA
from beatwatch.store.records import save_timeline, save_timeline_in
from beatwatch.store.transactions import write_transaction

T0 = 1_700_000_000.0
LEASE = 30.0


@pytest.fixture
def engine(any_engine):
    """Each backend in turn, following the tests' fake clock on PostgreSQL too."""
    return caller_clock(any_engine)


def doc(path: str, content_hash: str = "a" * 64) -> dict:
    return {"schema": SCHEMA, "file": {"path": path, "content_hash": content_hash, "duration": 180.0},
            "analyzer": {"version": "test"}}


def queued_and_claimed(engine: Engine, path: str = "/in/a.mp3", owner: str = "w1") -> jobs.Job:
    jobs.enqueue(engine, path, size=10, mtime=1.0, now=T0)
    job = jobs.claim(engine, owner, lease_s=LEASE, now=T0)
    assert job is not None and job.path == path
    return job


def rows(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def test_claim_takes_the_oldest_job_and_leases_it(engine):
    first = jobs.enqueue(engine, "/in/a.mp3", size=10, mtime=1.0, now=T0)
    jobs.enqueue(engine, "/in/b.mp3", size=20, mtime=2.0, now=T0 + 1)
    job = jobs.claim(engine, "w1", lease_s=LEASE, now=T0 + 5)
    assert job is not None
    assert (job.id, job.state, job.attempts, job.lease_owner) == (first, "running", 1, "w1")
    assert (job.lease_expires, job.started_at, job.stage, job.progress) == (T0 + 5 + LEASE, T0 + 5, "claimed", 0.0)
    assert (job.size, job.mtime, job.created_at, job.force) == (10, 1.0, T0, False)
    assert jobs.claim(engine, "w2", lease_s=LEASE, now=T0 + 5).path == "/in/b.mp3"
    assert jobs.claim(engine, "w3", lease_s=LEASE, now=T0 + 5) is None


def test_concurrent_claimers_take_every_job_exactly_once(engine, store_url):
    """Separate engines stand in for separate processes (or hosts); SQLite's lock or PostgreSQL's row locks are
    what they contend on.

    Each claimer works its job like a worker (heartbeat, complete), so claims interleave with other writes.
    """
    expected = jobs.enqueue_many(engine, [(f"/in/{n}.mp3", n, 1.0) for n in range(50)], now=T0)
    claimers = 4
    start = threading.Barrier(claimers)
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def claimer(owner: str) -> None:
        own = caller_clock(open_database(store_url))
        try:
            start.wait()
            mine = claimed.setdefault(owner, [])
            while (job := jobs.claim(own, owner, lease_s=LEASE, now=T0)) is not None:
                mine.append(job.id)
                assert jobs.heartbeat(own, job.id, owner, lease_s=LEASE, now=T0, progress=0.5)
                assert jobs.complete(own, job.id, owner, now=T0, write=lambda conn: None)
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    every = [job_id for ids in claimed.values() for job_id in ids]
    assert sorted(every) == sorted(expected)
    assert len(set(every)) == len(every) == 50
    assert jobs.counts(engine)["done"] == 50


def test_a_stale_worker_loses_its_lease_and_its_write_never_runs(engine):
    stale = queued_and_claimed(engine, owner="stale")
    assert jobs.expire_leases(engine, now=T0 + LEASE - 1, max_attempts=3) == []
    assert jobs.expire_leases(engine, now=T0 + LEASE + 1, max_attempts=3) == [stale.id]
    fresh = jobs.claim(engine, "fresh", lease_s=LEASE, now=T0 + LEASE + 2)
    assert (fresh.id, fresh.attempts) == (stale.id, 2)

    def stale_write(conn: Connection) -> int:
        raise AssertionError("a worker without the lease must not write")

    now = T0 + LEASE + 3
    assert not jobs.heartbeat(engine, stale.id, "stale", lease_s=LEASE, now=now, progress=0.9)
    assert not jobs.complete(engine, stale.id, "stale", now=now, write=stale_write)
    assert jobs.fail(engine, stale.id, "stale", error="late", permanent=True, now=now, max_attempts=3) is None
    assert not jobs.release(engine, stale.id, "stale", now=now)
    job = jobs.job_for_path(engine, "/in/a.mp3")
    assert (job.state, job.lease_owner, job.progress, job.error) == (
        "running", "fresh", 0.0, "lease expired on attempt 1 of 3: the worker died or stalled")

    write = partial(save_timeline_in, doc=doc("/in/a.mp3"), sidecar_path="/in/a.mp3.beatwatch.json")
    assert jobs.complete(engine, fresh.id, "fresh", now=now, write=write, content_hash="a" * 64,
                         audio_duration=180.0, wall_s=3.0)
    job = jobs.job_for_path(engine, "/in/a.mp3")
    assert (job.state, job.lease_owner, job.lease_expires, job.error, job.outcome) == ("done", None, None, None,
                                                                                       "analysed")
    assert (job.stage, job.progress, job.finished_at, job.content_hash) == ("done", 1.0, now, "a" * 64)
    assert job.analysis_id == rows(engine, "SELECT id FROM analyses")[0][0]


def test_a_lease_run_out_but_not_taken_back_is_still_held(engine):
    job = queued_and_claimed(engine)
    late = T0 + 10 * LEASE
    assert jobs.heartbeat(engine, job.id, "w1", lease_s=LEASE, now=late)
    assert jobs.expire_leases(engine, now=late + 1, max_attempts=3) == []
    assert jobs.complete(engine, job.id, "w1", now=late + 2, write=lambda conn: None, outcome="linked")
    assert jobs.job_for_path(engine, "/in/a.mp3").analysis_id is None


def test_heartbeat_extends_the_lease_and_records_progress(engine):
    job = queued_and_claimed(engine)
    for n in range(1, 6):
        now = T0 + n * (LEASE - 1)
        assert jobs.heartbeat(engine, job.id, "w1", lease_s=LEASE, now=now, stage="rhythm", progress=n / 5)
        assert jobs.expire_leases(engine, now=now + 1, max_attempts=3) == []
    assert jobs.heartbeat(engine, job.id, "w1", lease_s=LEASE, now=T0 + 200, progress=1.0000001)
    assert jobs.heartbeat(engine, job.id, "w1", lease_s=LEASE, now=T0 + 201)
    (running,) = jobs.running(engine)
    assert (running.stage, running.progress, running.lease_expires) == ("rhythm", 1.0, T0 + 201 + LEASE)
    assert not jobs.heartbeat(engine, job.id, "w2", lease_s=LEASE, now=T0 + 202)


def test_a_failing_write_stores_nothing_and_keeps_the_lease(engine):
    job = queued_and_claimed(engine)

    def write(conn: Connection) -> int:
        save_timeline_in(conn, doc("/in/a.mp3"), sidecar_path=None)
        raise OSError("disk full")

    with pytest.raises(OSError):
        jobs.complete(engine, job.id, "w1", now=T0 + 1, write=write)
    assert rows(engine, "SELECT count(*) FROM analyses") == [(0,)]
    assert jobs.job_for_path(engine, "/in/a.mp3").state == "running"
    state = jobs.fail(engine, job.id, "w1", error="disk full", permanent=False, now=T0 + 2, max_attempts=3)
    assert state == "retry_wait"


@pytest.mark.parametrize("rng, factor", [(lambda: 0.0, 0.5), (lambda: 0.999, 1.499)])
def test_transient_errors_back_off_exponentially_within_the_jitter_bounds(engine, rng, factor):
    jobs.enqueue(engine, "/in/a.mp3", size=10, mtime=1.0, now=T0)
    now, delays = T0, []
    for attempt in range(1, 10):
        job = jobs.claim(engine, "w1", lease_s=LEASE, now=now)
        assert job.attempts == attempt
        state = jobs.fail(engine, job.id, "w1", error="share offline", permanent=False, now=now, max_attempts=20,
                          backoff_base_s=5.0, backoff_max_s=600.0, rng=rng)
        assert state == "retry_wait"
        waiting = jobs.job_for_path(engine, "/in/a.mp3")
        delays.append(waiting.not_before - now)
        assert jobs.claim(engine, "w1", lease_s=LEASE, now=waiting.not_before - 0.001) is None
        now = waiting.not_before
    expected = [min(600.0, 5.0 * 2 ** (n - 1)) * factor for n in range(1, 10)]
    assert delays == pytest.approx(expected)


def test_a_permanent_error_fails_at_once(engine):
    job = queued_and_claimed(engine)
    state = jobs.fail(engine, job.id, "w1", error="not audio: text/plain", permanent=True, now=T0 + 1, max_attempts=3)
    assert state == "failed"
    failed = jobs.job_for_path(engine, "/in/a.mp3")
    assert (failed.state, failed.attempts, failed.error, failed.finished_at) == ("failed", 1, "not audio: text/plain",
                                                                                 T0 + 1)
    assert (failed.lease_owner, failed.not_before) == (None, None)
    assert jobs.claim(engine, "w1", lease_s=LEASE, now=T0 + 10_000) is None


def test_the_last_attempt_fails_for_good(engine):
    jobs.enqueue(engine, "/in/a.mp3", size=10, mtime=1.0, now=T0)
    now, states = T0, []
    while (job := jobs.claim(engine, "w1", lease_s=LEASE, now=now)) is not None:
        states.append(jobs.fail(engine, job.id, "w1", error="timeout", permanent=False, now=now, max_attempts=3))
        now += 10_000
    assert states == ["retry_wait", "retry_wait", "failed"]
    assert jobs.job_for_path(engine, "/in/a.mp3").attempts == 3


def test_expired_leases_fail_the_job_once_attempts_run_out(engine):
    queued_and_claimed(engine)
    now = T0 + LEASE + 1
    jobs.expire_leases(engine, now=now, max_attempts=2)
    assert jobs.claim(engine, "w1", lease_s=LEASE, now=now) is not None
    (job_id,) = jobs.expire_leases(engine, now=now + LEASE + 1, max_attempts=2)
    job = jobs.job_for_path(engine, "/in/a.mp3")
    assert (job.id, job.state, job.attempts) == (job_id, "failed", 2)
    assert job.error == "lease expired on attempt 2 of 2: the worker died or stalled"


def test_enqueue_skips_active_and_already_handled_files(engine):
    first = jobs.enqueue(engine, "/in/a.mp3", size=10, mtime=1.0, now=T0)
    assert first is not None
    assert jobs.enqueue(engine, "/in/a.mp3", size=10, mtime=1.0, now=T0) is None
    assert jobs.enqueue(engine, "/in/a.mp3", size=99, mtime=9.0, now=T0) is None  # still queued
    job = jobs.claim(engine, "w1", lease_s=LEASE, now=T0)
    assert jobs.enqueue(engine, "/in/a.mp3", size=10, mtime=1.0, now=T0) is None  # running
    assert jobs.complete(engine, job.id, "w1", now=T0 + 1, write=lambda conn: None)
    assert jobs.enqueue(engine, "/in/a.mp3", size=10, mtime=1.0, now=T0 + 2) is None  # done, unchanged

    changed = jobs.enqueue(engine, "/in/a.mp3", size=10, mtime=2.0, now=T0 + 3)
    assert changed is not None and changed != first
    job = jobs.claim(engine, "w1", lease_s=LEASE, now=T0 + 3)
    jobs.fail(engine, job.id, "w1", error="undecodable", permanent=True, now=T0 + 4, max_attempts=3)
    assert jobs.enqueue(engine, "/in/a.mp3", size=10, mtime=2.0, now=T0 + 5) is None  # failed, unchanged
    assert jobs.enqueue(engine, "/in/a.mp3", size=11, mtime=2.0, now=T0 + 6) is not None


def test_enqueue_many_handles_a_whole_inbox_in_one_call(engine):
    items = [(f"/in/{n:05}.mp3", n, float(n)) for n in range(2_000)]
    ids = jobs.enqueue_many(engine, items, now=T0)
    assert len(ids) == 2_000 == len(set(ids))
    assert rows(engine, "SELECT path FROM jobs ORDER BY id") == [(path,) for path, _, _ in items]
    job = jobs.claim(engine, "w1", lease_s=LEASE, now=T0)
    jobs.complete(engine, job.id, "w1", now=T0, write=lambda conn: None)

    again = [*items, ("/in/new.mp3", 1, 1.0), ("/in/new.mp3", 2, 2.0), (items[0][0], 0, 0.5)]
    new = jobs.enqueue_many(engine, again, now=T0 + 1)
    assert len(new) == 1
    added = jobs.job_for_path(engine, "/in/new.mp3")
    assert (added.id, added.size) == (new[0], 1)
    assert jobs.enqueue_many(engine, [], now=T0) == []


def test_names_that_differ_only_in_bytes_that_are_not_utf8_are_two_names_for_good(engine):
    """Both show as "x\uFFFD.wav"; if either stood for the other, every rescan would queue one of them again."""
    ff, fe = os.fsdecode(b"/in/x\xff.wav"), os.fsdecode(b"/in/x\xfe.wav")
    both = [(ff, 10, 1.0), (fe, 20, 2.0)]
    first = jobs.enqueue_many(engine, both, now=T0)
    assert len(first) == 2
    assert rows(engine, "SELECT path FROM jobs") == [("/in/x\ufffd.wav",)] * 2
    for n in range(2):
        job = jobs.claim(engine, "w1", lease_s=LEASE, now=T0 + n)
        assert jobs.complete(engine, job.id, "w1", now=T0 + n, write=lambda conn: None)
    for rescan in range(5):
        assert jobs.enqueue_many(engine, both, now=T0 + 10 + rescan) == []
    assert rows(engine, "SELECT count(*) FROM jobs") == [(2,)]
    assert (jobs.job_for_path(engine, ff).size, jobs.job_for_path(engine, fe).size) == (10, 20)
    assert jobs.job_for_path(engine, ff).path == ff

    assert len(jobs.retry(engine, ids=first[:1], now=T0 + 20)) == 1
    assert rows(engine, "SELECT state FROM jobs ORDER BY id") == [("queued",), ("done",)]
    assert jobs.enqueue_many(engine, both, now=T0 + 21) == []


def test_start_up_requeues_what_a_crash_left_running(engine):
    jobs.enqueue_many(engine, [("/in/a.mp3", 1, 1.0), ("/in/b.mp3", 2, 2.0), ("/in/c.mp3", 3, 3.0)], now=T0)
    for owner in ("w1", "w2"):
        jobs.claim(engine, owner, lease_s=LEASE, now=T0)
    assert jobs.requeue_all_running(engine, now=T0 + 1) == 2
    assert jobs.counts(engine)["queued"] == 3
    assert rows(engine, "SELECT attempts, lease_owner, lease_expires FROM jobs ORDER BY id") == [
        (1, None, None), (1, None, None), (0, None, None)]


def test_release_gives_the_attempt_back(engine):
    job = queued_and_claimed(engine)
    assert jobs.release(engine, job.id, "w1", now=T0 + 1)
    released = jobs.job_for_path(engine, "/in/a.mp3")
    assert (released.state, released.attempts, released.lease_owner, released.started_at) == ("queued", 0, None, None)
    assert not jobs.release(engine, job.id, "w1", now=T0 + 2)


def test_retry_starts_failed_and_chosen_done_jobs_over(engine):
    ids = jobs.enqueue_many(engine, [(f"/in/{n}.mp3", n, 1.0) for n in range(4)], now=T0)
    for n in range(4):
        job = jobs.claim(engine, "w1", lease_s=LEASE, now=T0)
        if n < 2:
            jobs.fail(engine, job.id, "w1", error="bad", permanent=True, now=T0, max_attempts=3)
        else:
            jobs.complete(engine, job.id, "w1", now=T0, write=lambda conn: None, content_hash="c" * 64)

    assert jobs.retry(engine, ids=[ids[0], ids[2]], failed_only=True, now=T0 + 1) == [ids[0]]
    assert len(jobs.retry(engine, ids=[ids[2]], now=T0 + 1)) == 1
    assert len(jobs.retry(engine, ids=[], now=T0 + 1)) == 0
    assert jobs.counts(engine) == {"queued": 2, "running": 0, "retry_wait": 0, "done": 1, "failed": 1}
    assert len(jobs.retry(engine, now=T0 + 2)) == 1
    assert jobs.counts(engine)["failed"] == 0
    retried = jobs.job_for_path(engine, "/in/2.mp3")
    assert (retried.state, retried.attempts, retried.error, retried.content_hash, retried.finished_at) == (
        "queued", 0, None, None, None)
    assert retried.force and jobs.claim(engine, "w1", lease_s=LEASE, now=T0 + 3).force


def test_retry_leaves_a_paths_older_jobs_alone(engine):
    old = queued_and_claimed(engine)
    jobs.fail(engine, old.id, "w1", error="bad", permanent=True, now=T0, max_attempts=3)
    newer = jobs.enqueue(engine, "/in/a.mp3", size=10, mtime=2.0, now=T0 + 1)
    assert len(jobs.retry(engine, ids=[old.id], now=T0 + 2)) == 0
    job = jobs.claim(engine, "w1", lease_s=LEASE, now=T0 + 2)
    jobs.fail(engine, job.id, "w1", error="bad", permanent=True, now=T0 + 3, max_attempts=3)
    assert len(jobs.retry(engine, now=T0 + 4)) == 1
    assert jobs.job_for_path(engine, "/in/a.mp3").id == newer
    assert jobs.counts(engine)["failed"] == 1


def test_counts_name_every_state(engine):
    assert jobs.counts(engine) == {"queued": 0, "running": 0, "retry_wait": 0, "done": 0, "failed": 0}
    jobs.enqueue_many(engine, [("/in/a.mp3", 1, 1.0), ("/in/b.mp3", 2, 2.0)], now=T0)
    jobs.claim(engine, "w1", lease_s=LEASE, now=T0)
    assert jobs.counts(engine) == {"queued": 1, "running": 1, "retry_wait": 0, "done": 0, "failed": 0}


def test_one_active_job_per_path_is_enforced_by_the_schema(engine):
    insert = text("INSERT INTO jobs (path, state) VALUES ('/in/a.mp3', :state)")
    with write_transaction(engine) as conn:
        for state in ("done", "failed", "done", "queued"):
            conn.execute(insert, {"state": state})
    for state in ("queued", "running", "retry_wait"):
        with pytest.raises(IntegrityError), write_transaction(engine) as conn:
            conn.execute(insert, {"state": state})
    with pytest.raises(IntegrityError), write_transaction(engine) as conn:
        conn.execute(insert, {"state": "paused"})


def test_deleting_an_analysis_keeps_its_job(engine):
    analysis_id = save_timeline(engine, doc("/in/a.mp3"), sidecar_path=None)
    job = queued_and_claimed(engine)
    jobs.complete(engine, job.id, "w1", now=T0, write=lambda conn: analysis_id)
    with write_transaction(engine) as conn:
        conn.execute(text("DELETE FROM analyses"))
    done = jobs.job_for_path(engine, "/in/a.mp3")
    assert (done.state, done.analysis_id) == ("done", None)


def test_throughput_is_audio_seconds_per_wall_second_over_the_recent_past(engine):
    assert jobs.recent_throughput(engine, now=T0) == 0.0
    jobs.enqueue_many(engine, [(f"/in/{n}.mp3", n, 1.0) for n in range(3)], now=T0)
    finished = [(T0, T0 + 10, 200.0, "analysed"), (T0 + 10, T0 + 30, 400.0, "analysed"),
                (T0 + 30, T0 + 31, 999.0, "linked")]
    for started, ended, audio, outcome in finished:
        job = jobs.claim(engine, "w1", lease_s=LEASE, now=started)
        jobs.complete(engine, job.id, "w1", now=ended, write=lambda conn: None, outcome=outcome,
                      audio_duration=audio)
    assert jobs.recent_throughput(engine, now=T0 + 40) == pytest.approx(600.0 / 40)
    assert jobs.recent_throughput(engine, now=T0 + 100, window_s=80) == pytest.approx(400.0 / 80)
    assert jobs.recent_throughput(engine, now=T0 + 1_000, window_s=600) == 0.0


@pytest.fixture
def pg_engine(postgres):
    """PostgreSQL with the queue on the database's clock, as the daemon runs it."""
    engine = open_database(postgres.new_database())
    yield engine
    engine.dispose()


def test_a_host_whose_clock_is_an_hour_off_neither_steals_nor_keeps_a_lease(pg_engine):
    """Lease times come from the database's clock: each host's `now` is an hour out, the other way each time."""
    slow, fast = time.time() - 3600, time.time() + 3600
    jobs.enqueue(pg_engine, "/in/a.mp3", size=10, mtime=1.0, now=slow)
    job = jobs.claim(pg_engine, "host-a:w1", lease_s=LEASE, now=slow)
    database = database_now(pg_engine)
    assert job is not None and database < job.lease_expires <= database + LEASE
    assert jobs.expire_leases(pg_engine, now=fast, max_attempts=3) == []
    assert jobs.heartbeat(pg_engine, job.id, "host-a:w1", lease_s=0.2, now=fast)
    time.sleep(0.3)
    assert jobs.expire_leases(pg_engine, now=slow, max_attempts=3) == [job.id]
    assert jobs.claim(pg_engine, "host-b:w1", lease_s=LEASE, now=slow).lease_owner == "host-b:w1"


def test_backoff_runs_on_the_database_clock(pg_engine):
    jobs.enqueue(pg_engine, "/in/a.mp3", size=10, mtime=1.0, now=0.0)
    job = jobs.claim(pg_engine, "w1", lease_s=LEASE, now=0.0)
    before = database_now(pg_engine)
    assert jobs.fail(pg_engine, job.id, "w1", error="share offline", permanent=False, now=0.0, max_attempts=3,
                     backoff_base_s=100.0, rng=lambda: 0.5) == "retry_wait"
    waiting = jobs.job_for_path(pg_engine, "/in/a.mp3")
    assert before + 100.0 <= waiting.not_before <= database_now(pg_engine) + 100.0
    assert jobs.claim(pg_engine, "w1", lease_s=LEASE, now=waiting.not_before + 1) is None


def test_a_claim_passes_over_a_row_another_host_holds_locked(pg_engine):
    """SKIP LOCKED: a claimer never waits for, nor gives up at, a row in another claimer's open transaction."""
    first, second = jobs.enqueue_many(pg_engine, [("/in/a.mp3", 1, 1.0), ("/in/b.mp3", 2, 2.0)], now=T0)
    with pg_engine.connect() as other, other.begin():
        other.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": first})
        job = jobs.claim(pg_engine, "w1", lease_s=LEASE, now=T0)
        assert job is not None and job.id == second
        assert jobs.claim(pg_engine, "w2", lease_s=LEASE, now=T0) is None
    assert jobs.claim(pg_engine, "w2", lease_s=LEASE, now=T0).id == first


def test_two_hosts_queueing_one_inbox_at_once_queue_each_file_once(postgres):
    """Every watcher offers every file; the unique index on active names, not a look-up, keeps one job each."""
    url = postgres.new_database()
    open_database(url).dispose()
    paths = [(f"/library/inbox/{n:03}.flac", n, 1.0) for n in range(200)]
    start = threading.Barrier(4)
    added: list[list[int]] = []
    errors: list[BaseException] = []

    def watcher() -> None:
        own = open_database(url)
        try:
            start.wait()
            for offset in range(0, len(paths), 20):
                added.append(jobs.enqueue_many(own, paths[offset:offset + 20], now=time.time()))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=watcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    ids = [job_id for batch in added for job_id in batch]
    assert len(ids) == len(set(ids)) == len(paths)
