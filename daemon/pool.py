"""Worker processes (spawn start method): start, hand out tasks, measure, kill and replace.

Spawned children share nothing with the supervisor but a pipe, so a decoder
crash, a hang or a memory blow-up in one job takes down only that child.
Every child dies with the supervisor, however the supervisor ends.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import multiprocessing as mp
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import psutil

from . import worker
from .logs import configure as configure_logging
from .protocol import Task, WorkerSettings

log = logging.getLogger(__name__)
_ctx = mp.get_context("spawn")
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def spawn(target, args: tuple, *, name: str) -> mp.process.BaseProcess:
    """A started child that shares nothing with the supervisor but what `args` passes, and dies with it.

    Call it from the supervisor's main thread: the kernel sends the child its
    death signal when the thread that started it ends, not only the process.
    """
    process = _ctx.Process(target=_child, args=(os.getpid(), logging.getLogger().level, target, args), name=name,
                           daemon=True)
    process.start()
    return process


def _child(supervisor_pid: int, log_level: int, target, args: tuple) -> None:
    """The child's first steps before `target`: its log escapes names as the supervisor's does, and it dies with
    the supervisor.

    `daemon=True` only covers a supervisor that exits through Python. Killed
    with SIGKILL (kill -9, the OOM killer), it would leave its workers and the
    inference process running under PID 1, analysing for nobody until their job
    ends, and the multiprocessing resource tracker waiting on their pipes.
    """
    configure_logging(log_level)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("cannot ask to die with the supervisor: %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != supervisor_pid:  # the supervisor died before prctl: no signal will ever come
        os._exit(1)
    target(*args)


@dataclass
class Slot:
    """One worker process and what it is doing."""

    name: str
    process: mp.process.BaseProcess
    conn: Connection
    task: Task | None = None
    task_started: float = 0.0
    last_heartbeat: float = 0.0
    stage: str = ""
    jobs_done: int = 0
    idle_since: float = 0.0  # monotonic; meaningful while ready and without a task
    ready: bool = False
    retiring: bool = False
    pid: int | None = None
    _ps: psutil.Process | None = field(default=None, repr=False)

    @property
    def busy(self) -> bool:
        return self.task is not None

    def rss_mb(self) -> float:
        """Resident memory of the worker and its children (the ffmpeg decoder) in MB."""
        try:
            if self._ps is None:
                self._ps = psutil.Process(self.process.pid)
            procs = [self._ps, *self._ps.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs) / 2**20
        except psutil.Error:
            return 0.0

    def pids(self) -> list[int]:
        try:
            parent = psutil.Process(self.process.pid)
            return [parent.pid, *(p.pid for p in parent.children(recursive=True))]
        except psutil.Error:
            return []


class Pool:
    def __init__(self, size: int, settings: WorkerSettings) -> None:
        """settings: what each worker is started with; assigning new ones (a reload) reaches only workers started
        afterwards, running ones finish with what they had."""
        self.size = size
        self.settings = settings
        self._names = (f"w{i}" for i in itertools.count(1))
        self.slots: list[Slot] = []

    def fill(self, upto: int | None = None) -> None:
        """Start workers until the pool has `size` of them (or `upto`, when fewer)."""
        target = self.size if upto is None else min(upto, self.size)
        while len(self.slots) < target:
            parent, child = _ctx.Pipe()
            name = next(self._names)
            process = spawn(worker.main, (child, self.settings), name=f"beatwatch-{name}")
            child.close()
            self.slots.append(Slot(name=name, process=process, conn=parent, idle_since=time.monotonic()))
            log.info("started worker %s (pid %s)", name, process.pid)

    def idle(self) -> list[Slot]:
        return [s for s in self.slots if s.ready and not s.busy and not s.retiring]

    def assign(self, slot: Slot, task: Task) -> None:
        slot.task, slot.task_started, slot.last_heartbeat = task, time.monotonic(), time.monotonic()
        slot.stage = "claimed"
        slot.conn.send(task)

    def kill(self, slot: Slot, why: str) -> None:
        """SIGKILL the worker and its decoder children, and forget the slot."""
        log.warning("killing worker %s (pid %s): %s", slot.name, slot.process.pid, why)
        for pid in reversed(slot.pids()):
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
        slot.process.join(timeout=5)
        self._forget(slot)

    def retire(self, slot: Slot) -> None:
        """Ask an idle worker to exit (recycling after max_jobs_per_child)."""
        try:
            slot.conn.send(None)
        except OSError:
            pass
        slot.process.join(timeout=10)
        if slot.process.is_alive():
            self.kill(slot, "did not exit when retired")
        else:
            self._forget(slot)

    def dead(self) -> list[Slot]:
        return [s for s in self.slots if not s.process.is_alive()]

    def _forget(self, slot: Slot) -> None:
        slot.conn.close()
        if slot in self.slots:
            self.slots.remove(slot)

    def stop_all(self, why: str) -> None:
        for slot in list(self.slots):
            if slot.busy:
                self.kill(slot, why)
            else:
                self.retire(slot)
