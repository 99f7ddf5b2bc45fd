"""From file-system events to queued jobs: watcher, stability tracker and reconcile pass together.

Kept apart from the supervisor so the whole intake (real observer, real
files, real queue) can be driven and tested without any worker.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine

from beatwatch.store import jobs

from .missing import check_paths
from .stability import StabilityTracker
from .watcher import InboxWatcher, NameFilter

log = logging.getLogger(__name__)


class Intake:
    def __init__(self, engine: Engine, names: NameFilter, *, settle_s: float, rescan_interval_s: float,
                 polling: bool) -> None:
        self.engine = engine
        self.names = names
        self.rescan_interval_s = rescan_interval_s
        self.tracker = StabilityTracker(settle_s)
        self.watcher = InboxWatcher(names, polling=polling)
        self._next_rescan = 0.0

    def start(self) -> None:
        self.names.inbox.mkdir(parents=True, exist_ok=True)
        self.watcher.start()

    def stop(self) -> None:
        self.watcher.stop()

    def rescan_soon(self) -> None:
        self._next_rescan = 0.0

    def step(self, monotonic_s: float) -> list[int]:
        """Take in events (and a full scan when due or after an overflow); queue what has settled."""
        if self.watcher.overflow.is_set() or monotonic_s >= self._next_rescan:
            self.watcher.overflow.clear()
            self._next_rescan = monotonic_s + self.rescan_interval_s
            for path in self.names.scan():
                self.tracker.observe(str(path), monotonic_s)
            check_paths(self.engine)
        for name in self.watcher.drain():
            if self.names.admits(name):
                self.tracker.observe(name, monotonic_s)
        stable = self.tracker.due(monotonic_s)
        if not stable:
            return []
        added = jobs.enqueue_many(self.engine, [(f.path, f.size, f.mtime) for f in stable], now=time.time())
        if added:
            log.info("queued %d new file(s)", len(added))
        return added

    def next_deadline(self) -> float | None:
        return self.tracker.next_deadline()

    @property
    def pending(self) -> int:
        return len(self.tracker)
