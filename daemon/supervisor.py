"""The daemon's main loop: events in, jobs claimed, workers fed, results published, systemd told.

`step()` is one iteration and takes the clock as arguments, so tests can
drive it; `run()` only adds waiting, signals and start-up/shutdown. Signal
handlers only set flags; every decision happens here, in one thread.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import socket
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from beatwatch.analysis.nets.device import Device, resolve_device
from beatwatch.store import jobs
from beatwatch.store.db import open_database, store_trouble
from beatwatch.store.clock import database_now
from beatwatch.store.content_turns import take_content
from beatwatch.store.daemon_status import read_hosts, write_status
from beatwatch.store.wakeups import Listener
from beatwatch.store.sidecar import remove_stray_temp_files

from . import config as config_mod
from . import hooks
from .cpus import usable_cpus
from .inference import InferenceProcess
from .instance import AlreadyRunning, InstanceLock, check_host_name_free, this_machine
from .notify import Notifier
from .pool import Pool, Slot
from .intake import Intake
from .library_paths import Library, NotMounted, adopt_absolute_paths
from .protocol import (Alive, Go, Hashed, InferenceSettings, Outcome, Progress, Ready, Result, Task, WorkerMessage,
                       WorkerSettings)
from .publish import FileChanged, FileGone, Publisher
from .stability import other_writers_visible
from .status import STALE_AFTER_S
from .tag_models import tags_warning
from .throttle import MachineProbe, Throttle
from .turns import ContentTurns
from .watcher import NameFilter

log = logging.getLogger(__name__)

TICK_S = 1.0
CLAIM_POLL_S = 10.0
STATUS_EVERY_S = 5.0
HEARTBEAT_WRITE_EVERY_S = 5.0
# How often a worker waiting for another host's analysis of the same content asks whether its turn has come.
CONTENT_POLL_S = 1.0
# In every timeout's error text: the second timeout in a row of the same job fails it for good (jobs.fail).
TIMEOUT_MARK = "(jobs.timeout_s)"
STORE_TROUBLE_LOG_EVERY_S = 30.0


def _one_line(exc: BaseException) -> str:
    """A ConfigError is a sentence already; anything else gets its type, as an OSError's text alone is vague."""
    return str(exc) if isinstance(exc, config_mod.ConfigError) else f"{type(exc).__name__}: {exc}"


def resolve_device_in_child(requested: str) -> Device:
    """`resolve_device` in a short-lived child: asking onnxruntime for its providers loads it (+40 MB),
    and the supervisor never runs a network. A DeviceError comes back raised, as if resolved here."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as child:
        return child.submit(resolve_device, requested).result()


@dataclass
class Flags:
    stop: bool = False
    reload: bool = False


class Supervisor:
    def __init__(self, settings: config_mod.Settings, config_path: Path | None = None) -> None:
        self.config_path = config_path
        self.flags = Flags()
        # Every lease owner starts with "<host>:": a restart on this host takes back its own, never another's.
        self.host = settings.store.host()
        self.id = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.notifier = Notifier()
        self.probe = MachineProbe()
        # The store and the inference section stay as started: a reload keeps them (see reload()).
        self.store_url = settings.store.url
        self.inference_device = settings.inference.device
        self.instance_lock = InstanceLock(self.store_url)
        self.instance_lock.acquire()
        self.engine: Engine = open_database(self.store_url)
        self.shared = self.engine.dialect.name != "sqlite"  # several hosts may share this database's queue
        if self.shared:
            try:
                check_host_name_free(read_hosts(self.engine), self.host, now=database_now(self.engine),
                                     fresh_s=STALE_AFTER_S)
            except AlreadyRunning:
                self.engine.dispose()
                raise
        self.listener: Listener | None = None
        self._next_listen = 0.0
        self.writers_visible = other_writers_visible()
        self._apply(settings)
        self.device = resolve_device_in_child(settings.inference.device)
        inference = settings.inference
        self.inference = InferenceProcess(InferenceSettings(
            device=inference.device, models_dir=str(settings.models.dir), max_batch=inference.max_batch,
            max_wait_ms=inference.max_wait_ms, threads=self.worker_count, nice=settings.resources.nice,
        )) if inference.mode == "process" else None
        self.pool = Pool(self.worker_count, self._worker_settings())
        self.intake: Intake | None = None
        self.turns = ContentTurns()
        self._next_content_poll = 0.0
        self._next_claim = 0.0
        self._next_expire = 0.0
        self._next_status = 0.0
        self._next_watchdog = 0.0
        self._last_beat_write: dict[int, float] = {}
        self.draining_since: float | None = None
        self._store_trouble: str | None = None
        self._trouble_since = self._trouble_logged = 0.0
        self._asleep = 0  # workers that exited after workers.idle_exit_s and are not replaced until work comes
        self._wake_r, self._wake_w = socket.socketpair()
        for end in (self._wake_r, self._wake_w):
            end.setblocking(False)

    def _apply(self, settings: config_mod.Settings) -> None:
        self.settings = settings
        self.worker_count = settings.workers.count or usable_cpus()
        self.throttle = Throttle(settings.resources)
        self._next_wake_check = 0.0  # a new throttle has not seen the machine yet
        self.lease_s = settings.jobs.lease_s
        self.names = NameFilter(settings.inbox.path, settings.watch.ignore,
                                skip_result_folders=settings.inbox.after == "move",
                                follow_symlinks=settings.inbox.follow_symlinks)
        self.library = Library.of(settings.library.roots)
        self.publisher = Publisher(self.engine, output_dir=settings.output.dir, inbox=settings.inbox.path,
                                   set_aside_in=settings.inbox.path if settings.inbox.after == "move" else None,
                                   library=self.library)
        self.tags_warning = tags_warning(settings.models.dir)
        if self.tags_warning:
            log.warning("%s", self.tags_warning)

    # ----- lifecycle -------------------------------------------------------------------------

    def start(self, now: float) -> None:
        inbox = self.settings.inbox.path
        inbox.mkdir(exist_ok=True)  # its folder must exist (config.check_usable): a typo is refused, not created
        requeued = jobs.requeue_all_running(self.engine, now=now,
                                            owner_prefix=f"{self.host}:" if self.shared else None)
        if requeued:
            log.warning("requeued %d job(s) left running by a previous run", requeued)
        adopted = adopt_absolute_paths(self.engine, self.library)
        if adopted:
            log.warning("%d path(s) stored by absolute path now named by their library root", adopted)
        for folder in {inbox, self.settings.output.dir or inbox}:
            removed = remove_stray_temp_files(folder)
            if removed:
                log.warning("removed %d half-written sidecar(s) or plot(s) under %s", removed, folder)
        if not self.writers_visible:
            log.warning("other users' open files are hidden from this process (no CAP_SYS_PTRACE): a file counts "
                        "as complete once its writer closes it or renames it into place, or after "
                        "watch.unclosed_settle_s = %g s unchanged when no such event was seen",
                        self.settings.watch.unclosed_settle_s)
        self.intake = self._new_intake()
        self.intake.start()
        if self.inference is not None:
            self.inference.start()
        self.pool.fill()
        log.info("beatwatch %s watching %s with %d worker(s)", self.id, inbox, self.worker_count)

    def _new_intake(self) -> Intake:
        watch = self.settings.watch
        return Intake(self.engine, self.names, settle_s=watch.settle_s,
                      rescan_interval_s=watch.rescan_interval_s, polling=watch.polling,
                      writers_visible=self.writers_visible, unclosed_settle_s=watch.unclosed_settle_s,
                      library=self.library)

    def _worker_settings(self) -> WorkerSettings:
        """What workers started from now on get: resources.nice, jobs.memory_mb, the analysis section and
        models.dir as the config says now; the store, inference.device and the inference process as at start-up."""
        settings = self.settings
        analysis = settings.analysis
        return WorkerSettings(store_url=self.store_url, nice=settings.resources.nice,
                              memory_mb=settings.jobs.memory_mb, chunk_s=analysis.chunk_s,
                              min_bpm=analysis.min_bpm, max_bpm=analysis.max_bpm,
                              models_dir=str(settings.models.dir), device=self.inference_device,
                              inference_address=self.inference.address if self.inference else None,
                              library_roots=tuple((name, str(root)) for name, root in settings.library.roots.items()))

    def reload(self) -> None:
        """SIGHUP: re-read the config. The watcher restarts with the new values, the throttle, job limits, names
        and output follow them at once, the pool resizes, and workers started from now on get the new worker
        settings (`_worker_settings`); running workers finish with theirs. The store (store.url) and the
        inference section (mode, device, batching; the inference process keeps the models it loaded) keep their
        start-up values until a restart."""
        self.notifier.send(RELOADING=1, MONOTONIC_USEC=int(time.monotonic() * 1e6))
        running = self.settings
        try:
            settings = config_mod.load(self.config_path)
            warnings = config_mod.check_usable(settings)
            self._switch_to(settings)
            for warning in warnings:
                log.warning("%s", warning)
        except Exception as exc:  # noqa: BLE001 - a config the daemon cannot use must never stop it
            log.error("reload refused, keeping the running config: %s", _one_line(exc))
            if self.settings is not running or self.intake is None:
                try:
                    self._switch_to(running)
                except Exception as again:  # noqa: BLE001 - jobs already queued still run; a reload can fix it
                    log.error("the inbox is not watched until a reload succeeds: %s", _one_line(again))
        else:
            log.info("config reloaded from %s", self.config_path or "defaults")
        self.notifier.send(READY=1)

    def _switch_to(self, settings: config_mod.Settings) -> None:
        if self.intake is not None:
            self.intake.stop()
            self.intake = None
        self._apply(settings)
        self.pool.size = self.worker_count
        self.pool.settings = self._worker_settings()
        intake = self._new_intake()
        intake.start()
        self.intake = intake

    def shutdown(self, now: float) -> None:
        if self.intake is not None:
            self.intake.stop()
        for slot in list(self.pool.slots):
            if slot.task is not None:
                jobs.release(self.engine, slot.task.job_id, slot.task.token, now=now)
                log.warning("job %d (%s) requeued: not finished within shutdown.grace_s",
                            slot.task.job_id, slot.task.path)
        self.pool.stop_all("shutting down")
        if self.inference is not None:
            self.inference.stop()
        self._write_status(now, state="stopped")
        if self.listener is not None:
            self.listener.close()
        self.engine.dispose()
        self.instance_lock.release()

    # ----- one iteration ---------------------------------------------------------------------

    def step(self, now: float, monotonic_s: float) -> None:
        if self.intake is not None and self.intake.step(monotonic_s):
            self._next_claim = 0.0
        if self.shared and self.listener is None and monotonic_s >= self._next_listen:
            self._listen(monotonic_s)
        if monotonic_s >= self._next_expire:
            self._next_expire = monotonic_s + max(self.lease_s / 4, 0.5)
            expired = jobs.expire_leases(self.engine, now=now, max_attempts=self.settings.jobs.max_attempts)
            for job_id in expired:
                log.warning("job %d lost its lease (worker died or stalled); requeued", job_id)
                self._next_claim = 0.0
            for slot in self.pool.slots:  # a stalled worker's result will be discarded: the next in line goes
                if slot.task is not None and slot.task.job_id in expired:
                    self._end_turn(slot, now)
        if self.turns.elsewhere and monotonic_s >= self._next_content_poll:
            self._next_content_poll = monotonic_s + CONTENT_POLL_S
            for slot in self.turns.waiting_elsewhere():
                self._take_content(slot, now)
        self._handle_messages(now, monotonic_s, timeout=0)
        self._police_workers(now, monotonic_s)
        if self.inference is not None:
            self.inference.check()
        if self.draining_since is None:
            self._size_pool(now, monotonic_s)
            self._dispatch(now, monotonic_s)
        if monotonic_s >= self._next_status:
            self._next_status = monotonic_s + STATUS_EVERY_S
            self._write_status(now)
        self._tell_systemd(monotonic_s)

    def _size_pool(self, now: float, monotonic_s: float) -> None:
        """Idle workers exit after workers.idle_exit_s (their models are most of an idle daemon's memory) and
        count as asleep; one wakes per job waiting when no worker is free to take it. A worker that died or was
        recycled is replaced at once, as always."""
        idle_exit_s = self.settings.workers.idle_exit_s
        if idle_exit_s > 0:
            for slot in self.pool.idle():
                if monotonic_s - slot.idle_since >= idle_exit_s:
                    log.info("worker %s idle for %g s: exiting (workers.idle_exit_s); workers start again when "
                             "work arrives", slot.name, idle_exit_s)
                    self.pool.retire(slot)
                    self._asleep += 1
                    self._next_status = 0.0
        self._asleep = min(self._asleep, self.pool.size)
        if self._asleep and not self.pool.idle():
            loading = sum(1 for slot in self.pool.slots if not slot.ready)
            wake = jobs.runnable(self.engine, now=now, limit=self._asleep + loading) - loading
            if wake > 0 and self._throttle_allows(monotonic_s):
                self._asleep -= wake
        if self.inference is not None:
            if self._asleep >= self.pool.size and not self.inference.asleep:
                self.inference.sleep()
                self._next_status = 0.0
            elif self._asleep < self.pool.size and self.inference.asleep:
                self.inference.start()
        self.pool.fill(upto=self.pool.size - self._asleep)

    def _throttle_allows(self, monotonic_s: float) -> bool:
        """Whether a sleeping worker may wake for waiting work: a worker woken while the throttle holds jobs back
        would load its models, sit idle, exit after workers.idle_exit_s and wake again, on a machine that is
        already busy. With no worker idle, _dispatch does not sample the machine, so this does, as often."""
        if monotonic_s >= self._next_wake_check:
            self._next_wake_check = monotonic_s + CLAIM_POLL_S
            self.throttle.update(self.probe.sample(self._own_pids()))
        return not self.throttle.paused

    def _dispatch(self, now: float, monotonic_s: float) -> None:
        if monotonic_s < self._next_claim:
            return
        self._next_claim = monotonic_s + CLAIM_POLL_S
        idle = self.pool.idle()
        if not idle or not self.throttle.update(self.probe.sample(self._own_pids())):
            return
        for slot in idle:
            token = f"{self.id}:{slot.name}:{uuid.uuid4().hex[:8]}"
            job = jobs.claim(self.engine, token, lease_s=self.lease_s, now=now)
            if job is None:
                return
            try:
                path = self.library.local(job.path)
            except NotMounted as exc:  # another host may mount it: a transient failure leaves the job to them
                jobs.fail(self.engine, job.id, token, error=str(exc), permanent=False, now=now,
                          max_attempts=self.settings.jobs.max_attempts)
                log.warning("job %d: %s", job.id, exc)
                continue
            plot_path = str(self.publisher.plot_path(path)) if self.settings.output.plots else None
            self.pool.assign(slot, Task(job_id=job.id, token=token, path=path,
                                        max_duration_s=self.settings.jobs.max_duration_s, force=job.force,
                                        plot_path=plot_path, inbox=str(self.settings.inbox.path),
                                        follow_symlinks=self.settings.inbox.follow_symlinks))
            log.info("job %d: %s -> %s (attempt %d)", job.id, path, slot.name, job.attempts)
            self._next_status = 0.0
        self._next_claim = 0.0  # every worker got one: look again as soon as one is free

    def _own_pids(self) -> list[int]:
        pids = [pid for slot in self.pool.slots for pid in slot.pids()]
        return pids + [self.inference.pid] if self.inference is not None and self.inference.pid else pids

    # ----- worker messages -------------------------------------------------------------------

    def _handle_messages(self, now: float, monotonic_s: float, timeout: float) -> None:
        """Read every pending worker message, waiting up to timeout; a signal ends the wait early."""
        conns: dict[Any, Slot] = {slot.conn: slot for slot in self.pool.slots}  # wait() hands back these keys
        listening = [self.listener.fileno()] if self.listener is not None else []
        for conn in wait([*conns, self._wake_r, *listening], timeout=timeout):
            if conn is self._wake_r:
                self._drain_wake()
                continue
            if isinstance(conn, int):  # only the listener is waited on as a bare descriptor
                self._on_notice(monotonic_s)
                continue
            slot = conns[conn]
            try:
                while slot.conn.poll():
                    self._on_message(slot, slot.conn.recv(), now, monotonic_s)
            except (EOFError, OSError):
                continue  # the process is gone; _police_workers deals with it

    def _on_message(self, slot: Slot, message: WorkerMessage, now: float, monotonic_s: float) -> None:
        if isinstance(message, Ready):
            slot.ready, slot.pid, slot.idle_since = True, message.pid, monotonic_s
            self._next_claim = self._next_status = 0.0
            return
        task = slot.task
        if task is None or message.job_id != task.job_id:
            return
        slot.last_heartbeat = monotonic_s
        if isinstance(message, Progress):
            slot.stage = message.stage
            self._beat(task, now, monotonic_s, stage=message.stage, progress=message.fraction, force=True)
        elif isinstance(message, Alive):
            self._beat(task, now, monotonic_s)
        elif isinstance(message, Hashed):
            if self.turns.ask(slot, message.content_hash):
                self._take_content(slot, now)
            else:
                self._show_waiting(slot, now)
        elif isinstance(message, Result):
            slot.task, slot.jobs_done, slot.idle_since = None, slot.jobs_done + 1, monotonic_s
            self._last_beat_write.pop(message.job_id, None)
            self._finish(task, message.outcome, now)
            self._end_turn(slot, now)
            self._next_claim = 0.0
            if slot.jobs_done >= self.settings.workers.max_jobs_per_child:
                slot.retiring = True
                self.pool.retire(slot)

    def _listen(self, monotonic_s: float) -> None:
        """LISTEN for jobs queued by any host; while that fails, the claim poll (CLAIM_POLL_S) still finds them."""
        try:
            self.listener = Listener.open(self.engine)
        except Exception as exc:  # noqa: BLE001 - a hint lost, not work: polling carries on
            self._next_listen = monotonic_s + CLAIM_POLL_S
            log.warning("cannot listen for new jobs (%s); looking every %g s instead", _one_line(exc), CLAIM_POLL_S)

    def _on_notice(self, monotonic_s: float) -> None:
        assert self.listener is not None
        try:
            if self.listener.drain():
                self._next_claim = 0.0
        except Exception as exc:  # noqa: BLE001 - as in _listen; a new listener is tried after a while
            log.warning("stopped listening for new jobs (%s); looking every %g s until it is back",
                        _one_line(exc), CLAIM_POLL_S)
            self.listener.close()
            self.listener = None
            self._next_listen = monotonic_s + CLAIM_POLL_S

    def _go(self, slot: Slot) -> None:
        """The worker's turn: it analyses or links now, and jobs.timeout_s counts from here, not from the claim,
        since waiting for another worker's analysis of the same content is not analysing."""
        if slot.task is not None:
            slot.task_started = time.monotonic()
            try:
                slot.conn.send(Go(slot.task.job_id))
            except OSError:
                pass  # the worker is gone; _police_workers deals with it

    def _take_content(self, slot: Slot, now: float) -> None:
        """Slot holds this daemon's turn on its content; it goes once no job on another host is analysing it."""
        content_hash = self.turns.held_by(slot)
        if slot.task is None or content_hash is None:
            return
        self.turns.elsewhere.setdefault(content_hash, None)  # asked again each CONTENT_POLL_S should this fail
        holder = take_content(self.engine, slot.task.job_id, slot.task.token, content_hash, now=now)
        if holder is None:
            del self.turns.elsewhere[content_hash]
            self._go(slot)
        elif self.turns.elsewhere[content_hash] != holder:
            self.turns.elsewhere[content_hash] = holder
            log.info("job %d: job %d on another host is analysing the same content; waiting to link to it",
                     slot.task.job_id, holder)
            self._show_waiting(slot, now)

    def _show_waiting(self, slot: Slot, now: float) -> None:
        """`status` and `jobs` say the job waits for its turn rather than showing it stuck at 'claimed'."""
        assert slot.task is not None
        slot.stage = "waiting"
        self._beat(slot.task, now, time.monotonic(), stage="waiting", force=True)

    def _end_turn(self, slot: Slot, now: float) -> None:
        """After slot's task ended (its result stored), the next worker waiting for the same content goes."""
        for waiting in self.turns.end(slot):
            self._take_content(waiting, now)

    def _beat(self, task: Task, now: float, monotonic_s: float, *, stage=None, progress=None, force=False) -> None:
        last = self._last_beat_write.get(task.job_id, 0.0)
        if force or monotonic_s - last >= HEARTBEAT_WRITE_EVERY_S or monotonic_s - last >= self.lease_s / 3:
            self._last_beat_write[task.job_id] = monotonic_s
            jobs.heartbeat(self.engine, task.job_id, task.token, lease_s=self.lease_s, now=now,
                           stage=stage, progress=progress)

    def _finish(self, task: Task, outcome: Outcome, now: float) -> None:
        if outcome.kind == "error":
            state = jobs.fail(self.engine, task.job_id, task.token, error=outcome.error or "unknown error",
                              permanent=outcome.permanent, now=now, max_attempts=self.settings.jobs.max_attempts)
            if state is None:
                log.warning("job %d: late error discarded (lease lost)", task.job_id)
                return
            log.warning("job %d %s: %s", task.job_id, state, outcome.error)
            if state == "failed":
                self._failed(task, outcome.error or "unknown error")
            return
        assert outcome.document is not None, "every outcome but an error carries its document"
        try:
            assert outcome.opened is not None, "a worker's document comes with the file it read"
            sidecar = self.publisher.publish_job(outcome.document, task.path, job_id=task.job_id, token=task.token,
                                                 outcome=outcome.kind, opened=outcome.opened, now=now)
        except FileChanged as exc:
            self._finish(task, Outcome("error", error=str(exc), permanent=False), now)
            return
        except FileGone as exc:
            self._finish(task, Outcome("error", error=str(exc), permanent=True), now)
            return
        except Exception as exc:  # noqa: BLE001 - a result that cannot be stored fails its job, not the daemon
            if store_trouble(exc):
                raise  # not the result's fault: run() says so in one line, and the job's lease runs out and requeues it
            if not isinstance(exc, OSError):  # a full or read-only disk says all in the line below; others need tracing
                log.exception("job %d: storing the result failed", task.job_id)
            self._finish(task, Outcome("error", error=f"{task.path}: storing the result failed: "
                                                      f"{type(exc).__name__}: {exc}"), now)
            return
        if sidecar is None:
            log.warning("job %d: late result discarded (lease lost)", task.job_id)
            return
        log.info("job %d done (%s): %s", task.job_id, outcome.kind, task.path)
        if self.settings.output.write_tags:
            self._write_tags(task.path, outcome.document)
        audio, sidecar = self.publisher.set_aside(task.path, "done", sidecar=sidecar)
        hooks.fire(self.settings.hooks, hooks.JobEvent(
            "done", task.job_id, audio, sidecar=str(sidecar) if sidecar else None, outcome=outcome.kind,
            content_hash=outcome.document["file"]["content_hash"]))

    def _write_tags(self, path: str, document: dict[str, Any]) -> None:
        """output.write_tags, right after the result is stored (publish_job has just seen the file unchanged): a
        file that cannot be tagged keeps its analysis, and the log says why."""
        from beatwatch.render.file_tags import TagError

        from .tagging import tag_file

        output = self.settings.output
        try:
            tag_file(self.engine, path, document, notation=output.tag_key, replaygain=output.tag_replaygain,
                     check_content=False, stored_as=self.library.stored(path))
        except TagError as exc:
            log.warning("%s", exc)

    def _failed(self, task: Task, error: str) -> None:
        """A job failed for good: its file set aside (inbox.after = "move"), then hooks.on_failed."""
        audio, _ = self.publisher.set_aside(task.path, "failed")
        hooks.fire(self.settings.hooks, hooks.JobEvent("failed", task.job_id, audio, error=error))

    # ----- watching the workers --------------------------------------------------------------

    def _police_workers(self, now: float, monotonic_s: float) -> None:
        limits = self.settings.jobs
        for slot in list(self.pool.slots):
            task = slot.task
            if not slot.process.is_alive():
                code = slot.process.exitcode
                self.pool.kill(slot, f"exited with code {code}")
                if task is not None:
                    self._fail_killed(task, f"worker died (exit code {code}) while analysing", now)
                self._end_turn(slot, now)
                continue
            if task is None:
                continue
            if monotonic_s - slot.task_started > limits.timeout_s and not self.turns.waiting(slot):
                self.pool.kill(slot, f"job {task.job_id} exceeded jobs.timeout_s")
                self._fail_killed(task, f"timed out after {limits.timeout_s:g} s {TIMEOUT_MARK}", now)
                self._end_turn(slot, now)
            elif (rss := slot.rss_mb()) > limits.memory_mb:
                self.pool.kill(slot, f"job {task.job_id} used {rss:.0f} MB")
                self._fail_killed(task, f"used {rss:.0f} MB, more than jobs.memory_mb = {limits.memory_mb}", now)
                self._end_turn(slot, now)

    def _fail_killed(self, task: Task, why: str, now: float) -> None:
        """A killed worker's job is transient (the machine may have been busy), except a second timeout."""
        state = jobs.fail(self.engine, task.job_id, task.token, error=f"{task.path}: {why}", permanent=False,
                          now=now, max_attempts=self.settings.jobs.max_attempts, permanent_if_repeated=TIMEOUT_MARK)
        log.warning("job %d %s: %s", task.job_id, state or "already requeued", why)
        if state == "failed":
            self._failed(task, f"{task.path}: {why}")
        self._next_claim = 0.0

    # ----- reporting -------------------------------------------------------------------------

    def _write_status(self, now: float, state: str | None = None) -> None:
        write_status(self.engine, self.host, {
            "daemon": self.id,
            "machine": this_machine(),
            "pid": os.getpid(),
            "state": state or ("draining" if self.draining_since is not None else "running"),
            "updated_at": now,
            "throttle": self.throttle.describe(),
            "workers_asleep": self._asleep,
            "workers": [{"name": s.name, "pid": s.process.pid, "ready": s.ready, "busy": s.busy,
                         "stage": s.stage if s.busy else "",
                         "job_id": s.task.job_id if s.task else None, "jobs_done": s.jobs_done,
                         "rss_mb": round(s.rss_mb())} for s in self.pool.slots],
            "inference": self._describe_inference(),
            "pending_files": self.intake.pending if self.intake else 0,
            "tags": self.tags_warning,
        })

    def _describe_inference(self) -> str:
        where = f"on {self.device.name} ({self.device.reason})"
        if self.inference is None:
            return f"in each worker {where}"
        state = (f"pid {self.inference.pid}" if self.inference.pid
                 else "asleep with the workers" if self.inference.asleep else "restarting")
        return f"inference process ({state}, restarts: {self.inference.restarts}) {where}"

    def _tell_systemd(self, monotonic_s: float) -> None:
        if not self.notifier.enabled:
            return
        interval = self.notifier.watchdog_interval_s
        if monotonic_s >= self._next_watchdog:
            self._next_watchdog = monotonic_s + (interval if interval else STATUS_EVERY_S)
            busy = sum(1 for s in self.pool.slots if s.busy)
            fields: dict = {"STATUS": f"{busy}/{len(self.pool.slots)} workers busy; {self.throttle.describe()}"}
            if interval:
                fields["WATCHDOG"] = 1
            self.notifier.send(**fields)

    # ----- the loop --------------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        self.start(time.time())
        self.notifier.send(READY=1, STATUS="started", MAINPID=os.getpid())
        grace = self.settings.shutdown.grace_s
        while True:
            monotonic_s = time.monotonic()
            if self.flags.stop and self.draining_since is None:
                self.draining_since = monotonic_s
                self.notifier.send(STOPPING=1, STATUS="draining")
                log.info("stopping: no new jobs; waiting up to %g s for %d running job(s)", grace,
                            sum(1 for s in self.pool.slots if s.busy))
            if self.draining_since is not None and (
                    not any(s.busy for s in self.pool.slots) or monotonic_s - self.draining_since >= grace):
                break
            try:
                if self.flags.reload:
                    self.flags.reload = False
                    self.reload()
                if self._store_trouble is not None:
                    self._write_status(time.time())  # a real write: an iteration that wrote nothing proves nothing
                self.step(time.time(), monotonic_s)
                self._handle_messages(time.time(), time.monotonic(), timeout=self._sleep_for(time.monotonic()))
            except OperationalError as exc:
                trouble = store_trouble(exc)
                if trouble is None:
                    log.exception("supervisor step failed; continuing")
                else:
                    self._note_store_trouble(trouble, monotonic_s)
                time.sleep(TICK_S)
            except Exception:  # noqa: BLE001 - one bad iteration must not kill the service
                log.exception("supervisor step failed; continuing")
                time.sleep(TICK_S)
            else:
                self._note_store_fine(monotonic_s)
        self.shutdown(time.time())
        log.info("stopped")
        return 0

    def _note_store_trouble(self, trouble: str, monotonic_s: float) -> None:
        """A database locked by another process, out of disk space or made read-only is no bug of ours and passes
        when fixed outside: one line when it starts and one every STORE_TROUBLE_LOG_EVERY_S while it lasts, not a
        traceback per attempt."""
        if self._store_trouble != trouble:
            self._store_trouble, self._trouble_since, self._trouble_logged = trouble, monotonic_s, monotonic_s
            log.warning("database %s, retrying", trouble)
        elif monotonic_s - self._trouble_logged >= STORE_TROUBLE_LOG_EVERY_S:
            self._trouble_logged = monotonic_s
            log.warning("database still %s after %.0f s, retrying", trouble, monotonic_s - self._trouble_since)

    def _note_store_fine(self, monotonic_s: float) -> None:
        """Arrivals that settled while nothing could be queued left the tracker: a scan finds them again."""
        if self._store_trouble is not None:
            log.info("database writable again after %.0f s", monotonic_s - self._trouble_since)
            self._store_trouble = None
            if self.intake is not None:
                self.intake.rescan_soon()

    def _sleep_for(self, monotonic_s: float) -> float:
        deadline = self.intake.next_deadline() if self.intake else None
        wake = min(TICK_S, max(deadline - monotonic_s, 0.05)) if deadline is not None else TICK_S
        return 0.0 if self.flags.stop or self.flags.reload else wake

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(512):
                pass
        except BlockingIOError:
            pass

    def _install_signals(self) -> None:
        def stop(signum, frame) -> None:
            self.flags.stop = True

        def hup(signum, frame) -> None:
            self.flags.reload = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
