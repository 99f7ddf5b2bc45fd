"""Tags written by `beatwatch tag` and by the daemon (`output.write_tags`), and what the store learns from it.

Tags change the file's bytes and so its content hash, while its audio stays
the analysed audio. The new hash is stored as an alias of the analysed
content, and the file's latest job takes the new size and mtime: the
watcher's event for the rewrite queues nothing, and should the file be
queued anyway (a rescan after the database lost its jobs, a copy of the
tagged file), its hash links it to the stored analysis instead of
analysing it again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from beatwatch.render.file_tags import KeyNotation, TagError, TagValues, file_hash, tag_values, write_tags
from beatwatch.store import jobs
from beatwatch.store.records import add_alias, content_hashes


def tag_file(engine: Engine, path: str, document: dict[str, Any], *, notation: KeyNotation = "standard",
             replaygain: bool = False, check_content: bool = True, stored_as: str | None = None) -> TagValues:
    """Write the analysis's tags into `path`; raises TagError with the file unchanged.

    check_content: hash the file first and refuse when it no longer holds the analysed audio (tagging another
    song's BPM into it); the daemon, which tags right after its own check, skips the second read. stored_as: the
    name the queue keeps the file under (a library root's relative name, library_paths.py), when not `path`.
    """
    analysed = document["file"]["content_hash"]
    if check_content:
        if not Path(path).is_file():
            raise TagError(f"{path}: no such file")
        if file_hash(path) not in content_hashes(engine, analysed) | {analysed}:
            raise TagError(f"{path}: the file has changed since it was analysed; analyse it again before tagging")
    values = tag_values(document, notation=notation, replaygain=replaygain)
    digest, stat = write_tags(path, values)
    add_alias(engine, analysed, digest)
    jobs.note_rewritten(engine, stored_as or os.fspath(path), size=stat.st_size, mtime=stat.st_mtime)
    return values
