"""Inbox events: a watchdog observer whose handler only filters names and hands paths on.

The handler runs on watchdog's thread, so it does nothing but drop candidate
paths into a bounded queue; when the queue is full it raises a flag instead
of blocking, and the supervisor answers with a full rescan, so a burst can
never be lost or grow memory without bound.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from beatwatch.analysis.audio.formats import AUDIO_EXTENSIONS

from .admission import FollowSymlinks, refusal

QUEUE_SIZE = 4096
# Folders inside the inbox that beatwatch itself fills when inbox.after = "move".
RESULT_FOLDERS = ("done", "failed")

log = logging.getLogger(__name__)


class NameFilter:
    """Which paths under the inbox are music to analyse: audio extensions, no ignored or hidden names, and
    (`admits`) only regular files and the symlinks `inbox.follow_symlinks` allows."""

    def __init__(self, inbox: Path, ignore: Iterable[str], *, skip_result_folders: bool,
                 follow_symlinks: FollowSymlinks = "inside") -> None:
        self.inbox = inbox
        self.ignore = tuple(ignore)
        self.skip_result_folders = skip_result_folders
        self.follow_symlinks = follow_symlinks
        self._refused: set[str] = set()
        self._ignored = re.compile("|".join(map(fnmatch.translate, self.ignore)) or "(?!)")

    def accepts(self, path: str | os.PathLike) -> bool:
        path = Path(path)
        try:
            parts = path.relative_to(self.inbox).parts
        except ValueError:
            return False
        if not parts:
            return False
        if self.skip_result_folders and len(parts) > 1 and parts[0] in RESULT_FOLDERS:
            return False
        if any(part.startswith(".") for part in parts[:-1]):
            return False
        return self._music_name(parts[-1])

    def _music_name(self, name: str) -> bool:
        return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS and not self._ignored.match(name)

    def admits(self, path: str | os.PathLike) -> bool:
        """A regular file, or a symlink the policy follows to one; decided without opening it. Anything else is
        ignored, never queued: a FIFO or a device would hold a worker until jobs.timeout_s. Each refused path is
        logged once, not at every rescan."""
        try:
            why = refusal(path, self.inbox, self.follow_symlinks)
        except OSError:
            return False  # gone already: nothing to say
        if why is None:
            return True
        self._warn_once(path, f"ignored {path}: {why}")
        return False

    def _unlisted(self, error: OSError) -> None:
        """The walk could not list a folder (a path past PATH_MAX, no permission): say so instead of skipping
        everything below it in silence."""
        self._warn_once(error.filename, f"cannot look into {error.filename}: {error.strerror}; "
                                        "nothing below it is analysed")

    def _warn_once(self, path: str | os.PathLike, message: str) -> None:
        if str(path) not in self._refused:
            self._refused.add(str(path))
            log.warning("%s", message)

    def scan(self) -> Iterator[str]:
        """Every accepted and admitted file under the inbox (the reconcile pass), one folder's listing at a time.

        A plain file met on a walk that follows no folder symlink lies inside the inbox, so only symlinks and
        special files are put to `admits` (a realpath of each name on the way): a library of a million files
        is walked from the listings' file types alone, as `accepts` would judge each path.
        """
        pending = [(str(self.inbox), True)]
        while pending:
            folder, top = pending.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = list(listing)
            except OSError as error:
                self._unlisted(error)
                continue
            below = []
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith(".") and not (
                            top and self.skip_result_folders and entry.name in RESULT_FOLDERS):
                        below.append((entry.path, False))
                elif self._music_name(entry.name) and (entry.is_file(follow_symlinks=False) or (
                        not entry.is_dir() and self.admits(entry.path))):
                    yield entry.path
            pending.extend(reversed(below))


class _Handler(FileSystemEventHandler):
    def __init__(self, names: NameFilter, out: "queue.Queue[tuple[str, bool]]", overflow: threading.Event) -> None:
        self._names, self._out, self._overflow = names, out, overflow

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            # A folder moved in brings files that got no events of their own.
            if event.event_type in ("moved", "created"):
                self._overflow.set()
            return
        if event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        path = event.dest_path if event.event_type == "moved" else event.src_path
        path = os.fsdecode(path)
        if self._names.accepts(path):
            try:
                # Closing after writing and renaming into place are a writer's own "done" (see stability.py).
                self._out.put_nowait((path, event.event_type in ("closed", "moved")))
            except queue.Full:
                self._overflow.set()


class InboxWatcher:
    """Owns the observer thread; `drain()` returns the paths seen since the last call, each with whether its event
    was the writer finishing (a close after writing, a rename into place)."""

    def __init__(self, names: NameFilter, *, polling: bool) -> None:
        self.names = names
        self.overflow = threading.Event()
        self._queue: queue.Queue[tuple[str, bool]] = queue.Queue(maxsize=QUEUE_SIZE)
        self._observer = PollingObserver() if polling else Observer()
        self._observer.schedule(_Handler(names, self._queue, self.overflow), str(names.inbox), recursive=True)

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)

    def drain(self) -> list[tuple[str, bool]]:
        paths = []
        while True:
            try:
                paths.append(self._queue.get_nowait())
            except queue.Empty:
                return paths
