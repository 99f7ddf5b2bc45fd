"""Every command and config key a user can type is documented in the README."""

from __future__ import annotations

import argparse
import re
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


def test_every_module_is_in_the_readme_layout():
    layout = README[README.index("## Layout"):README.index("## Contributing")]
    modules = [path for package in ("analysis", "daemon", "store", "render")
               for path in (ROOT / package).rglob("*.py") if path.name != "__init__.py"]
    assert len(modules) >= 60
    assert [str(m.relative_to(ROOT)) for m in modules if not re.search(rf"^ +{re.escape(m.name)} ", layout, re.M)] == []


def test_readme_queries_run_unchanged_on_both_backends(any_engine):
    """The same SQL, word for word, on SQLite and PostgreSQL; the rows they give must agree with what was stored."""
    from sqlalchemy import text

    from beatwatch.store.records import save_timeline
    from tests.test_store import make_doc

    for n, (bpm, key) in enumerate([(124.0, "A minor"), (90.0, "C major"), (126.0, "A minor")]):
        save_timeline(any_engine, make_doc(path=f"/music/song {n}.mp3", content_hash=f"{n}" * 64, bpm=bpm, key=key,
                                           beats=80), sidecar_path=None)
    queries = re.findall(r"```sql\n(.*?)```", README, re.S)
    assert len(queries) >= 5
    with any_engine.connect() as conn:
        results = [conn.execute(text(query)).all() for query in queries]
    assert sorted(row[0] for row in results[0]) == ["/music/song 0.mp3", "/music/song 2.mp3"]
    assert [row[0] for row in results[2]] == list(range(1, 21))
    assert sorted(tuple(row) for row in results[3]) == [(4, "A minor", 2), (4, "C major", 1)]
