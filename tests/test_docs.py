"""Every command and config key a user can type is documented in the README."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

from beatwatch.daemon.cli import _parser

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def _commands(parser: argparse.ArgumentParser, prefix: str = "beatwatch") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found.extend(_commands(sub, f"{prefix} {name}"))
    return found


def test_every_cli_command_is_in_the_readme():
    commands = _commands(_parser())
    assert "beatwatch analyze" in commands
    missing = [c for c in commands if f"`{c}" not in README]
    assert not missing, missing


def test_every_config_key_is_in_the_readme():
    example = tomllib.loads((ROOT / "config.example.toml").read_text())
    keys = [f"{section}.{key}" for section, values in example.items() for key in values]
    assert len(keys) >= 25
    assert [k for k in keys if f"`{k}`" not in README] == []


def test_make_targets_are_in_the_readme():
    for target in ("make run", "make test", "make lint", "make install", "make bench", "make bench-accuracy"):
        assert f"`{target}`" in README or f"{target} " in README
