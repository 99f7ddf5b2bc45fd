"""A file's name in the database when each host mounts the shared library at its own path.

Hosts sharing one PostgreSQL database see one library on shared storage,
but one may mount it at /mnt/catalogue and another at /srv/music. A path
under a configured root (`[library] roots`) is stored as `name:relative/path`
(the root's name, a colon, the path below the root), which every host turns
back into its own mount; a path under no root is stored absolute, as it
always was. The stored form is one string, so the store keeps it as an
opaque name (its unique keys, the queue's look-ups and `tracks.path` are
unchanged) and never learns about mounts: the translation lives here, at
the daemon's edge, where a path leaves for the database or comes back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from beatwatch.store.prefixes import replace_prefix
from beatwatch.store.sidecar import SUFFIX as SIDECAR_SUFFIX

SEPARATOR = ":"
# A root's name: what `library.roots` keys may be, and what marks a stored name as library-relative.
NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_STORED = re.compile(rf"({NAME.pattern}){SEPARATOR}(.*)", re.DOTALL)


class NotMounted(LookupError):
    """A stored name in a library this host has no root for: nothing here can read that file."""


def library_of(stored: str) -> str | None:
    """The root's name in a stored name, or None for an absolute (or any other) path."""
    found = None if stored.startswith("/") else _STORED.fullmatch(stored)
    return found.group(1) if found else None


@dataclass(frozen=True)
class Library:
    """This host's mounts of the named library roots; empty, every path is stored as given (single host)."""

    roots: Mapping[str, Path] = field(default_factory=dict)
    # (name, root) for each root as configured and as resolved: what stored() matches a path against.
    spellings: tuple[tuple[str, str], ...] = field(init=False, default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        # Each root as configured and as the kernel resolves it, so a file reached through either spelling (a
        # symlinked mount point, an inbox given by its real path) gets the same stored name.
        forms = []
        for name, root in self.roots.items():
            lexical = os.path.abspath(root)
            forms += [(name, lexical)] + ([(name, os.path.realpath(lexical))]
                                          if os.path.realpath(lexical) != lexical else [])
        object.__setattr__(self, "spellings", tuple(forms))

    @classmethod
    def of(cls, roots: Mapping[str, Path] | None) -> Library:
        return cls(dict(roots or {}))

    def stored(self, path: str | os.PathLike[str]) -> str:
        """The name a local path is kept under: `name:relative` below a root, else the path as given."""
        text = os.fspath(path)
        if not self.spellings:
            return text
        absolute = os.path.abspath(text)
        for name, root in self.spellings:
            if absolute.startswith(root + os.sep) and len(absolute) > len(root) + 1:
                return f"{name}{SEPARATOR}{absolute[len(root) + 1:]}"
        return text

    def local(self, stored: str) -> str:
        """This host's path for a stored name; raises NotMounted for a library it has no root for."""
        name = library_of(stored)
        if name is None:
            return stored
        root = self.roots.get(name)
        if root is None:
            raise NotMounted(f"{stored}: the library {name!r} has no root on this host; add "
                             f"`{name} = \"<its mount here>\"` to [library] roots")
        return os.path.join(os.path.abspath(root), stored[len(name) + 1:])

    def local_or_none(self, stored: str) -> str | None:
        """local(), with None for a library not mounted here: such a file can be neither found nor judged gone."""
        try:
            return self.local(stored)
        except NotMounted:
            return None

    def lookup_name(self, target: str) -> str:
        """The name a user's PATH|HASH argument is looked up by: a path below a root (one naming a folder, or a
        file here) becomes its stored name; a hash, or a path under no root, stays as typed."""
        stored = self.stored(target)
        return stored if stored != target and (os.sep in target or os.path.lexists(target)) else target

    def localised(self, row: dict[str, Any]) -> dict[str, Any]:
        """A found track's row with its path, paths and sidecar_path as this host reaches them (a name in a library
        not mounted here is left as stored, so it still says which file it is)."""
        out = dict(row)
        for key in ("path", "sidecar_path"):
            if out.get(key):
                out[key] = self.local_or_none(out[key]) or out[key]
        if out.get("paths"):
            out["paths"] = [self.local_or_none(path) or path for path in out["paths"]]
        return out



def audio_of_sidecar(sidecar: Path, recorded: str) -> Path:
    """The audio a sidecar file describes, on this host: the path it records, written by the host that analysed
    it, when that exists here; else the file beside the sidecar (where sidecars lie unless output.dir moves
    them), as the share is mounted here."""
    if Path(recorded).is_file():
        return Path(recorded)
    beside = sidecar.with_name(sidecar.name.removesuffix(SIDECAR_SUFFIX))
    return beside if beside.is_file() else Path(recorded)


def adopt_absolute_paths(engine: Engine, library: Library) -> int:
    """Rows this host stored by absolute path before it named its roots now name the files by root, as new rows
    would: otherwise the next rescan queues each file again under its new name and `tracks` lists it twice.
    Both spellings of a root (as configured, as resolved) are adopted. Returns how many paths were renamed."""
    return sum(replace_prefix(engine, root + os.sep, name + SEPARATOR) for name, root in library.spellings)
