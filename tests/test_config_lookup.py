"""Which config a command reads, whatever folder it runs in; read-only commands never create a database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BEATWATCH = str(Path(sys.executable).with_name("beatwatch"))


def beatwatch(*args: str, cwd: Path, home: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("BEATWATCH_") and k not in ("XDG_CONFIG_HOME", "XDG_DATA_HOME")}
    return subprocess.run([BEATWATCH, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**clean, "HOME": str(home), **(env or {})})


def _folders(tmp_path: Path) -> tuple[Path, Path]:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    return home, elsewhere


def test_status_without_any_config_creates_nothing_and_says_so_in_one_line(tmp_path):
    home, elsewhere = _folders(tmp_path)
    result = beatwatch("status", cwd=elsewhere, home=home)
    data_db = home / ".local" / "share" / "beatwatch" / "beatwatch.db"
    assert result.returncode == 1
    assert result.stderr == f"beatwatch: no database at {data_db}, the daemon has not run\n"
    assert list(elsewhere.iterdir()) == [] and not data_db.exists() and not data_db.parent.exists()
    shown = beatwatch("show", "abc123", cwd=elsewhere, home=home)
    assert shown.returncode == 1 and "no database at" in shown.stderr and not data_db.exists()


def test_lookup_order_is_flag_variable_working_directory_then_user_file(tmp_path):
    home, elsewhere = _folders(tmp_path)
    user = home / ".config" / "beatwatch" / "beatwatch.toml"
    user.parent.mkdir(parents=True)
    user.write_text("[workers]\ncount = 1\n")
    first = beatwatch("config", "check", cwd=elsewhere, home=home)
    assert first.returncode == 0, first.stderr
    assert f"# config: {user} (the user's config)" in first.stdout and "count = 1" in first.stdout
    local = elsewhere / "beatwatch.toml"
    local.write_text("[workers]\ncount = 2\n")
    assert "count = 2" in beatwatch("config", "check", cwd=elsewhere, home=home).stdout
    variable = tmp_path / "var.toml"
    variable.write_text("[workers]\ncount = 3\n")
    by_variable = beatwatch("config", "check", cwd=elsewhere, home=home, env={"BEATWATCH_CONFIG": str(variable)})
    assert f"# config: {variable} ($BEATWATCH_CONFIG)" in by_variable.stdout and "count = 3" in by_variable.stdout
    flag = tmp_path / "flag.toml"
    flag.write_text("[workers]\ncount = 4\n")
    by_flag = beatwatch("config", "check", str(flag), cwd=elsewhere, home=home, env={"BEATWATCH_CONFIG": str(variable)})
    assert "count = 4" in by_flag.stdout


def test_without_a_file_the_defaults_live_in_the_data_folder_not_the_working_directory(tmp_path):
    home, elsewhere = _folders(tmp_path)
    result = beatwatch("config", "check", cwd=elsewhere, home=home)
    data = home / ".local" / "share" / "beatwatch"
    assert "# config: none (built-in defaults" in result.stdout
    assert f'path = "{data / "inbox"}"' in result.stdout
    assert f'url = "sqlite:///{data / "beatwatch.db"}"' in result.stdout


def test_status_names_the_config_it_read_from_any_folder(tmp_path):
    from beatwatch.store.db import open_database, sqlite_url

    home, elsewhere = _folders(tmp_path)
    config = tmp_path / "etc" / "beatwatch.toml"
    config.parent.mkdir()
    config.write_text('[store]\nurl = "sqlite:///state.db"\n')
    open_database(sqlite_url(config.parent / "state.db")).dispose()
    result = beatwatch("status", cwd=elsewhere, home=home, env={"BEATWATCH_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"config:  {config} ($BEATWATCH_CONFIG)"
    assert "never ran" in result.stdout and list(elsewhere.iterdir()) == []


def test_a_bad_environment_override_names_the_variable_not_the_file(tmp_path):
    home, elsewhere = _folders(tmp_path)
    config = elsewhere / "beatwatch.toml"
    config.write_text("[workers]\ncount = 2\n")
    result = beatwatch("config", "check", cwd=elsewhere, home=home, env={"BEATWATCH_WORKERS__COUNT": "many"})
    assert result.returncode == 2
    assert result.stderr.startswith("beatwatch: environment variable BEATWATCH_WORKERS__COUNT: workers.count = 'many'")
    assert str(config) not in result.stderr
