"""Jobs on different hosts take turns on one content through the job rows: the holder, a waiter, a holder that
finished, a holder whose host died, and many hosts asking at once; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine, text

from beatwatch.store import jobs
from beatwatch.store.clock import caller_clock
from beatwatch.store.content_turns import take_content
from beatwatch.store.db import open_database

T0 = 1_700_000_000.0
LEASE = 30.0
SONG = "e" * 64


def claimed(engine: Engine, path: str, owner: str, *, now: float = T0) -> jobs.Job:
    jobs.enqueue(engine, path, size=1, mtime=1.0, now=now)
    job = jobs.claim(engine, owner, lease_s=LEASE, now=now)
    assert job is not None and job.path == path
    return job


def test_the_second_job_of_a_content_waits_for_the_first_then_takes_its_turn(any_engine):
    engine = caller_clock(any_engine)
    first = claimed(engine, "/a/inbox/song.flac", "a:1:w0")
    second = claimed(engine, "/b/inbox/copy of song.flac", "b:2:w0")
    other = claimed(engine, "/b/inbox/other.flac", "b:2:w1")
    assert take_content(engine, first.id, "a:1:w0", SONG, now=T0 + 1) is None
    assert take_content(engine, second.id, "b:2:w0", SONG, now=T0 + 2) == first.id
    assert take_content(engine, other.id, "b:2:w1", "f" * 64, now=T0 + 2) is None  # other content: no wait
    assert take_content(engine, first.id, "a:1:w0", SONG, now=T0 + 3) is None  # the holder asking again keeps it
    assert jobs.complete(engine, first.id, "a:1:w0", now=T0 + 4, write=lambda conn: None, content_hash=SONG)
    assert take_content(engine, second.id, "b:2:w0", SONG, now=T0 + 5) is None
    with engine.connect() as conn:
        holders = conn.execute(text("SELECT id FROM jobs WHERE state = 'running' AND content_hash = :h"),
                               {"h": SONG}).scalars().all()
    assert holders == [second.id]


def test_a_dead_hosts_turn_ends_with_its_lease(any_engine):
    """Host a died holding the content: host b waits while a's lease is live, then goes, without a's lease having
    been taken back yet; a's job claimed again holds nothing until it asks."""
    engine = caller_clock(any_engine)
    dead = claimed(engine, "/a/inbox/song.flac", "a:1:w0")
    assert take_content(engine, dead.id, "a:1:w0", SONG, now=T0) is None
    waiter = claimed(engine, "/b/inbox/copy.flac", "b:2:w0", now=T0 + 10)
    assert take_content(engine, waiter.id, "b:2:w0", SONG, now=T0 + LEASE - 1) == dead.id
    assert take_content(engine, waiter.id, "b:2:w0", SONG, now=T0 + LEASE + 1) is None
    assert jobs.expire_leases(engine, now=T0 + LEASE + 2, max_attempts=3) == [dead.id]
    again = jobs.claim(engine, "b:2:w1", lease_s=LEASE, now=T0 + LEASE + 3)
    assert again is not None and (again.id, again.content_hash) == (dead.id, None)
    assert take_content(engine, again.id, "b:2:w1", SONG, now=T0 + LEASE + 4) == waiter.id


def test_a_job_that_lost_its_lease_takes_no_turn(any_engine):
    """Its work may go on (its result will be refused) but it holds the content for nobody."""
    engine = caller_clock(any_engine)
    lost = claimed(engine, "/a/inbox/song.flac", "a:1:w0")
    assert jobs.expire_leases(engine, now=T0 + LEASE + 1, max_attempts=3) == [lost.id]
    assert take_content(engine, lost.id, "a:1:w0", SONG, now=T0 + LEASE + 2) is None
    assert jobs.listing(engine, ids=[lost.id])[0].content_hash is None


def test_hosts_asking_at_once_get_one_holder(store_url):
    """Separate engines stand in for hosts; each asks for the same content for its own job at the same moment."""
    engine = open_database(store_url)
    hosts = 6
    try:
        owners = [f"h{n}:1:w0" for n in range(hosts)]
        ids = [claimed(engine, f"/h{n}/inbox/song.flac", owner, now=time.time()).id for n, owner in enumerate(owners)]
        start = threading.Barrier(hosts)
        answers: dict[int, int | None] = {}
        errors: list[BaseException] = []

        def host(n: int) -> None:
            own = open_database(store_url)
            try:
                start.wait()
                answers[ids[n]] = take_content(own, ids[n], owners[n], SONG, now=time.time())
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                own.dispose()

        threads = [threading.Thread(target=host, args=(n,)) for n in range(hosts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        holders = [job_id for job_id, holder in answers.items() if holder is None]
        assert len(holders) == 1 and len(answers) == hosts
        assert {holder for holder in answers.values() if holder is not None} == set(holders)
    finally:
        engine.dispose()
