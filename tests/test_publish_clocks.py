"""A result is refused for a file changed while it was analysed, and kept for one left alone, whatever the clocks:
the claim's time is the database's (PostgreSQL) or the host's, the file's ctime its file server's, and they may
be minutes apart. Each case on SQLite and PostgreSQL, the queue following a skewed clock."""

from __future__ import annotations

import os
import time

import pytest

from beatwatch.daemon.publish import FileChanged, Publisher, file_stamp
from beatwatch.store import jobs
from beatwatch.store.clock import caller_clock
from tests.test_publish import song, tracks

SKEW_S = 300.0


@pytest.mark.parametrize("skew", [SKEW_S, -SKEW_S], ids=["queue clock ahead", "queue clock behind"])
def test_a_file_rewritten_during_analysis_is_refused(any_engine, tmp_path, skew):
    engine = caller_clock(any_engine)
    audio, document = song(tmp_path / "inbox")
    jobs.enqueue(engine, str(audio), size=4, mtime=1.0, now=time.time() + skew)
    job = jobs.claim(engine, "b:1:w0", lease_s=600, now=time.time() + skew)
    opened = file_stamp(audio.stat())
    time.sleep(0.01)
    with open(audio, "r+b") as handle:  # rewritten in place, the same inode, its mtime set back as `touch -d` can
        handle.write(b"RIFX")
    os.utime(audio, (1.0, 1.0))
    with pytest.raises(FileChanged, match="changed during analysis"):
        Publisher(engine).publish_job(document, str(audio), job_id=job.id, token="b:1:w0", outcome="analysed",
                                      opened=opened, now=time.time() + skew)
    assert tracks(engine) == [] and jobs.job_for_path(engine, str(audio)).state == "running"


@pytest.mark.parametrize("skew", [SKEW_S, -SKEW_S], ids=["queue clock ahead", "queue clock behind"])
def test_a_file_left_alone_is_published(any_engine, tmp_path, skew):
    engine = caller_clock(any_engine)
    jobs.enqueue(engine, str(tmp_path / "inbox" / "song.wav"), size=4, mtime=1.0, now=time.time() + skew)
    job = jobs.claim(engine, "b:1:w0", lease_s=600, now=time.time() + skew)
    audio, document = song(tmp_path / "inbox")  # written after the claim by the queue's clock when it runs behind
    opened = file_stamp(audio.stat())
    target = Publisher(engine).publish_job(document, str(audio), job_id=job.id, token="b:1:w0", outcome="analysed",
                                           opened=opened, now=time.time() + skew)
    assert target is not None and tracks(engine) == [(str(audio), str(target))]
