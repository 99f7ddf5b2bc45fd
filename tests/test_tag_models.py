"""A models folder that gives no tags is said out loud, and the default finds the models `make install` built."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from beatwatch.analysis.nets.zoo import write_metadata
from beatwatch.daemon.config import PROJECT_MODELS_DIR
from beatwatch.daemon.tag_models import tags_warning
from tests.helpers import click_track, write_wav

BEATWATCH = str(Path(sys.executable).with_name("beatwatch"))
BUILT = (PROJECT_MODELS_DIR / "msd-musicnn.pb").is_file()


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "BEATWATCH_CONFIG"}
    return subprocess.run([BEATWATCH, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def _pair(folder: Path, name: str) -> None:
    write_metadata(folder / f"{name}.json", name=name, classes=["a", "b"], input="x", output="y", embeddings=None,
                   input_shape=[1, 187, 96])
    (folder / f"{name}.pb").write_bytes(b"graph")


def test_the_warning_says_what_is_wrong_with_the_folder(tmp_path):
    assert "does not exist" in tags_warning(tmp_path / "nowhere")
    assert "holds no model (name.pb + name.json)" in tags_warning(tmp_path)
    (tmp_path / "half.json").write_text("{}")  # a json without its graph is not a model
    assert "holds no model (" in tags_warning(tmp_path)
    _pair(tmp_path, "broken")
    (tmp_path / "broken.json").write_text(json.dumps({"classes": []}))
    assert "broken.json" in tags_warning(tmp_path) and "models build" in tags_warning(tmp_path)
    _pair(tmp_path, "good")
    assert tags_warning(tmp_path) is None
    assert "holds no model that loads" in tags_warning(tmp_path, loaded=[])
    assert tags_warning(tmp_path, loaded=["good"]) is None


def test_models_list_of_an_empty_folder_fails_with_the_warning(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "beatwatch.toml").write_text('[models]\ndir = "empty"\n')
    listed = run("models", "list", "--config", "beatwatch.toml", cwd=tmp_path)
    assert listed.returncode == 1
    assert listed.stdout.startswith(f"0 model(s) in {tmp_path / 'empty'}")
    assert f"no tags: models.dir {tmp_path / 'empty'} holds no model" in listed.stderr


@pytest.mark.slow
def test_analyze_from_another_folder_gets_tags_and_an_empty_models_folder_warns(tmp_path):
    if not BUILT:
        pytest.skip("tag models not built (make install builds them)")
    signal, _ = click_track(120, seconds=8.0)
    write_wav(tmp_path / "song.wav", signal)
    plain = run("analyze", "song.wav", "--no-db", "--json", cwd=tmp_path)
    assert plain.returncode == 0 and "warning" not in plain.stderr, plain.stderr
    doc = json.loads(plain.stdout)
    assert doc["summary"]["tags"] and not doc["analyzer"]["analyses"]["tags"].startswith("not configured")

    (tmp_path / "empty").mkdir()
    (tmp_path / "beatwatch.toml").write_text('[models]\ndir = "empty"\n')
    warned = run("analyze", "song.wav", "--no-db", "--config", "beatwatch.toml", cwd=tmp_path)
    assert warned.returncode == 0
    assert warned.stderr.startswith(f"beatwatch: warning: no tags: models.dir {tmp_path / 'empty'} holds no model")
    assert json.loads((tmp_path / "song.wav.beatwatch.json").read_text())["summary"]["tags"] == []


@pytest.mark.slow
def test_the_daemon_logs_and_status_shows_a_models_folder_without_models(daemon, tmp_path):
    d = daemon('[models]\ndir = "nowhere"\n')
    expected = f"no tags: models.dir {tmp_path / 'nowhere'} does not exist"
    assert expected in (tmp_path / "daemon.log").read_text()
    status = run("status", "--config", str(d.config), cwd=tmp_path)
    assert status.returncode == 0 and f"warning: {expected}" in status.stdout, status.stdout
    assert d.stop() == 0
