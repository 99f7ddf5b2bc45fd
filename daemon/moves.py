"""inbox.after = "move": finished files leave the inbox for done/ or failed/, never overwriting anything."""

from __future__ import annotations

import os
from pathlib import Path


def move_aside(path: Path, inbox: Path, folder: str) -> Path:
    """Move path to inbox/folder/<same relative path>, adding " (n)" before the suffix on a name clash."""
    try:
        relative = path.relative_to(inbox)
    except ValueError:
        relative = Path(path.name)
    target = inbox / folder / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = target, 1
    while True:
        try:
            # link() refuses to replace an existing name, unlike rename(): no race can overwrite a file.
            os.link(path, candidate)
            break
        except FileExistsError:
            candidate = target.with_name(f"{target.stem} ({n}){target.suffix}")
            n += 1
    os.unlink(path)
    return candidate
