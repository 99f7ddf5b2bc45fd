"""The body of a worker process: load the models once, then analyse one task at a time.

Workers compute and report; they never write the database or sidecars. The
supervisor publishes a result only while the job's lease is still held, so
a worker that was stopped, timed out or replaced cannot overwrite newer work.
A heartbeat thread proves the process is alive even during one long stage; a
stopped (SIGSTOP) process stops heartbeating and so loses its lease.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import threading
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path

from .admission import Refused, open_admitted
from .library_paths import Library
from .memory import release_free_memory
from .protocol import (Alive, Go, Hashed, Outcome, OutcomeKind, Progress, Ready, Result, Task, WorkerMessage,
                       WorkerSettings)
from .publish import file_stamp, write_plot

HEARTBEAT_S = 1.0


def main(conn: Connection, settings: WorkerSettings) -> None:
    """Entry point of the spawned process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which drains.
    one_thread_per_worker()
    if settings.nice:
        os.nice(settings.nice)
    from beatwatch.analysis.pipeline import Analyzer
    from beatwatch.store.db import open_database

    analyzer = Analyzer(_networks(settings), chunk_s=settings.chunk_s, min_bpm=settings.min_bpm,
                        max_bpm=settings.max_bpm, after_chunk=release_free_memory)
    engine = open_database(settings.store_url)
    _cap_address_space(settings.memory_mb)
    send_lock = threading.Lock()

    def send(message: WorkerMessage) -> None:
        with send_lock:
            conn.send(message)

    library = Library.of({name: Path(root) for name, root in settings.library_roots})
    send(Ready(os.getpid()))
    while True:
        try:
            task: Task | None = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        stop_beat = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(send, task.job_id, stop_beat), daemon=True)
        beat.start()
        try:
            outcome = run_task(analyzer, engine, task, progress=partial(_send_progress, send, task.job_id),
                               wait_turn=partial(_wait_turn, conn, send, task.job_id), library=library)
        finally:
            stop_beat.set()
            beat.join()
        send(Result(task.job_id, task.token, outcome))


def one_thread_per_worker() -> None:
    """The pool is the parallelism (a worker per CPU at most): one thread per worker for TensorFlow (tags) and
    for numpy's BLAS (the spectrograms' filterbank products), which would otherwise start a thread per CPU in
    every worker: two workers on two CPUs spent twice as long in features that way. Must run before numpy
    loads, which importing this module does not do."""
    for variable in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                     "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")


def _networks(settings: WorkerSettings):
    """The inference process's client when there is one (inference.mode = process), else our own models."""
    if settings.inference_address is not None:
        from .inference_client import InferenceClient
        return InferenceClient(settings.inference_address)
    from beatwatch.analysis.nets.networks import Networks
    return Networks(device=settings.device, threads=1, models_dir=settings.models_dir)


def _cap_address_space(memory_mb: int) -> None:
    """A hard backstop under the supervisor's RSS check: allocation fails (MemoryError) past the models' size plus
    twice the job limit, before a runaway job can push the machine into swap between two checks. Child
    decoders inherit the cap."""
    import psutil

    limit = psutil.Process().memory_info().vms + 2 * memory_mb * 2**20
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or limit < hard:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _send_progress(send: Callable[[WorkerMessage], None], job_id: int, stage: str, fraction: float) -> None:
    send(Progress(job_id, stage, fraction))


def _wait_turn(conn: Connection, send: Callable[[WorkerMessage], None], job_id: int, content_hash: str) -> None:
    """Tell the supervisor the task's content and wait until it is this worker's (daemon/turns.py)."""
    send(Hashed(job_id, content_hash))
    while True:
        message = conn.recv()
        if message is None:
            raise SystemExit(0)  # asked to exit while waiting: nothing was computed, the job's lease runs out
        if isinstance(message, Go) and message.job_id == job_id:
            return


def _heartbeat(send: Callable[[WorkerMessage], None], job_id: int, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        send(Alive(job_id))


def run_task(analyzer, engine, task: Task, *, progress: Callable[[str, float], None],
             wait_turn: Callable[[str], None] = lambda content_hash: None, library: Library | None = None) -> Outcome:
    """Reuse an existing analysis of the same content (unless retry forces), else analyse; errors become outcomes.

    The file is opened once, checked, and only that open file is hashed and decoded, so a name swapped for
    another file (or a link out of the inbox) after the check is never read. wait_turn(content_hash) returns
    once no other worker is analysing the same content, so a copy claimed alongside its original links to
    the original's analysis instead of repeating it.
    """
    from beatwatch.analysis.audio.decode import content_hash
    from beatwatch.analysis.errors import AnalysisError

    try:
        # Checked again here, not only at queueing: the name may have become a FIFO or an outside link since.
        fd = open_admitted(task.path, Path(task.inbox) if task.inbox else None, task.follow_symlinks)
    except Refused as exc:
        return Outcome("error", error=f"{task.path}: {exc}", permanent=True)
    except FileNotFoundError:
        return Outcome("error", error=f"{task.path}: file disappeared before analysis", permanent=True)
    except PermissionError as exc:
        return _no_permission(task, exc)
    try:
        opened = file_stamp(os.fstat(fd))  # before the first byte is read: any later change gets another ctime
        digest = content_hash(fd)
        if not task.force:
            wait_turn(digest)
        document = None if task.force else _linked_document(engine, digest, task.path, library or Library())
        kind: OutcomeKind = "linked"
        if document is None:
            document = analyzer.analyze(task.path, max_duration_s=task.max_duration_s, progress=progress,
                                        digest=digest, fd=fd)
            kind = "analysed"
        if task.plot_path:  # drawn here, not in the supervisor: a figure takes a second, its loop must not wait
            progress("plot", 0.97)
            write_plot(document, Path(task.plot_path))
        return Outcome(kind, document=document, opened=opened)
    except AnalysisError as exc:
        return Outcome("error", error=str(exc), permanent=exc.permanent)
    except PermissionError as exc:
        return _no_permission(task, exc)
    except MemoryError:
        return Outcome("error", error=f"{task.path}: out of memory during analysis", permanent=False)
    except Exception as exc:  # noqa: BLE001 - any other failure is this job's, never the worker's
        return Outcome("error", error=f"{task.path}: {type(exc).__name__}: {exc}", permanent=False)
    finally:
        os.close(fd)


def _no_permission(task: Task, exc: PermissionError) -> Outcome:
    """Permissions do not mend themselves between retries: the job fails at once, saying what to fix."""
    return Outcome("error", error=f"{task.path}: permission denied ({exc.strerror}); the daemon's user must be "
                                  "able to read it", permanent=True)


def _linked_document(engine, digest: str, path: str, library: Library) -> dict | None:
    """The stored analysis of this content as this file's document, or None when there is none to trust.

    The sidecar the analysis row names may hold other content by now (its audio was overwritten and analysed
    again, or another file's sidecar took its name), so its content_hash must be the stored content's: this
    file's, or the untagged original's when this file is a copy beatwatch wrote tags into. The sidecar is read
    through this host's mount of the library, wherever the host that wrote it mounts it.
    """
    from beatwatch.analysis import ANALYZER_VERSION
    from beatwatch.analysis.document import printable
    from beatwatch.store.records import existing_analysis

    found = existing_analysis(engine, digest, ANALYZER_VERSION)
    sidecar = library.local_or_none(found.sidecar_path) if found is not None and found.sidecar_path else None
    if found is None or sidecar is None:
        return None
    try:
        document = json.loads(Path(sidecar).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or (document.get("file") or {}).get("content_hash") != found.content_hash:
        return None
    document["file"]["path"] = printable(path)
    return document
