"""Config loading: defaults, TOML, environment overrides, path resolution, one-sentence errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from beatwatch.daemon.cli import main
from beatwatch.daemon.config import PROJECT_MODELS_DIR, ConfigError, Settings, load

EXAMPLE = Path(__file__).parents[1] / "config.example.toml"


def test_example_file_holds_exactly_the_defaults(tmp_path):
    example = load(EXAMPLE)
    defaults = load(_write(tmp_path, ""))
    paths = {"inbox", "models", "store"}
    assert example.model_dump(exclude=paths) == defaults.model_dump(exclude=paths)
    assert example.inbox.path == EXAMPLE.parent.resolve() / "inbox"


def test_every_settings_key_is_in_the_example():
    example = tomllib.loads(EXAMPLE.read_text())
    for section, model in Settings.model_fields.items():
        assert section in example, section
        assert set(example[section]) == set(model.annotation.model_fields), section


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    sub = tmp_path / "etc"
    sub.mkdir()
    cfg = load(_write(sub, '[inbox]\npath = "../music"\n[store]\nurl = "sqlite:///state/bw.db"\n'
                           '[output]\ndir = "side"\n'))
    assert cfg.inbox.path == tmp_path / "music"
    assert cfg.store.url == f"sqlite:///{sub / 'state' / 'bw.db'}"
    assert cfg.output.dir == sub / "side"


def test_models_default_to_the_folder_make_install_builds_wherever_the_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BEATWATCH_CONFIG", raising=False)
    assert PROJECT_MODELS_DIR == EXAMPLE.parent.resolve() / "models"
    assert load().models.dir == PROJECT_MODELS_DIR
    assert load(_write(tmp_path, "")).models.dir == PROJECT_MODELS_DIR
    assert load(EXAMPLE).models.dir == PROJECT_MODELS_DIR.resolve()  # "models" beside the example, resolved
    assert load(_write(tmp_path, '[models]\ndir = "mine"\n')).models.dir == tmp_path.resolve() / "mine"


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("BEATWATCH_JOBS__MAX_ATTEMPTS", "7")
    monkeypatch.setenv("BEATWATCH_INFERENCE__DEVICE", "cpu")
    cfg = load(_write(tmp_path, "[jobs]\nmax_attempts = 2\ntimeout_s = 5\n"))
    assert cfg.jobs.max_attempts == 7 and cfg.jobs.timeout_s == 5
    assert cfg.inference.device == "cpu"


@pytest.mark.parametrize("text,words", [
    ("[jobs]\nmax_attempts = 0\n", ["jobs.max_attempts", "0"]),
    ("[inference]\ndevice = \"tpu\"\n", ["inference.device", "tpu"]),
    ("[jobs]\nmax_atempts = 2\n", ["unknown key", "jobs.max_atempts"]),
    ("[inbox]\nfollow_symlinks = \"outside\"\n", ["inbox.follow_symlinks", "outside"]),
    ("[nosuch]\nx = 1\n", ["unknown key", "nosuch"]),
    ("[jobs\n", ["not valid TOML"]),
    ("[jobs]\nmemory_mb = 300\n", ["jobs.memory_mb = 300", "512 MB an idle worker needs", "'in_worker'"]),
    ('[jobs]\nmemory_mb = 200\n[inference]\nmode = "process"\n', ["jobs.memory_mb = 200", "256 MB"]),
    ("[analysis]\nmin_bpm = 120\nmax_bpm = 100\n", ["analysis.max_bpm = 100", "analysis.min_bpm + 10 (130)"]),
    ("[analysis]\nmin_bpm = 10\n", ["analysis.min_bpm = 10", "30"]),
    ("[analysis]\nmax_bpm = 400\n", ["analysis.max_bpm = 400", "300"]),
])
def test_bad_configs_name_the_key_and_value(tmp_path, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message


def test_follow_symlinks_defaults_to_inside_and_takes_all(tmp_path):
    assert load(_write(tmp_path, "")).inbox.follow_symlinks == "inside"
    assert load(_write(tmp_path, '[inbox]\nfollow_symlinks = "all"\n')).inbox.follow_symlinks == "all"


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "nope.toml")


def test_memory_mb_above_an_idle_worker_is_taken(tmp_path):
    assert load(_write(tmp_path, '[jobs]\nmemory_mb = 300\n[inference]\nmode = "process"\n')).jobs.memory_mb == 300


@pytest.mark.parametrize("command", ["config", "run"])
@pytest.mark.parametrize("key,text,problem", [
    ("inbox.path", '[inbox]\npath = "music.wav"\n', "music.wav is not a folder"),
    ("inbox.path", '[inbox]\npath = "music.wav/inbox"\n', "music.wav is not a folder"),
    ("output.dir", '[output]\ndir = "music.wav"\n', "music.wav is not a folder"),
    ("store.url", '[store]\nurl = "sqlite:///music.wav/beatwatch.db"\n', "music.wav is not a folder"),
    ("jobs.memory_mb", "[jobs]\nmemory_mb = 300\n", "idle worker"),
    ("inbox.path", '[inbox]\npath = "Musik/inbox"\n', "nor does the folder it would be in"),
], ids=["inbox-a-file", "inbox-under-a-file", "output-a-file", "database-under-a-file", "memory-too-small",
        "inbox-typo"])
def test_config_check_refuses_what_run_would_refuse(tmp_path, capsys, command, key, text, problem):
    """`run` stops here with the same line, before it opens the database or starts a worker."""
    (tmp_path / "music.wav").write_bytes(b"RIFF")
    config = _write(tmp_path, text)
    argv = ["config", "check", str(config)] if command == "config" else ["run", "--config", str(config)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and key in err and problem in err
    assert not (tmp_path / "beatwatch.db").exists()


def test_an_inbox_that_does_not_exist_yet_is_a_warning_from_config_check(tmp_path, capsys):
    config = _write(tmp_path, '[inbox]\npath = "new-inbox"\n')
    assert main(["config", "check", str(config)]) == 0
    assert f"# warning: inbox.path: {tmp_path / 'new-inbox'} does not exist yet" in capsys.readouterr().out
    assert not (tmp_path / "new-inbox").exists()
    assert main(["config", "check", str(_write(tmp_path, '[inbox]\npath = "."\n'))]) == 0
    assert "warning" not in capsys.readouterr().out


def _write(folder: Path, text: str) -> Path:
    path = folder / "beatwatch.toml"
    path.write_text(text)
    return path
