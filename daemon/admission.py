"""Which inbox entries may be analysed: regular files, and symlinks only as `inbox.follow_symlinks` allows.

Decided from lstat/stat and realpath alone, never by opening: opening a FIFO
blocks until a writer comes, and reading /dev/zero never ends, so either
would hold a worker until jobs.timeout_s. The intake asks before queueing
and the worker asks again just before it opens the file, since the name may
have been swapped for something else while the job waited.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

FollowSymlinks = Literal["inside", "all"]


def refusal(path: str | os.PathLike[str], inbox: Path | None, follow_symlinks: FollowSymlinks) -> str | None:
    """None when path may be analysed, else why not, in a few words. Raises OSError when path is gone.

    With "inside", the file's real path (every symlink on the way resolved) must lie inside the inbox's real
    path; inbox None skips that check and leaves only the regular-file rule.
    """
    mode = os.lstat(path).st_mode
    if follow_symlinks == "inside" and inbox is not None:
        real = os.path.realpath(path)
        if not _inside(real, os.path.realpath(inbox)):
            return f"resolves to {real}, outside the inbox (inbox.follow_symlinks = \"inside\")"
    if stat.S_ISLNK(mode):
        mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return None


def _inside(real: str, inbox_real: str) -> bool:
    return os.path.commonpath([real, inbox_real]) == inbox_real and real != inbox_real
