"""Which config file a command reads, in one fixed order, so the answer does not depend on where you stand.

`status` run from another folder used to read `./beatwatch.toml` or nothing,
and with nothing it made an empty `./beatwatch.db` and reported "never ran".
The order is `--config`, `$BEATWATCH_CONFIG`, `./beatwatch.toml` (a project
folder's own file), the user's `~/.config/beatwatch/beatwatch.toml`, then
the system's `/etc/beatwatch/beatwatch.toml`. With none of them the
built-in defaults apply, and their relative paths (the database, the inbox)
resolve against the user's data folder, `~/.local/share/beatwatch/`, never
against the working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CONFIG_ENV = "BEATWATCH_CONFIG"
FILE_NAME = "beatwatch.toml"
SYSTEM_FILE = Path("/etc/beatwatch") / FILE_NAME


@dataclass(frozen=True)
class Located:
    """The config file found (None: built-in defaults), how it was found, and the folder relative paths use."""

    path: Path | None
    source: str
    base: Path

    def describe(self) -> str:
        if self.path is None:
            return f"none (built-in defaults; relative paths under {self.base})"
        return f"{self.path} ({self.source})"


def user_config_file() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "beatwatch" / FILE_NAME


def default_base() -> Path:
    """Where the defaults' relative paths land without a config file: the XDG data folder."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "beatwatch"


def locate(explicit: str | os.PathLike[str] | None = None) -> Located:
    if explicit is not None:
        return _found(Path(explicit), "--config")
    if os.environ.get(CONFIG_ENV):
        return _found(Path(os.environ[CONFIG_ENV]), f"${CONFIG_ENV}")
    for candidate, source in ((Path(FILE_NAME), "found in the working directory"),
                              (user_config_file(), "the user's config"), (SYSTEM_FILE, "the system's config")):
        if candidate.is_file():
            return _found(candidate, source)
    return Located(None, "built-in defaults", default_base())


def _found(path: Path, source: str) -> Located:
    path = path.expanduser().absolute()
    return Located(path, source, path.parent)
