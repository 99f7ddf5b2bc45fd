"""The inference process for real on the CPU: batching across workers, kill -9 and restart, device, errors."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time

import numpy as np
import pytest

from beatwatch.daemon.inference import InferenceProcess
from beatwatch.daemon.inference_client import InferenceClient
from beatwatch.daemon.protocol import InferenceSettings
from tests.daemon_harness import wait_for

pytestmark = pytest.mark.slow  # every test starts the inference process

FEATURES = 314


def _features(seed: int, frames: int) -> np.ndarray:
    return np.random.default_rng(seed).random((frames, FEATURES), dtype=np.float32)


@pytest.fixture
def inference():
    started = []

    def make(**overrides) -> InferenceProcess:
        options = {"device": "cpu", "models_dir": None, "max_batch": 8, "max_wait_ms": 20.0, "threads": 1, "nice": 0}
        process = InferenceProcess(InferenceSettings(**{**options, **overrides}))
        process.start()
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


def _worker(address: str, seed: int, barrier, results) -> None:
    """A worker process's side: one downbeat request, sent when the other worker sends its own."""
    client = InferenceClient(address)
    barrier.wait()
    (activations,) = client.downbeats([_features(seed, 400 + 100 * seed)])
    results.put((seed, activations, client.last_batch, client.device.name))


def test_two_workers_requests_run_as_one_batch_with_the_local_answer(inference, analyzer):
    server = inference(max_wait_ms=3000.0)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(server.address, seed, barrier, results)) for seed in (1, 2)]
    for worker in workers:
        worker.start()
    answers = {seed: rest for seed, *rest in (results.get(timeout=120) for _ in workers)}
    for worker in workers:
        worker.join(timeout=30)
    for seed, (activations, batch, device) in answers.items():
        assert batch == 2, "both workers' requests shared one network call"
        assert device == "cpu"
        local = analyzer.networks.downbeats([_features(seed, 400 + 100 * seed)])[0]
        assert activations.shape == (400 + 100 * seed, 2)
        assert np.abs(activations - local).max() < 1e-5


def test_requests_pending_when_the_process_is_killed_are_answered_after_the_restart(inference, analyzer):
    server = inference()
    client = InferenceClient(server.address)
    first_pid = client.hello.pid
    features = _features(7, 30_000)  # several seconds on one thread: still running when the kill comes
    answer: dict = {}
    request = threading.Thread(target=lambda: answer.update(result=client.downbeats([features])[0]))
    request.start()
    time.sleep(1.0)
    os.kill(first_pid, signal.SIGKILL)

    def restarted() -> bool:
        server.check()
        return server.pid not in (None, first_pid)

    wait_for(restarted, 60, "the supervisor's check to restart the inference process", interval=0.5)
    request.join(timeout=120)
    assert server.restarts == 1
    assert client.hello.pid == server.pid, "the client reconnected to the new process"
    expected = analyzer.networks.downbeats([features])[0]
    assert answer["result"].shape == expected.shape
    assert np.abs(answer["result"] - expected).max() < 1e-5


def test_a_bad_request_gets_an_error_and_the_process_serves_on(inference):
    from beatwatch.analysis.errors import AnalysisError

    server = inference()
    client = InferenceClient(server.address)
    with pytest.raises(AnalysisError, match="inference process"):
        client.downbeats([np.zeros((50, 7), np.float32)])  # wrong feature width
    (activations,) = client.downbeats([_features(1, 120)])
    assert activations.shape == (120, 2)
    assert server.pid == client.hello.pid and server.restarts == 0
    assert client.device.name == "cpu" and "inference.device = cpu" in client.device.reason
