"""`beatwatch jobs`, `retry` of unknown ids, `--version`, `status --json` and `show` after a copy, as a user runs
them: the real command in a subprocess over a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from beatwatch.store import jobs
from beatwatch.store.db import open_database, sqlite_url
from beatwatch.store.records import save_timeline
from tests.test_store import make_doc

BEATWATCH = str(Path(sys.executable).with_name("beatwatch"))


def beatwatch(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEATWATCH_")}
    return subprocess.run([BEATWATCH, *args, "--config", str(root / "beatwatch.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def queue(tmp_path):
    """Three jobs: one failed with a reason, one running half-way, one queued."""
    (tmp_path / "beatwatch.toml").write_text("")
    engine = open_database(sqlite_url(tmp_path / "beatwatch.db"))
    ids = jobs.enqueue_many(engine, [(f"/in/{name}", 1, 1.0) for name in ("bad.mp3", "long.flac", "next.wav")],
                            now=1000.0)
    bad = jobs.claim(engine, "w1", lease_s=60, now=1001.0)
    jobs.fail(engine, bad.id, "w1", error="/in/bad.mp3: not an audio file", permanent=True, now=1002.0,
              max_attempts=3)
    long = jobs.claim(engine, "w1", lease_s=1e9, now=1003.0)
    jobs.heartbeat(engine, long.id, "w1", lease_s=1e9, now=1004.0, stage="inference", progress=0.5)
    yield tmp_path, engine, ids
    engine.dispose()


def test_jobs_lists_ids_states_and_errors_and_filters(queue):
    root, _, (bad, long, nxt) = queue
    listed = beatwatch(root, "jobs")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[:2] for line in lines if line.split()[0].isdigit()] == [
        [str(nxt), "queued"], [str(long), "running"], [str(bad), "failed"]]
    assert "error: /in/bad.mp3: not an audio file" in listed.stdout
    failed = json.loads(beatwatch(root, "jobs", "--failed", "--json").stdout)
    assert [(j["id"], j["path"], j["state"], j["attempts"], j["error"]) for j in failed] == [
        (bad, "/in/bad.mp3", "failed", 1, "/in/bad.mp3: not an audio file")]
    assert failed[0]["created_at"] == 1000.0 and failed[0]["finished_at"] == 1002.0
    running = json.loads(beatwatch(root, "jobs", "--running", "--json").stdout)
    assert [j["id"] for j in running] == [long]


def test_retry_of_an_unknown_id_fails_naming_it(queue):
    root, engine, (bad, long, _) = queue
    result = beatwatch(root, "retry", "9999", str(long), str(bad))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "beatwatch: no job with id 9999",
        f"beatwatch: job {long} is running: only a file's latest done or failed job can be retried"]
    assert result.stdout.strip() == f"requeued 1 job(s): {bad}"
    assert jobs.listing(engine, ids=[bad])[0].state == "queued"


def test_status_json_has_the_queue_and_each_running_jobs_elapsed_time(queue):
    root, _, (_, long, _) = queue
    result = beatwatch(root, "status", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["queue"] == {"queued": 1, "running": 1, "retry_wait": 0, "done": 0, "failed": 1}
    assert data["config"] == str(root / "beatwatch.toml")
    [job] = data["running"]
    assert (job["id"], job["stage"], job["progress"]) == (long, "inference", 0.5)
    assert job["elapsed_s"] > 1000 and job["eta_s"] == pytest.approx(job["elapsed_s"], rel=0.01)
    text = beatwatch(root, "status").stdout
    assert "elapsed, ETA" in text and "per busy worker s" in text


def test_version():
    result = subprocess.run([BEATWATCH, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("beatwatch 0.") and "analyzer" in result.stdout


def test_show_of_the_original_after_a_copy_names_the_original(tmp_path):
    (tmp_path / "beatwatch.toml").write_text("")
    engine = open_database(sqlite_url(tmp_path / "beatwatch.db"))
    save_timeline(engine, make_doc(path="/inbox/song.mp3"), sidecar_path=None)
    save_timeline(engine, make_doc(path="/inbox/copy of song.mp3"), sidecar_path=None)
    engine.dispose()
    shown = beatwatch(tmp_path, "show", "/inbox/song.mp3")
    assert shown.returncode == 0, shown.stderr
    fields = dict(line.split(None, 1) for line in shown.stdout.splitlines())
    assert fields["path"] == "/inbox/song.mp3"
    copied = beatwatch(tmp_path, "show", "/inbox/copy of song.mp3").stdout
    copy = dict(line.split(None, 1) for line in copied.splitlines())
    assert copy["path"] == "/inbox/copy of song.mp3"
