"""Reconciling a library of a million files: `beatwatch rescan` over a generated tree of empty files.

The tree (1,000 files a folder) goes on tmpfs when /dev/shm has room, so the
figure is beatwatch's and the database's, not a disk's. Each rescan runs as
a process of its own, whose peak RSS the kernel reports when it ends. The
first rescan queues every file; then every job is marked done and each file
given a content row and a path row, as after a full analysis, so the second
rescan (nothing new) also walks a million known paths looking for gone
files. SQLite on disk, and PostgreSQL in a private cluster when the server
is installed (tests/postgres.py).

    python -m bench.library [--files 1000000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from beatwatch.store.db import open_database, sqlite_url

PER_FOLDER = 1_000


def make_tree(root: Path, files: int) -> None:
    for n in range(files):
        if n % PER_FOLDER == 0:
            folder = root / f"artist{n // PER_FOLDER:04}"
            folder.mkdir(parents=True)
        os.close(os.open(folder / f"track{n:07}.flac", os.O_CREAT | os.O_WRONLY, 0o644))


def rescan(config: Path) -> tuple[float, float, str]:
    """Seconds, peak RSS in MiB and the output of one `beatwatch rescan` in a process of its own."""
    command = [sys.executable, "-c", "import sys; from beatwatch.daemon.cli import main; sys.exit(main())",
               "rescan", "--config", str(config)]
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - began
    output = process.stdout.read() if process.stdout is not None else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"rescan exited with {process.returncode}")
    return elapsed, usage.ru_maxrss / 1024, output.strip()


def analyse_everything(url: str) -> None:
    """What a full analysis leaves behind, written in three statements rather than a million analyses."""
    engine = open_database(url)
    hashed = "printf('%064x', id)" if engine.dialect.name == "sqlite" else "lpad(to_hex(id), 64, '0')"
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE jobs SET state = 'done', outcome = 'analysed', stage = 'done'"))
            conn.execute(text(f"INSERT INTO files (content_hash, path, size, mtime) SELECT {hashed}, path, size,"
                              " mtime FROM jobs"))
            conn.execute(text("INSERT INTO file_paths (file_id, path, seen_at) SELECT id, path, '2026-01-01' FROM"
                              " files"))
    finally:
        engine.dispose()


def measure(url: str, inbox: Path, folder: Path) -> list[tuple[str, float, float, str]]:
    config = folder / "beatwatch.toml"
    config.write_text(f'[inbox]\npath = "{inbox}"\n[store]\nurl = "{url}"\n'
                      "[watch]\nsettle_s = 0\nunclosed_settle_s = 0\n")
    rows = [("first rescan (all new)", *rescan(config))]
    analyse_everything(url)
    rows.append(("second rescan (nothing new)", *rescan(config)))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)

    shm = Path("/dev/shm")
    on_tmpfs = shm.is_dir() and shutil.disk_usage(shm).free > args.files * 4096
    results = []
    with tempfile.TemporaryDirectory(dir=shm if on_tmpfs else None) as tree, \
            tempfile.TemporaryDirectory() as folder:
        inbox = Path(tree) / "inbox"
        began = time.perf_counter()
        make_tree(inbox, args.files)
        print(f"made {args.files} empty files in {time.perf_counter() - began:.0f} s"
              f" ({'tmpfs' if on_tmpfs else 'disk'})", flush=True)
        results.append(("SQLite", measure(sqlite_url(Path(folder) / "library.db"), inbox, Path(folder))))
        print("  SQLite done", flush=True)
        if not args.no_postgres:
            from tests.postgres import Cluster, server_bindir

            bindir = server_bindir()
            if bindir is not None:
                cluster = Cluster(bindir).start()
                try:
                    results.append(("PostgreSQL", measure(cluster.new_database(), inbox, Path(folder))))
                finally:
                    cluster.stop()
    print(f"\nreconciling a library of {args.files} files (`beatwatch rescan`, a process of its own)")
    print(f"{'store':<11}{'pass':<29}{'seconds':>8}{'peak RSS MiB':>14}  output")
    for store, rows in results:
        for name, seconds, rss, output in rows:
            print(f"{store:<11}{name:<29}{seconds:>8.1f}{rss:>14.0f}  {output.splitlines()[0]}")


if __name__ == "__main__":
    main()
