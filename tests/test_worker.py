"""A worker's task in-process: each file hashed once, an earlier analysis reused, errors as outcomes; and the
protocol's messages survive the pickling that spawn's pipes apply."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import pickle

import pytest

from beatwatch.daemon import protocol
from beatwatch.daemon.publish import Publisher
from beatwatch.daemon.worker import run_task
from tests.helpers import click_track, write_wav


def task(path, **extra) -> protocol.Task:
    return protocol.Task(job_id=1, token="w1", path=str(path), max_duration_s=600.0, **extra)


def test_the_file_is_hashed_once_and_a_copy_links_to_its_analysis(analyzer, engine, tmp_path, monkeypatch):
    import beatwatch.analysis.pipeline as pipeline

    signal, _ = click_track(120, seconds=8.0)
    audio = write_wav(tmp_path / "a.wav", signal)
    hashed: list[str] = []
    real_hash = pipeline.content_hash
    monkeypatch.setattr(pipeline, "content_hash", lambda path: hashed.append(path) or real_hash(path))
    stages: list[str] = []
    outcome = run_task(analyzer, engine, task(audio), progress=lambda stage, fraction: stages.append(stage))
    assert outcome.kind == "analysed", outcome.error
    assert hashed == [], "the pipeline got the worker's hash"
    assert outcome.document["file"]["content_hash"] == hashlib.sha256(audio.read_bytes()).hexdigest()
    assert stages[0] == "decode"

    Publisher(engine).publish(outcome.document, audio)
    copy = tmp_path / "copy.wav"
    copy.write_bytes(audio.read_bytes())
    linked = run_task(analyzer, engine, task(copy), progress=lambda stage, fraction: None)
    assert linked.kind == "linked"
    assert linked.document["file"]["path"] == str(copy)
    assert linked.document["timeline"] == outcome.document["timeline"]


def test_a_vanished_file_is_a_permanent_error_outcome(analyzer, engine, tmp_path):
    outcome = run_task(analyzer, engine, task(tmp_path / "gone.wav"), progress=lambda stage, fraction: None)
    assert outcome == protocol.Outcome("error", error=f"{tmp_path / 'gone.wav'}: file disappeared before analysis",
                                       permanent=True)


@pytest.mark.parametrize("message", [
    protocol.Ready(pid=12),
    protocol.Progress(job_id=3, stage="decode", fraction=0.25),
    protocol.Alive(job_id=3),
    protocol.Result(job_id=3, token="t", outcome=protocol.Outcome("linked", document={"schema": "x"})),
    protocol.Task(job_id=3, token="t", path="/in/a.wav", max_duration_s=60.0, plot_path="/in/a.wav.beatwatch.png"),
    protocol.WorkerSettings(store_url="sqlite:///x.db", nice=10, memory_mb=1500, chunk_s=300.0, min_bpm=55.0,
                            max_bpm=215.0, models_dir="/m",
                            device="cpu", inference_address=None),
    protocol.InferenceSettings(device="cpu", models_dir=None, max_batch=8, max_wait_ms=20.0, threads=2, nice=0),
    protocol.InferenceHello(pid=4, device="cpu", reason="inference.device = cpu", tag_models=["genre"], tags="1"),
    protocol.InferenceRequest(request_id=7, method="key", inputs=[[0.5]]),
    protocol.InferenceAnswer(request_id=7, outputs=[[0.5]], batch=2),
    protocol.InferenceRefusal(request_id=7, error="ValueError: bad width"),
])
def test_every_message_survives_pickling_and_is_frozen(message):
    assert pickle.loads(pickle.dumps(message)) == message
    with pytest.raises(AttributeError):
        message.__setattr__("job_id" if hasattr(message, "job_id") else next(iter(vars(message))), None)


def test_a_worker_runs_numpy_on_one_thread():
    """Two workers on two CPUs each starting a BLAS thread per CPU ran the spectrograms at half speed."""
    script = ("import sys\n"
              "from beatwatch.daemon import worker\n"
              "assert 'numpy' not in sys.modules, 'numpy loaded before the worker could set its threads'\n"
              "worker.one_thread_per_worker()\n"
              "import numpy, scipy.signal\n"
              "from threadpoolctl import threadpool_info\n"
              "print(sorted({pool['num_threads'] for pool in threadpool_info()}))\n")
    env = {key: value for key, value in os.environ.items() if not key.endswith("_NUM_THREADS")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[1]"
