"""Tracks whose file is gone: a rescan marks them `missing`, `beatwatch prune` forgets them on request.

A deleted file used to keep its `tracks` row forever, so queries returned
songs that no longer exist. Marking rather than deleting at once keeps the
rows of files on an unmounted disk or a share that is briefly away; pruning
looks again first, so a file that came back in between keeps its rows.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

from sqlalchemy import Engine

from beatwatch.store.records import known_path_batches, known_paths, mark_missing, remove_paths

from .library_paths import Library

log = logging.getLogger(__name__)

# A name that is not valid UTF-8 is stored with U+FFFD for its odd bytes: it cannot be looked up on disk by that
# text, so it is never judged gone.
UNDECODABLE = "\ufffd"


def _gone(stored: str, library: Library) -> bool:
    """A path in a library this host does not mount is never judged gone: another host may well see it."""
    path = library.local_or_none(stored)
    return path is not None and UNDECODABLE not in path and not os.path.exists(path)


def check_paths(engine: Engine, library: Library | None = None) -> tuple[int, int]:
    """Look at every path with rows (through this host's library mounts), a batch at a time; mark the newly gone
    and unmark the returned. Returns how many of each."""
    library = library or Library()
    gone = back = 0
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for batch in known_path_batches(engine):
        newly_gone, returned = [], []
        for path, since in batch:
            if _gone(path, library):
                if since is None:
                    newly_gone.append(path)
            elif since is not None:
                returned.append(path)
        if newly_gone or returned:
            mark_missing(engine, gone=newly_gone, back=returned, now=now)
        gone, back = gone + len(newly_gone), back + len(returned)
    if gone:
        log.info("%d analysed file(s) gone from disk, marked missing (beatwatch prune removes their rows)", gone)
    return gone, back


def prune(engine: Engine, *, dry_run: bool = False, library: Library | None = None) -> tuple[list[str], int]:
    """The paths (as stored) whose files are gone (looked at now), and how many contents went with them; unless
    dry_run, their rows are removed."""
    library = library or Library()
    check_paths(engine, library)
    doomed = [path for path, since in known_paths(engine) if since is not None and _gone(path, library)]
    return doomed, (0 if dry_run else remove_paths(engine, doomed))
