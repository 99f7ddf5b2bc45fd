"""The supervisor in-process, workers faked at the spawn call: what a SIGHUP reload hands to new workers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from beatwatch.daemon import config as config_mod
from beatwatch.daemon import pool as pool_mod
from beatwatch.daemon.protocol import WorkerSettings
from beatwatch.daemon.supervisor import Supervisor


@pytest.fixture
def spawned(monkeypatch) -> list[WorkerSettings]:
    """Each worker's settings, in spawn order; no process starts."""
    started: list[WorkerSettings] = []

    def spawn(target, args, *, name):
        _conn, settings = args
        started.append(settings)
        return SimpleNamespace(pid=10_000 + len(started), is_alive=lambda: True)

    monkeypatch.setattr(pool_mod, "spawn", spawn)
    return started


def write_config(path: Path, body: str) -> Path:
    path.write_text(f'[inbox]\npath = "inbox"\n[store]\nurl = "sqlite:///beatwatch.db"\n'
                    f'[inference]\ndevice = "cpu"\n{body}')
    return path


def test_workers_started_after_a_reload_get_the_new_settings_running_ones_keep_theirs(tmp_path, spawned):
    config = write_config(tmp_path / "beatwatch.toml", "[workers]\ncount = 1\n[resources]\nnice = 5\n"
                                                       "[jobs]\nmemory_mb = 1500\n[analysis]\nchunk_s = 300\n")
    supervisor = Supervisor(config_mod.load(config), config_path=config)
    try:
        supervisor.pool.fill()
        write_config(config, '[workers]\ncount = 2\n[resources]\nnice = 12\n[jobs]\nmemory_mb = 900\n'
                             '[analysis]\nchunk_s = 120\n[models]\ndir = "other-models"\n[store]\n')
        with pytest.raises(config_mod.ConfigError):
            config_mod.load(config)  # a broken config: the reload keeps the running one
        supervisor.reload()
        assert supervisor.pool.settings == spawned[0]
        write_config(config, '[workers]\ncount = 2\n[resources]\nnice = 12\n[jobs]\nmemory_mb = 900\n[analysis]\n'
                             'chunk_s = 120\nmin_bpm = 150\nmax_bpm = 200\n[models]\ndir = "other-models"\n')
        supervisor.reload()
        supervisor.pool.fill()
    finally:
        supervisor.engine.dispose()
    first, second = spawned
    assert (first.nice, first.memory_mb, first.chunk_s) == (5, 1500, 300.0)
    assert (second.nice, second.memory_mb, second.chunk_s) == (12, 900, 120.0)
    assert (first.min_bpm, first.max_bpm, second.min_bpm, second.max_bpm) == (55.0, 215.0, 150.0, 200.0)
    assert second.models_dir == str(tmp_path / "other-models")
    assert (second.store_url, second.device, second.inference_address) == (
        first.store_url, first.device, first.inference_address)
    assert [slot.process.pid for slot in supervisor.pool.slots] == [10_001, 10_002]
