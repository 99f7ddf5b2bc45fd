"""Job-queue throughput: claim → complete of no-op jobs by 1, 4 and 16 concurrent claimers, SQLite vs PostgreSQL.

Each claimer is a process of its own with its own engine, as workers on one
host or daemons on many are: the figure is what the queue itself allows,
with nothing analysed. PostgreSQL runs in a private cluster started here
(tests/postgres.py: a Unix socket, fsync off, as SQLite's WAL with
synchronous=NORMAL does not sync each commit either).

    python -m bench.queue [--jobs 20000] [--claimers 1 4 16]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import queue
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from beatwatch.store import jobs
from beatwatch.store.db import is_locked, open_database, sqlite_url

T = TypeVar("T")

LEASE_S = 600.0


def _claimer(url: str, owner: str, start: mp.synchronize.Barrier, done: mp.Queue) -> None:
    engine = open_database(url)
    timeouts = 0

    def retried(call: Callable[[], T]) -> T:
        """As the daemon does: a write lock not had within SQLite's busy timeout is waited for again."""
        nonlocal timeouts
        while True:
            try:
                return call()
            except OperationalError as exc:
                if not is_locked(exc):
                    raise
                timeouts += 1

    try:
        start.wait()
        count = 0
        while (job := retried(lambda: jobs.claim(engine, owner, lease_s=LEASE_S, now=time.time()))) is not None:
            retried(lambda: jobs.complete(engine, job.id, owner, now=time.time(), write=lambda conn: None))
            count += 1
        done.put((count, timeouts))
    finally:
        engine.dispose()


def measure(url: str, n_jobs: int, claimers: int) -> tuple[float, int]:
    """Jobs per second from the moment every claimer is ready until the queue is empty, and how often a claimer
    waited past SQLite's busy timeout (10 s) for the write lock."""
    engine = open_database(url)
    try:
        for offset in range(0, n_jobs, 5_000):
            jobs.enqueue_many(engine, [(f"/bench/{n:07}.flac", n, 1.0)
                                       for n in range(offset, min(offset + 5_000, n_jobs))], now=time.time())
    finally:
        engine.dispose()
    ctx = mp.get_context("spawn")
    start, done = ctx.Barrier(claimers + 1), ctx.Queue()
    processes = [ctx.Process(target=_claimer, args=(url, f"bench:{n}", start, done)) for n in range(claimers)]
    for process in processes:
        process.start()
    start.wait()
    began = time.perf_counter()
    results = []
    while len(results) < claimers:
        try:
            results.append(done.get(timeout=5))
        except queue.Empty:
            if sum(process.exitcode not in (None, 0) for process in processes):
                raise RuntimeError("a claimer failed; its traceback is above") from None
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join()
    finished = sum(count for count, _ in results)
    if finished != n_jobs:
        raise RuntimeError(f"{finished} of {n_jobs} jobs completed: the queue lost or repeated some")
    return n_jobs / elapsed, sum(timeouts for _, timeouts in results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--claimers", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args(argv)

    from tests.postgres import Cluster, server_bindir

    bindir = server_bindir()
    cluster = Cluster(bindir).start() if bindir is not None else None
    rows = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for claimers in args.claimers:
                sqlite, timeouts = measure(sqlite_url(Path(folder) / f"queue-{claimers}.db"), args.jobs, claimers)
                postgres = measure(cluster.new_database(), args.jobs, claimers)[0] if cluster is not None else None
                rows.append((claimers, sqlite, timeouts, postgres))
                print(f"  {claimers:>2} claimer(s) done", flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
    print(f"\nqueue throughput, claim -> complete of {args.jobs} no-op jobs (jobs/s)")
    print(f"{'claimers':>8}  {'SQLite':>8}  {'lock waits > 10 s':>17}  {'PostgreSQL':>10}")
    for claimers, sqlite, timeouts, postgres in rows:
        shown = f"{postgres:>10.0f}" if postgres is not None else f"{'(no server)':>10}"
        print(f"{claimers:>8}  {sqlite:>8.0f}  {timeouts:>17}  {shown}")


if __name__ == "__main__":
    main()
