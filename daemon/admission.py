"""Which inbox entries may be analysed: regular files, and symlinks only as `inbox.follow_symlinks` allows.

Decided from lstat/stat and realpath alone, never by opening: opening a FIFO
blocks until a writer comes, and reading /dev/zero never ends, so either
would hold a worker until jobs.timeout_s. The intake asks before queueing
and the worker asks again just before it opens the file, since the name may
have been swapped for something else while the job waited. The worker then
opens it (`open_admitted`) without following a last symlink or blocking, and
checks what it opened, since the name may change again between the two: from
there on it reads only that open file.
"""

from __future__ import annotations

import errno
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


class Refused(Exception):
    """The name no longer leads to a file the policy allows; the message says why, in a few words."""


def open_admitted(path: str | os.PathLike[str], inbox: Path | None, follow_symlinks: FollowSymlinks) -> int:
    """A read-only descriptor of the regular file `refusal` admits at path; the caller closes it.

    Raises Refused when the file is not (or no longer) admitted, OSError when it cannot be opened. The
    symlinks the policy follows are resolved first and the result opened with O_NOFOLLOW, and the open
    file's own path (/proc/self/fd) is checked against the inbox, so a swap between the check and the open
    yields a refusal, never another file.
    """
    if why := refusal(path, inbox, follow_symlinks):
        raise Refused(why)
    try:
        fd = os.open(os.path.realpath(path), os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Refused("became a symlink while it was checked") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Refused("not a regular file")
        if follow_symlinks == "inside" and inbox is not None:
            opened = os.readlink(f"/proc/self/fd/{fd}")
            if not _inside(opened, os.path.realpath(inbox)):
                raise Refused(f"opened {opened}, outside the inbox (inbox.follow_symlinks = \"inside\")")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _inside(real: str, inbox_real: str) -> bool:
    return os.path.commonpath([real, inbox_real]) == inbox_real and real != inbox_real
