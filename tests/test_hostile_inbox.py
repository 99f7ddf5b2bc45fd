"""Issue 17, cases 1, 3 and 5: moves stay inside the inbox, only regular files are queued, symlinks by policy.

The daemon tests run the real daemon (tests/daemon_harness.py) against an
inbox a hostile user prepared; the unit tests pin each rule on its piece.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest

from beatwatch.daemon import protocol
from beatwatch.daemon.admission import refusal
from beatwatch.daemon.config import DEFAULT_IGNORE
from beatwatch.daemon.moves import UnsafeMove, move_aside
from beatwatch.daemon.stability import StabilityTracker
from beatwatch.daemon.supervisor import TIMEOUT_MARK
from beatwatch.daemon.watcher import NameFilter
from beatwatch.daemon.worker import run_task
from beatwatch.store import jobs
from tests.daemon_harness import BEATWATCH, Daemon, wait_for
from tests.helpers import click_track, write_wav

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    signal_, _ = click_track(120, seconds=12.0)
    return write_wav(tmp_path_factory.mktemp("songs") / "song.wav", signal_)


def log_text(d: Daemon) -> str:
    return (d.root / "daemon.log").read_text(errors="replace")


def job_paths(d: Daemon) -> set[str]:
    return {path for (path,) in d.query("SELECT path FROM jobs")}


# ----- case 1: inbox.after = "move" never writes outside the inbox ---------------------------------------------


@pytest.mark.slow
def test_moves_refuse_symlinked_done_and_failed_folders(daemon, song, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    inbox = tmp_path / "inbox"  # the daemon's (Daemon's root is tmp_path), prepared before it starts
    inbox.mkdir()
    (inbox / "done").symlink_to(elsewhere)
    (inbox / "failed").symlink_to(elsewhere)
    d = daemon('[inbox]\nafter = "move"\n')
    (inbox / "sub").mkdir()
    (inbox / "sub" / "song.wav").write_bytes(song.read_bytes())
    (inbox / "noise.wav").write_bytes(os.urandom(50_000))
    wait_for(lambda: d.drained(2), 120, "both jobs to finish")
    assert d.states() == {"done": 1, "failed": 1}
    assert list(elsewhere.iterdir()) == []
    assert (inbox / "sub" / "song.wav").read_bytes() == song.read_bytes()
    assert (inbox / "sub" / "song.wav.beatwatch.json").is_file()
    assert (inbox / "noise.wav").is_file()
    wait_for(lambda: log_text(d).count("symlink or not a folder; moves stay inside the inbox") >= 2, 10,
             "one error line per refused move")
    assert d.stop() == 0


def test_move_aside_refuses_a_symlinked_folder_anywhere_on_the_way(tmp_path):
    inbox, elsewhere = tmp_path / "inbox", tmp_path / "elsewhere"
    (inbox / "a").mkdir(parents=True)
    elsewhere.mkdir()
    (inbox / "done").mkdir()
    (inbox / "done" / "a").symlink_to(elsewhere)
    song = inbox / "a" / "x.wav"
    song.write_bytes(b"audio")
    with pytest.raises(UnsafeMove, match="symlink or not a folder"):
        move_aside(song, inbox, "done")
    assert song.read_bytes() == b"audio" and list(elsewhere.iterdir()) == []


def test_move_aside_moves_a_regular_file_and_never_a_symlink(tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "a").mkdir(parents=True)
    target = tmp_path / "outside.wav"
    target.write_bytes(b"theirs")
    link = inbox / "link.wav"
    link.symlink_to(target)
    with pytest.raises(UnsafeMove, match="symlink"):
        move_aside(link, inbox, "done")
    assert link.is_symlink() and target.read_bytes() == b"theirs"
    (inbox / "a" / "x.wav").write_bytes(b"one")
    (inbox / "done" / "a").mkdir(parents=True)
    (inbox / "done" / "a" / "x.wav").write_bytes(b"earlier")
    moved = move_aside(inbox / "a" / "x.wav", inbox, "done")
    assert moved == inbox / "done" / "a" / "x (1).wav" and moved.read_bytes() == b"one"
    assert not (inbox / "a" / "x.wav").exists()


def test_move_aside_refuses_a_source_folder_that_is_a_symlink(tmp_path):
    inbox, elsewhere = tmp_path / "inbox", tmp_path / "elsewhere"
    inbox.mkdir()
    elsewhere.mkdir()
    (elsewhere / "x.wav").write_bytes(b"theirs")
    (inbox / "sub").symlink_to(elsewhere)
    with pytest.raises(UnsafeMove):
        move_aside(inbox / "sub" / "x.wav", inbox, "done")
    assert (elsewhere / "x.wav").read_bytes() == b"theirs" and not (inbox / "done" / "sub").exists()


# ----- case 3: only regular files are queued; a second timeout is final --------------------------------------


@pytest.mark.slow
def test_fifos_and_device_links_are_never_queued(daemon, song):
    d = daemon()
    os.mkfifo(d.inbox / "pipe.wav")
    (d.inbox / "zero.wav").symlink_to("/dev/zero")
    (d.inbox / "urandom.flac").symlink_to("/dev/urandom")
    (d.inbox / "song.wav").write_bytes(song.read_bytes())
    wait_for(lambda: d.drained(1), 120, "the song's job to finish")
    assert job_paths(d) == {str(d.inbox / "song.wav")}
    assert d.states() == {"done": 1}
    text = log_text(d)
    for name in ("pipe.wav", "zero.wav", "urandom.flac"):
        assert f"ignored {d.inbox / name}" in text
    assert d.stop() == 0


def test_the_name_filter_admits_regular_files_only(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.mkfifo(inbox / "pipe.wav")
    (inbox / "zero.wav").symlink_to("/dev/zero")
    (inbox / "song.wav").write_bytes(b"x")
    names = NameFilter(inbox, DEFAULT_IGNORE, skip_result_folders=True, follow_symlinks="all")
    assert list(names.scan()) == [str(inbox / "song.wav")]
    assert refusal(inbox / "pipe.wav", inbox, "all") == "not a regular file"
    assert refusal(inbox / "zero.wav", inbox, "all") == "not a regular file"


def test_a_name_swapped_for_a_fifo_while_settling_is_dropped(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(b"x")
    tracker = StabilityTracker(settle_s=0.0)
    tracker.observe(str(path), 0.0)
    path.unlink()
    os.mkfifo(path)
    assert tracker.due(1.0) == [] and len(tracker) == 0


def test_the_worker_refuses_a_fifo_before_opening_it(engine, tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    task = protocol.Task(job_id=1, token="t", path=str(fifo), max_duration_s=60.0)
    # analyzer None: reaching the decoder would raise, and opening the FIFO would block this test for ever.
    outcome = run_task(None, engine, task, progress=lambda stage, fraction: None)
    assert outcome == protocol.Outcome("error", error=f"{fifo}: not a regular file", permanent=True)


@pytest.mark.slow
def test_the_daemon_fails_a_job_for_good_at_its_second_timeout(daemon, tmp_path):
    """A minute of audio cannot be analysed within 1.5 s: each attempt is killed at jobs.timeout_s, and the second
    in a row ends the job though max_attempts would allow three more."""
    long_song = write_wav(tmp_path / "long.wav", click_track(120, seconds=60.0)[0])
    d = daemon("[jobs]\ntimeout_s = 1.5\nmax_attempts = 5\n")
    (d.inbox / "long.wav").write_bytes(long_song.read_bytes())
    wait_for(lambda: d.states() == {"failed": 1}, 120, "the job to fail")
    ((attempts, error),) = d.query("SELECT attempts, error FROM jobs")
    assert attempts == 2
    assert error == f"{d.inbox / 'long.wav'}: timed out after 1.5 s {TIMEOUT_MARK}"
    assert log_text(d).count("exceeded jobs.timeout_s") == 2
    assert d.stop() == 0


def _claim(engine, now: float) -> jobs.Job:
    job = jobs.claim(engine, "w1", lease_s=60.0, now=now)
    assert job is not None
    return job


def test_the_second_timeout_in_a_row_fails_the_job_for_good(engine):
    jobs.enqueue(engine, "/in/hang.wav", size=10, mtime=1.0, now=T0)
    timeout = f"/in/hang.wav: timed out after 5 s {TIMEOUT_MARK}"
    states = []
    for n in range(2):
        job = _claim(engine, T0 + n * 10_000)
        states.append(jobs.fail(engine, job.id, "w1", error=timeout, permanent=False, now=T0 + n * 10_000 + 1,
                                max_attempts=5, permanent_if_repeated=TIMEOUT_MARK))
    assert states == ["retry_wait", "failed"]
    assert jobs.job_for_path(engine, "/in/hang.wav").attempts == 2


def test_a_timeout_after_another_kind_of_kill_is_still_transient(engine):
    jobs.enqueue(engine, "/in/big.wav", size=10, mtime=1.0, now=T0)
    errors = ["/in/big.wav: used 3000 MB, more than jobs.memory_mb = 2048",
              f"/in/big.wav: timed out after 5 s {TIMEOUT_MARK}",
              "/in/big.wav: used 3000 MB, more than jobs.memory_mb = 2048"]
    states = []
    for n, error in enumerate(errors):
        job = _claim(engine, T0 + n * 10_000)
        states.append(jobs.fail(engine, job.id, "w1", error=error, permanent=False, now=T0 + n * 10_000 + 1,
                                max_attempts=5, permanent_if_repeated=TIMEOUT_MARK))
    assert states == ["retry_wait", "retry_wait", "retry_wait"]


# ----- case 5: symlinks out of the inbox are not followed (inbox.follow_symlinks) ---------------------------


@pytest.mark.slow
def test_a_symlink_to_a_file_outside_the_inbox_is_not_analysed(daemon, song, tmp_path):
    d = daemon()
    (d.inbox / "passwd.wav").symlink_to("/etc/passwd")
    (d.inbox / "real").mkdir()
    (d.inbox / "real" / "song.wav").write_bytes(song.read_bytes())
    (d.inbox / "alias.wav").symlink_to(d.inbox / "real" / "song.wav")
    wait_for(lambda: d.drained(2), 120, "the song and its inside alias to finish")
    assert job_paths(d) == {str(d.inbox / "real" / "song.wav"), str(d.inbox / "alias.wav")}
    assert d.states() == {"done": 2}
    assert 'passwd.wav: resolves to /etc/passwd, outside the inbox (inbox.follow_symlinks = "inside")' \
        in log_text(d)
    assert d.stop() == 0


def test_follow_symlinks_all_opts_in_to_outside_regular_files(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    outside = tmp_path / "theirs.wav"
    outside.write_bytes(b"x")
    (inbox / "link.wav").symlink_to(outside)
    (inbox / "sub").symlink_to(tmp_path)
    assert "outside the inbox" in refusal(inbox / "link.wav", inbox, "inside")
    assert "outside the inbox" in refusal(inbox / "sub" / "theirs.wav", inbox, "inside")
    assert refusal(inbox / "link.wav", inbox, "all") is None
    inside = NameFilter(inbox, DEFAULT_IGNORE, skip_result_folders=True)
    assert list(inside.scan()) == []


def test_a_refused_path_is_logged_once(tmp_path, caplog):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "passwd.wav").symlink_to("/etc/passwd")
    names = NameFilter(inbox, DEFAULT_IGNORE, skip_result_folders=True)
    with caplog.at_level(logging.WARNING):
        assert not names.admits(inbox / "passwd.wav")
        assert not names.admits(inbox / "passwd.wav")
    assert len(caplog.records) == 1


def test_the_worker_refuses_an_outside_link_swapped_in_after_queueing(engine, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "passwd.wav").symlink_to("/etc/passwd")
    task = protocol.Task(job_id=1, token="t", path=str(inbox / "passwd.wav"), max_duration_s=60.0,
                         inbox=str(inbox), follow_symlinks="inside")
    outcome = run_task(None, engine, task, progress=lambda stage, fraction: None)
    assert outcome.kind == "error" and outcome.permanent
    assert "outside the inbox" in (outcome.error or "")


# ----- case 2: names that are not valid UTF-8 keep their exact bytes as their identity ---------------------------


@pytest.mark.slow
def test_two_names_differing_only_in_invalid_bytes_get_two_jobs_ever(daemon, song, tmp_path):
    """Both print as "x\uFFFD.wav"; a rescan (the daemon's, every second, and `beatwatch rescan`) must find each
    one's own finished job: before, each rescan queued one of them again, for ever."""
    other = write_wav(tmp_path / "other.wav", click_track(100, seconds=12.0)[0])
    d = daemon(env={"BEATWATCH_WATCH__RESCAN_INTERVAL_S": "1"})
    (d.inbox / os.fsdecode(b"x\xff.wav")).write_bytes(song.read_bytes())
    (d.inbox / os.fsdecode(b"x\xfe.wav")).write_bytes(other.read_bytes())
    wait_for(lambda: d.drained(2), 120, "both jobs to finish")
    for _ in range(2):
        rescan = subprocess.run([BEATWATCH, "rescan", "--config", str(d.config)], capture_output=True, text=True,
                                check=True)
        assert "queued 0 new" in rescan.stdout
    assert d.query("SELECT count(*) FROM jobs") == [(2,)]
    assert sorted(raw for (raw,) in d.query("SELECT raw_path FROM jobs")) == sorted(
        [os.fsencode(d.inbox) + b"/x\xfe.wav", os.fsencode(d.inbox) + b"/x\xff.wav"])
    assert d.states() == {"done": 2}
    # Beyond the queue: a file_paths and a tracks row each, under its own exact bytes, with its own content.
    names = sorted(d.query("SELECT raw_path, content_hash FROM tracks"))
    assert [raw for raw, _ in names] == [os.fsencode(d.inbox) + b"/x\xfe.wav", os.fsencode(d.inbox) + b"/x\xff.wav"]
    assert len({content for _, content in names}) == 2
    assert d.query("SELECT count(*) FROM file_paths") == [(2,)]
    assert (d.inbox / os.fsdecode(b"x\xff.wav.beatwatch.json")).is_file()
    assert (d.inbox / os.fsdecode(b"x\xfe.wav.beatwatch.json")).is_file()
    assert d.stop() == 0


# ----- also tried: a 255-byte name in a folder whose path is longer than PATH_MAX ------------------------------


def test_a_folder_past_path_max_is_reported_once_not_skipped_in_silence(tmp_path, caplog):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(18):  # 18 x 251 bytes: past the 4,096 bytes a path may have
            os.mkdir("d" * 250, dir_fd=fd)
            deeper = os.open("d" * 250, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = deeper
        os.close(os.open("s" * 251 + ".wav", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    finally:
        os.close(fd)
    names = NameFilter(inbox, DEFAULT_IGNORE, skip_result_folders=False)
    with caplog.at_level(logging.WARNING, logger="beatwatch.daemon.watcher"):
        assert list(names.scan()) == list(names.scan()) == []
    (record,) = [r for r in caplog.records if "cannot look into" in r.getMessage()]
    assert "File name too long" in record.getMessage() and "nothing below it is analysed" in record.getMessage()
