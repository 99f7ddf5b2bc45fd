"""From file-system events to queued jobs: watcher, stability tracker and reconcile pass together.

Kept apart from the supervisor so the whole intake (real observer, real
files, real queue) can be driven and tested without any worker.
"""

from __future__ import annotations

import logging
import os
import time
from stat import S_ISDIR as stat_is_dir

from sqlalchemy import Engine

from beatwatch.store import jobs

from .library_paths import Library
from .missing import check_paths
from .reconcile import reconcile
from .stability import StabilityTracker
from .watcher import InboxWatcher, NameFilter

log = logging.getLogger(__name__)


class Intake:
    def __init__(self, engine: Engine, names: NameFilter, *, settle_s: float, rescan_interval_s: float,
                 polling: bool, writers_visible: bool = True, unclosed_settle_s: float = 0.0,
                 library: Library | None = None) -> None:
        self.engine = engine
        self.library = library or Library()
        self.names = names
        self.rescan_interval_s = rescan_interval_s
        self.tracker = StabilityTracker(settle_s, writers_visible=writers_visible,
                                        unclosed_settle_s=unclosed_settle_s)
        self.polling = polling
        self.watcher = InboxWatcher(names, polling=polling)
        self._next_rescan = 0.0
        self._inbox_identity: tuple[int, int] | None = None

    def start(self) -> None:
        self.names.inbox.mkdir(exist_ok=True)
        self._inbox_identity = _folder_identity(self.names.inbox)
        self.watcher.start()

    def stop(self) -> None:
        self.watcher.stop()

    def rescan_soon(self) -> None:
        self._next_rescan = 0.0

    def step(self, monotonic_s: float) -> int:
        """Take in events (and a full scan when due or after an overflow); queue what has settled. Returns how
        many jobs were queued."""
        self._follow_inbox()
        queued = 0
        if self.watcher.overflow.is_set() or monotonic_s >= self._next_rescan:
            self.watcher.overflow.clear()
            self._next_rescan = monotonic_s + self.rescan_interval_s
            queued = reconcile(self.engine, self.names.scan(), settle_s=self._scan_settle_s,
                               writers_visible=self.tracker.writers_visible, now=time.time(),
                               recent=lambda found: self.tracker.observe(found.path, monotonic_s),
                               library=self.library).queued
            if queued:
                log.info("queued %d new file(s) found by the reconcile pass", queued)
            check_paths(self.engine, self.library)
        for name, finished in self.watcher.drain():
            if self.names.admits(name):
                self.tracker.observe(name, monotonic_s, closed=finished)
        stable = self.tracker.due(monotonic_s)
        if stable:
            added = len(jobs.enqueue_many(self.engine, [(self.library.stored(f.path), f.size, f.mtime) for f in stable],
                                          now=time.time()))
            if added:
                log.info("queued %d new file(s)", added)
            queued += added
        return queued

    @property
    def _scan_settle_s(self) -> float:
        """A walk sees no writer's close: with writers out of sight, only the longer window says a file is done."""
        return self.tracker.settle_s if self.tracker.writers_visible else self.tracker.unclosed_settle_s

    def _follow_inbox(self) -> None:
        """inotify watches a folder, not a name: after `mv inbox inbox_old; mkdir inbox` it goes on watching
        inbox_old and nothing new is seen until the next rescan. One stat per tick notices the name now
        standing for another folder (or for none); the watch moves to the new folder and it is scanned at once.
        A missing inbox is waited for, not made again: whoever removed it may have meant it."""
        identity = _folder_identity(self.names.inbox)
        if identity == self._inbox_identity:
            return
        if identity is None:
            log.warning("inbox %s is gone; watching again once it is back", self.names.inbox)
        else:
            log.warning("inbox %s is %s; watching it again", self.names.inbox,
                        "back" if self._inbox_identity is None else "another folder now (replaced or remounted)")
        self._inbox_identity = identity
        self.watcher.stop()  # a stopped watcher may be stopped again, at shutdown or when the inbox comes back
        if identity is not None:
            self.watcher = InboxWatcher(self.names, polling=self.polling)
            self.watcher.start()
            self.rescan_soon()

    def next_deadline(self) -> float | None:
        return self.tracker.next_deadline()

    @property
    def pending(self) -> int:
        return len(self.tracker)


def _folder_identity(folder) -> tuple[int, int] | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat_is_dir(st.st_mode) else None
