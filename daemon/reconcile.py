"""The reconcile pass over a library of any size: the inbox is listed, sorted and queued a batch at a time.

A catalogue of a million files must not become a list of a million paths in
the daemon or in `beatwatch rescan`: names come from a lazy walk, each batch
is looked up against the jobs table by its indexed path and then let go, so
memory is bounded by the batch whatever the library's size, and a pass that
finds nothing new or changed writes nothing.

A file found by the walk that needs a job and last changed longer ago than
the settle window is complete (unless a visible writer holds it open) and is
queued at once, as `beatwatch rescan` always did; only the recent ones go to
the stability tracker, so it holds what is arriving, never the library.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from stat import S_ISREG as stat_is_regular
from typing import TypeVar

from sqlalchemy import Engine

from beatwatch.store import jobs

from .library_paths import Library
from .stability import files_open_for_writing

T = TypeVar("T")

# Names held at once: 5,000 paths are a few MB, and one look-up per 500 of them keeps each query short.
BATCH = 5_000


@dataclass(frozen=True)
class Listed:
    path: str
    size: int
    mtime: float
    identity: tuple[int, int]


@dataclass
class Tally:
    listed: int = 0  # regular files the walk found
    queued: int = 0  # new jobs
    recent: int = 0  # needing a job but changed within the settle window or open for writing


def batches(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def reconcile(engine: Engine, found: Iterable[str], *, settle_s: float, writers_visible: bool, now: float,
              recent: Callable[[Listed], None] | None = None, size: int = BATCH,
              library: Library | None = None) -> Tally:
    """Queue each found file that needs a job and is complete; hand those still settling to `recent`.

    Files are looked up and queued by the name `library` stores them under (library_paths.py), so a file
    another host queued through its own mount of the library is not queued again.

    `now` is epoch seconds, compared with the files' mtimes. Open files are
    looked up in /proc once per batch that has a candidate, so a pass that
    finds nothing new never walks /proc.
    """
    library = library or Library()
    tally = Tally()
    for paths in batches(found, size):
        files = _listed(paths)
        tally.listed += len(files)
        names = {f.path: library.stored(f.path) for f in files}
        fresh = {path for path, _, _ in jobs.unqueued(engine, [(names[f.path], f.size, f.mtime) for f in files])}
        if not fresh:
            continue
        writing = files_open_for_writing() if writers_visible else set()
        complete = []
        for f in files:
            if names[f.path] not in fresh:
                continue
            if now - f.mtime >= settle_s and f.identity not in writing:
                complete.append((names[f.path], f.size, f.mtime))
            else:
                tally.recent += 1
                if recent is not None:
                    recent(f)
        if complete:
            tally.queued += len(jobs.enqueue_many(engine, complete, now=now))
    return tally


def _listed(paths: list[str]) -> list[Listed]:
    """A name gone or no longer a regular file since the walk is left out."""
    files = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat_is_regular(st.st_mode):
            files.append(Listed(path, st.st_size, st.st_mtime, (st.st_dev, st.st_ino)))
    return files
