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

from beatwatch.store.records import known_paths, mark_missing, remove_paths

log = logging.getLogger(__name__)

# A name that is not valid UTF-8 is stored with U+FFFD for its odd bytes: it cannot be looked up on disk by that
# text, so it is never judged gone.
UNDECODABLE = "\ufffd"


def _gone(path: str) -> bool:
    return UNDECODABLE not in path and not os.path.exists(path)


def check_paths(engine: Engine) -> tuple[list[str], list[str]]:
    """Look at every path with rows; mark the newly gone and unmark the returned. Returns (gone, back)."""
    gone, back = [], []
    for path, since in known_paths(engine):
        if _gone(path):
            if since is None:
                gone.append(path)
        elif since is not None:
            back.append(path)
    if gone or back:
        mark_missing(engine, gone=gone, back=back, now=datetime.now(UTC).isoformat(timespec="seconds"))
    if gone:
        log.info("%d analysed file(s) gone from disk, marked missing (beatwatch prune removes their rows)", len(gone))
    return gone, back


def prune(engine: Engine, *, dry_run: bool = False) -> tuple[list[str], int]:
    """The paths whose files are gone (looked at now), and how many contents went with them; unless dry_run,
    their rows are removed."""
    check_paths(engine)
    doomed = [path for path, since in known_paths(engine) if since is not None and _gone(path)]
    return doomed, (0 if dry_run else remove_paths(engine, doomed))
