"""A file beatwatch itself rewrote (its tags) is not queued again, on SQLite and PostgreSQL, for plain and for
non-UTF-8 names alike: the daemon's output.write_tags on a shared database must not analyse each file twice."""

from __future__ import annotations

import os

import pytest

from beatwatch.store import jobs
from beatwatch.store.clock import caller_clock

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
