"""The inference process: one long-lived process that owns the networks and serves every worker.

Loading each model once, in one place, is what lets a GPU be fed from all
workers together: requests for a batchable network that arrive within
`inference.max_wait_ms` of the first are run as one batch of up to
`inference.max_batch` inputs; the others run as they come. Workers talk to
it over a Unix socket in a private folder (multiprocessing.connection,
pickled arrays in the message types of `protocol`). If it dies, the
supervisor starts a new one on the same socket path and each worker's
client reconnects and sends its pending request again (`inference_client`).
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Listener
from multiprocessing.process import BaseProcess

from .pool import spawn
from .protocol import (INFERENCE_METHODS, InferenceAnswer, InferenceHello, InferenceMethod, InferenceRefusal,
                       InferenceRequest, InferenceSettings)

log = logging.getLogger(__name__)

# A process that dies this soon after starting is not restarted at once, so a broken model cannot spin.
RESTART_BACKOFF_S = 5.0


@dataclass
class Queued:
    """A request waiting for its batch, with the connection its answer goes back on."""

    conn: Connection
    send_lock: threading.Lock
    request: InferenceRequest

    @property
    def method(self) -> InferenceMethod:
        return self.request.method

    @property
    def inputs(self) -> list:
        return self.request.inputs

    def answer(self, outputs: list, batch: int) -> None:
        self._send(InferenceAnswer(self.request.request_id, outputs, batch))

    def refuse(self, error: str) -> None:
        self._send(InferenceRefusal(self.request.request_id, error))

    def _send(self, message: InferenceAnswer | InferenceRefusal) -> None:
        try:
            with self.send_lock:
                self.conn.send(message)
        except (OSError, ValueError):
            pass  # that worker went away; its job is its supervisor's business


@dataclass
class Batcher:
    """Groups queued requests into batches and runs them on the networks."""

    networks: object
    requests: queue.Queue
    max_batch: int
    max_wait_s: float
    batchable: frozenset
    _held: deque = field(default_factory=deque)

    def next_batch(self) -> list[Queued]:
        first = self._held.popleft() if self._held else self.requests.get()
        batch, size = [first], len(first.inputs)
        if first.method not in self.batchable:
            return batch
        for item in [item for item in self._held if item.method == first.method]:
            if size + len(item.inputs) <= self.max_batch:
                self._held.remove(item)
                batch.append(item)
                size += len(item.inputs)
        deadline = time.monotonic() + self.max_wait_s
        while size < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self.requests.get(timeout=remaining) if remaining > 0 else self.requests.get_nowait()
            except queue.Empty:
                break
            if item.method == first.method and size + len(item.inputs) <= self.max_batch:
                batch.append(item)
                size += len(item.inputs)
            else:
                self._held.append(item)
        return batch

    def run(self, batch: list[Queued]) -> None:
        method = getattr(self.networks, batch[0].method)
        try:
            outputs = method([x for request in batch for x in request.inputs])
        except Exception as exc:  # noqa: BLE001 - a bad input fails its request, never the process
            if len(batch) > 1:
                for request in batch:  # find whose input it was; the others still get answers
                    self.run([request])
                return
            batch[0].refuse(f"{type(exc).__name__}: {exc}")
            return
        start = 0
        for queued in batch:
            queued.answer(outputs[start:start + len(queued.inputs)], len(batch))
            start += len(queued.inputs)

    def forever(self) -> None:
        while True:
            self.run(self.next_batch())


def _read(conn: Connection, hello: InferenceHello, requests: queue.Queue) -> None:
    """One worker's connection: greet it, then queue each request it sends until it hangs up."""
    send_lock = threading.Lock()
    try:
        with send_lock:
            conn.send(hello)
        while True:
            request = conn.recv()
            if not isinstance(request, InferenceRequest):
                raise TypeError(f"not an inference request: {type(request).__name__}")
            queued = Queued(conn, send_lock, request)
            if request.method in INFERENCE_METHODS:
                requests.put(queued)
            else:
                queued.refuse(f"unknown inference method {request.method!r}")
    except (EOFError, OSError, ValueError, TypeError):
        conn.close()


def serve(address: str, settings: InferenceSettings) -> None:
    """Entry point of the spawned process: load the networks, then answer requests until killed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which stops us last.
    if settings.nice:
        os.nice(settings.nice)
    from beatwatch.analysis.nets.networks import BATCHED, Networks

    networks = Networks(device=settings.device, threads=settings.threads, models_dir=settings.models_dir or None)
    hello = InferenceHello(pid=os.getpid(), device=networks.device.name, reason=networks.device.reason,
                           tag_models=networks.tag_models, tags=networks.describe_tags())
    requests: queue.Queue = queue.Queue()
    if os.path.exists(address):
        os.unlink(address)  # left by a killed predecessor
    listener = Listener(address, family="AF_UNIX")

    def accept() -> None:
        while True:
            conn = listener.accept()
            threading.Thread(target=_read, args=(conn, hello, requests), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    Batcher(networks, requests, settings.max_batch, settings.max_wait_ms / 1000.0, BATCHED).forever()


class InferenceProcess:
    """The supervisor's handle: start it, restart it when it dies, stop it last."""

    def __init__(self, settings: InferenceSettings) -> None:
        self._folder = tempfile.mkdtemp(prefix="beatwatch-")
        self.address = os.path.join(self._folder, "inference.sock")
        self.settings = settings
        self.process: BaseProcess | None = None
        self.restarts = 0
        self._started = 0.0

    def start(self) -> None:
        self.process = spawn(serve, (self.address, self.settings), name="beatwatch-inference")
        self._started = time.monotonic()
        log.info("started the inference process (pid %s)", self.process.pid)

    def check(self) -> None:
        """Restart it if it died (its clients resend what they were waiting for)."""
        if self.process is None or self.process.is_alive():
            return
        if time.monotonic() - self._started < RESTART_BACKOFF_S:
            return
        log.warning("inference process (pid %s) exited with code %s; restarting", self.process.pid,
                    self.process.exitcode)
        self.restarts += 1
        self.start()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.is_alive() else None

    @property
    def asleep(self) -> bool:
        return self.process is None

    def sleep(self) -> None:
        """End it while every worker is asleep (workers.idle_exit_s): its models are most of an idle daemon's
        memory. start() brings it back before the first worker wakes; check() leaves a sleeping one alone."""
        self._end()
        self.process = None
        log.info("inference process exiting: every worker is asleep; it starts again when work arrives")

    def stop(self) -> None:
        self._end()
        shutil.rmtree(self._folder, ignore_errors=True)

    def _end(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(timeout=5)
