"""A file beatwatch itself rewrote (its tags) is not queued again, on SQLite and PostgreSQL, for plain and for
non-UTF-8 names alike: the daemon's output.write_tags on a shared database must not analyse each file twice; and
two hosts storing the same tagged hash at once both succeed."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import text

from beatwatch.store import jobs
from beatwatch.store.clock import caller_clock
from beatwatch.store.db import open_database
from beatwatch.store.records import add_alias, content_hashes, save_timeline
from tests.test_store import make_doc

T0 = 1_700_000_000.0


@pytest.mark.parametrize("name", ["/music/inbox/song.mp3", os.fsdecode(b"/music/inbox/caf\xe9.mp3")])
def test_a_rewrite_noted_is_not_a_change_and_a_later_edit_is(any_engine, name):
    engine = caller_clock(any_engine)
    assert jobs.enqueue(engine, name, size=100, mtime=1.0, now=T0) is not None
    job = jobs.claim(engine, "b:1:w0", lease_s=60, now=T0)
    assert jobs.complete(engine, job.id, "b:1:w0", now=T0 + 1, write=lambda conn: None)
    jobs.note_rewritten(engine, name, size=180, mtime=2.0)
    assert jobs.enqueue(engine, name, size=180, mtime=2.0, now=T0 + 2) is None
    assert jobs.job_for_path(engine, name).id == job.id
    assert jobs.enqueue(engine, name, size=190, mtime=3.0, now=T0 + 3) is not None


def test_two_hosts_storing_one_tagged_hash_at_once_both_succeed(postgres):
    """Host b's alias insert is in but not committed when host a adds the same one: a waits, then keeps b's."""
    url = postgres.new_database()
    engine = open_database(url)
    try:
        save_timeline(engine, make_doc(path="/music/song.mp3", content_hash="a" * 64), sidecar_path=None)
        with engine.connect() as conn:
            file_id = conn.execute(text("SELECT id FROM files")).scalar_one()
        errors: list[BaseException] = []

        def host_a() -> None:
            try:
                add_alias(engine, "a" * 64, "b" * 64)
            except BaseException as exc:  # reported below
                errors.append(exc)

        with engine.connect() as host_b, host_b.begin():
            host_b.execute(text("INSERT INTO content_aliases (content_hash, file_id) VALUES (:alias, :file_id)"),
                           {"alias": "b" * 64, "file_id": file_id})
            adding = threading.Thread(target=host_a)
            adding.start()
            adding.join(timeout=1.0)
            assert adding.is_alive(), "host a waits for host b's uncommitted alias"
        adding.join(timeout=30)
        assert errors == []
        assert content_hashes(engine, "b" * 64) == {"a" * 64, "b" * 64}
    finally:
        engine.dispose()
