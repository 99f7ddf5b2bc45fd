"""The reconcile pass streams: a library is walked, looked up and queued a batch at a time, and a pass that finds
nothing new writes nothing. Real files in a temp folder, a real SQLite file, the real `beatwatch rescan`."""

from __future__ import annotations

import os
import time

from sqlalchemy import Engine, event

from beatwatch.daemon import cli
from beatwatch.daemon.config import DEFAULT_IGNORE
from beatwatch.daemon.intake import Intake
from beatwatch.daemon.reconcile import BATCH
from beatwatch.daemon.watcher import NameFilter
from beatwatch.store import jobs
from beatwatch.store.db import open_database, sqlite_url

FILES = 20_000


def test_rescan_holds_one_batch_of_names_at_a_time_and_a_second_rescan_writes_nothing(tmp_path, monkeypatch,
                                                                                      capsys):
    inbox = tmp_path / "inbox"
    for n in range(FILES):
        folder = inbox / f"album{n // 1000:02}"
        if n % 1000 == 0:
            folder.mkdir(parents=True)
        os.close(os.open(folder / f"{n:05}.flac", os.O_CREAT | os.O_WRONLY, 0o644))
    config = tmp_path / "beatwatch.toml"
    config.write_text(f'[inbox]\npath = "{inbox}"\n[store]\nurl = "{sqlite_url(tmp_path / "b.db")}"\n'
                      '[watch]\nsettle_s = 0\nunclosed_settle_s = 0\n')

    walked = 0
    looked_up = 0
    held: list[int] = []  # names walked but not yet looked up, at each look-up
    scan = NameFilter.scan

    def counting_scan(self):
        nonlocal walked
        for path in scan(self):
            walked += 1
            yield path

    unqueued = jobs.unqueued

    def counting_unqueued(engine, items):
        nonlocal looked_up
        held.append(walked - looked_up)
        looked_up += len(items)
        return unqueued(engine, items)

    monkeypatch.setattr(NameFilter, "scan", counting_scan)
    monkeypatch.setattr(jobs, "unqueued", counting_unqueued)
    assert cli.main(["rescan", "--config", str(config)]) == 0
    assert capsys.readouterr().out.endswith(f"queued {FILES} new\n")
    assert walked == looked_up == FILES
    assert len(held) == FILES // BATCH and max(held) <= BATCH

    writes: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        assert cli.main(["rescan", "--config", str(config)]) == 0
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert capsys.readouterr().out == f"{FILES} file(s) in {inbox}; queued 0 new\n"
    assert writes == []


def test_the_daemon_queues_complete_files_from_its_walk_and_tracks_only_recent_ones(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    old = [inbox / f"old{n}.flac" for n in range(3)]
    for path in old:
        path.write_bytes(os.urandom(1024))
        os.utime(path, (time.time() - 60, time.time() - 60))
    (inbox / "new.flac").write_bytes(os.urandom(1024))
    engine = open_database(sqlite_url(tmp_path / "q.db"))
    intake = Intake(engine, NameFilter(inbox, DEFAULT_IGNORE, skip_result_folders=True), settle_s=5.0,
                    rescan_interval_s=3600, polling=False)
    intake.start()
    try:
        assert intake.step(time.monotonic()) == 3
        assert sorted(job.path for job in jobs.listing(engine)) == sorted(map(str, old))
        assert intake.pending == 1  # new.flac settles in the tracker; the library never enters it
    finally:
        intake.stop()
        engine.dispose()
