"""Deleted files: rescan marks their tracks missing, `show` says so, `prune` removes their rows on request.
The real command in a subprocess, over a real SQLite file and real files that really go away."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from beatwatch.store.db import open_database, sqlite_url
from beatwatch.store.records import save_timeline
from tests.test_store import HASH_A, make_doc

BEATWATCH = str(Path(sys.executable).with_name("beatwatch"))
HASH_C = "c" * 64


def beatwatch(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEATWATCH_")}
    return subprocess.run([BEATWATCH, *args, "--config", str(root / "beatwatch.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def tracks(root: Path) -> dict[str, tuple]:
    with sqlite3.connect(root / "beatwatch.db") as db:
        return {path: (missing, since is not None, content)
                for path, missing, since, content in db.execute(
                    "SELECT path, missing, missing_since, content_hash FROM tracks")}


def test_rescan_marks_gone_files_show_says_so_and_prune_removes_only_them(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (tmp_path / "beatwatch.toml").write_text('[inbox]\npath = "inbox"\n[watch]\nsettle_s = 0\n')
    kept, gone, original, copy = (inbox / name for name in ("kept.wav", "gone.wav", "orig.wav", "copy.wav"))
    for path in (kept, gone, original, copy):
        path.write_bytes(b"RIFF")
    engine = open_database(sqlite_url(tmp_path / "beatwatch.db"))
    save_timeline(engine, make_doc(path=str(kept), content_hash=HASH_A), sidecar_path=None)
    save_timeline(engine, make_doc(path=str(gone), content_hash="b" * 64), sidecar_path=None)
    save_timeline(engine, make_doc(path=str(original), content_hash=HASH_C), sidecar_path=None)
    save_timeline(engine, make_doc(path=str(copy), content_hash=HASH_C), sidecar_path=None)
    engine.dispose()
    gone.unlink()
    copy.unlink()

    rescan = beatwatch(tmp_path, "rescan")
    assert rescan.returncode == 0, rescan.stderr
    assert "2 analysed file(s) newly missing" in rescan.stdout
    state = tracks(tmp_path)
    assert {path: row[:2] for path, row in state.items()} == {
        str(kept): (0, False), str(gone): (1, True), str(original): (0, False), str(copy): (1, True)}

    shown = beatwatch(tmp_path, "show", str(gone))
    assert shown.returncode == 0, shown.stderr
    assert f"missing: {gone} is gone from disk since " in shown.stdout and "beatwatch prune" in shown.stdout
    assert "missing:" not in beatwatch(tmp_path, "show", str(kept)).stdout

    dry = beatwatch(tmp_path, "prune", "--dry-run")
    assert sorted(dry.stdout.splitlines()[:2]) == [f"would remove {copy}", f"would remove {gone}"]
    assert len(tracks(tmp_path)) == 4

    copy.write_bytes(b"RIFF")  # came back before the prune: it stays
    pruned = beatwatch(tmp_path, "prune")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.splitlines() == [f"removed {gone}",
                                          "removed 1 missing path(s) and 1 track(s) left with no path"]
    assert {path: row[:2] for path, row in tracks(tmp_path).items()} == {
        str(kept): (0, False), str(original): (0, False), str(copy): (0, False)}
    with sqlite3.connect(tmp_path / "beatwatch.db") as db:
        assert db.execute("SELECT count(*) FROM files WHERE content_hash = ?", ("b" * 64,)).fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM analyses").fetchone() == (2,)
        assert db.execute("SELECT count(*) FROM beats").fetchone()[0] == 2 * 8  # the pruned analysis's beats went


def test_prune_of_a_copy_keeps_the_content_under_its_other_path(tmp_path):
    (tmp_path / "beatwatch.toml").write_text("")
    original, copy = tmp_path / "orig.wav", tmp_path / "copy.wav"
    original.write_bytes(b"RIFF")
    engine = open_database(sqlite_url(tmp_path / "beatwatch.db"))
    save_timeline(engine, make_doc(path=str(original), content_hash=HASH_C), sidecar_path=None)
    save_timeline(engine, make_doc(path=str(copy), content_hash=HASH_C), sidecar_path=None)  # files.path = copy
    engine.dispose()
    result = beatwatch(tmp_path, "prune")
    assert result.stdout.splitlines()[-1] == "removed 1 missing path(s) and 0 track(s) left with no path"
    with sqlite3.connect(tmp_path / "beatwatch.db") as db:
        assert db.execute("SELECT path FROM files").fetchall() == [(str(original),)]
    assert list(tracks(tmp_path)) == [str(original)]
