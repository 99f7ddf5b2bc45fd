"""Processes that never run a network never load a neural runtime: checked in fresh interpreters.

The supervisor, the watcher and `beatwatch status` used to import onnxruntime
(+40 MB in the supervisor) through the analysis package; only workers and the
inference process may load onnxruntime, Essentia, TensorFlow or madmom.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("onnxruntime", "essentia", "tensorflow", "madmom")
LIGHT_MODULES = (
    "beatwatch.daemon.cli", "beatwatch.daemon.supervisor", "beatwatch.daemon.status",
    "beatwatch.store.db", "beatwatch.store.jobs", "beatwatch.store.migrations", "beatwatch.store.models",
    "beatwatch.store.records", "beatwatch.store.sidecar", "beatwatch.store.daemon_status",
)


def modules_after(script: str) -> list[str]:
    """Every module in sys.modules once `script` ran in a fresh interpreter."""
    probe = f"{script}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def heavy_after(script: str) -> list[str]:
    """The heavy runtimes in sys.modules once `script` ran in a fresh interpreter."""
    return [name for name in modules_after(script) if name in HEAVY]


def test_the_probe_sees_a_runtime_when_one_loads():
    assert heavy_after("import beatwatch.analysis.nets.networks") == sorted(["essentia", "madmom", "onnxruntime"])


def test_cli_supervisor_status_and_store_load_no_neural_runtime():
    assert heavy_after("\n".join(f"import {name}" for name in LIGHT_MODULES)) == []


def test_the_store_reads_the_document_format_and_no_audio_code():
    store = [name for name in LIGHT_MODULES if name.startswith("beatwatch.store.")]
    loaded = modules_after("\n".join(f"import {name}" for name in store))
    assert [name for name in loaded if name.startswith("beatwatch.analysis")] == [
        "beatwatch.analysis", "beatwatch.analysis.document"]
    assert "numpy" not in loaded


def test_beatwatch_status_runs_without_a_neural_runtime(tmp_path: Path):
    config = tmp_path / "beatwatch.toml"
    config.write_text('[store]\nurl = "sqlite:///beatwatch.db"\n')
    script = ("import contextlib, io\nfrom beatwatch.daemon.cli import main\n"
              "from beatwatch.store.db import open_database, sqlite_url\n"
              f"open_database(sqlite_url({str(tmp_path / 'beatwatch.db')!r})).dispose()\n"
              "with contextlib.redirect_stdout(io.StringIO()):\n"
              f"    assert main(['status', '--config', {str(config)!r}]) == 0")
    assert heavy_after(script) == []


def test_the_supervisor_learns_its_device_from_a_child():
    script = ("from beatwatch.daemon.supervisor import resolve_device_in_child\n"
              "assert resolve_device_in_child('auto').reason.startswith('auto: ')\n"
              "assert resolve_device_in_child('cpu').name == 'cpu'")
    assert heavy_after(script) == []
