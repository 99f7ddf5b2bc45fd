"""`status` and `show` on a database this user may read but not write, as README promises: a real read-only file
in a real read-only folder. As root, the commands run without the capabilities that let root ignore file modes."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beatwatch.store import jobs
from beatwatch.store.db import open_database, sqlite_url
from beatwatch.store.records import save_timeline

BEATWATCH = str(Path(sys.executable).with_name("beatwatch"))
GOLDEN = Path(__file__).parent / "data" / "sidecar_golden.json"
AS_ROOT = os.geteuid() == 0
pytestmark = pytest.mark.skipif(AS_ROOT and shutil.which("setpriv") is None,
                                reason="root needs setpriv to drop the file-mode override")


def as_reader(*args: str, config: Path) -> subprocess.CompletedProcess:
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"] if AS_ROOT else []
    return subprocess.run([*drop, BEATWATCH, *args, "--config", str(config)], capture_output=True, text=True,
                          timeout=120, env=os.environ)


@pytest.fixture
def read_only_store(tmp_path):
    state = tmp_path / "state"
    document = json.loads(GOLDEN.read_text())
    engine = open_database(sqlite_url(state / "beatwatch.db"))
    save_timeline(engine, document, sidecar_path=None)
    jobs.enqueue_many(engine, [(document["file"]["path"], 1, 1.0)], now=time.time())
    config = tmp_path / "beatwatch.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{state / "beatwatch.db"}"\n')
    yield engine, state, config, document
    engine.dispose()
    state.chmod(0o755)


def lock_down(state: Path) -> None:
    for path in state.iterdir():
        path.chmod(0o444)
    state.chmod(0o555)


@pytest.mark.parametrize("daemon_open", [False, True], ids=["no-process-has-it-open", "a-writer-has-it-open"])
def test_status_and_show_read_a_database_they_may_not_write(read_only_store, daemon_open):
    engine, state, config, document = read_only_store
    if daemon_open:
        holder = engine.connect()  # as the daemon does: its -wal and -shm files stay beside the database
        holder.exec_driver_sql("SELECT 1 FROM jobs").all()
    else:
        engine.dispose()
        assert sorted(p.name for p in state.iterdir()) == ["beatwatch.db"]
    lock_down(state)
    status = as_reader("status", config=config)
    assert (status.returncode, status.stderr) == (0, "")
    lines = status.stdout.splitlines()
    assert lines[0] == f"config:  {config} (--config)"
    assert lines[1].startswith("queue:   queued 1 ")
    shown = as_reader("show", document["file"]["content_hash"][:12], config=config)
    assert (shown.returncode, shown.stderr) == (0, "")
    assert document["file"]["path"] in shown.stdout
    assert stat.S_IMODE((state / "beatwatch.db").stat().st_mode) == 0o444
    if daemon_open:
        holder.close()


def test_a_database_that_cannot_be_read_at_all_is_one_line(tmp_path):
    state = tmp_path / "state"
    open_database(sqlite_url(state / "beatwatch.db")).dispose()
    (state / "beatwatch.db").chmod(0)
    state.chmod(0o555)
    config = tmp_path / "beatwatch.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{state / "beatwatch.db"}"\n')
    try:
        result = as_reader("status", config=config)
    finally:
        state.chmod(0o755)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and "cannot read the database" in result.stderr
    (state / "beatwatch.db").unlink()
    state.chmod(0o555)
    try:
        missing = as_reader("status", config=config)
    finally:
        state.chmod(0o755)
    assert missing.returncode == 1
    assert missing.stderr == f"beatwatch: no database at {state / 'beatwatch.db'}, the daemon has not run\n"
