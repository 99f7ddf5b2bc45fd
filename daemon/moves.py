"""inbox.after = "move": finished files leave the inbox for done/ or failed/, never overwriting anything.

Every folder on both sides of a move is opened one name at a time from the
inbox with O_NOFOLLOW, and the link and unlink are made relative to those
open folders: a done/ (or a subfolder) that is, or is swapped for, a symlink
to somewhere else cannot make a move write outside the inbox's real path,
and a symlinked song is never followed to its target. Such a move is
refused with UnsafeMove, and the file stays where it was.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeMove(OSError):
    """A move that would leave the inbox or follow a symlink; the message says which name is to blame."""


def move_aside(path: Path, inbox: Path, folder: str) -> Path:
    """Move path to inbox/folder/<same relative path>, adding " (n)" before the suffix on a name clash."""
    try:
        relative = path.relative_to(inbox)
    except ValueError:
        raise UnsafeMove(f"it is not inside the inbox {inbox}") from None
    if ".." in relative.parts:
        raise UnsafeMove("its path leaves the inbox")
    source_fd = _open_folders(inbox, relative.parent.parts, create=False)
    try:
        if stat.S_ISLNK(os.lstat(relative.name, dir_fd=source_fd).st_mode):
            raise UnsafeMove("it is a symlink, and moves never follow one")
        target_fd = _open_folders(inbox, (folder, *relative.parent.parts), create=True)
        try:
            name, n = relative.name, 1
            while True:
                try:
                    # link() refuses to replace an existing name, unlike rename(): no race can overwrite a file.
                    os.link(relative.name, name, src_dir_fd=source_fd, dst_dir_fd=target_fd, follow_symlinks=False)
                    break
                except FileExistsError:
                    name = f"{relative.stem} ({n}){relative.suffix}"
                    n += 1
        finally:
            os.close(target_fd)
        os.unlink(relative.name, dir_fd=source_fd)
    finally:
        os.close(source_fd)
    return inbox / folder / relative.parent / name


def _open_folders(inbox: Path, parts: Iterable[str], *, create: bool) -> int:
    """An fd of inbox/<parts>, walked one name at a time, none of them a symlink; missing ones made when create."""
    fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    walked = inbox
    try:
        for part in parts:
            walked = walked / part
            if create:
                try:
                    os.mkdir(part, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                child = os.open(part, _FOLDER_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafeMove(f"{walked} is a symlink or not a folder; moves stay inside the inbox") from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd
