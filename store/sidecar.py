"""Writing sidecar JSON so that a reader never sees half a file.

The document goes to a temp file in the destination folder (same file
system, so `os.replace` is an atomic rename), is fsynced, renamed over the
sidecar, and then the folder is fsynced so the rename itself survives a
power cut. A crash leaves at most a dot-named temp file, which the watcher
ignores and `remove_stray_temp_files` deletes at start-up. The daemon's plots
are written the same way, under the same temp name rule (`temp_path`), so
the one clean-up finds what a crash left of either.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

SUFFIX = ".beatwatch.json"
PLOT_SUFFIX = ".beatwatch.png"

# `.<final name>.<pid>.<random hex>.tmp<final suffix>`, exactly what temp_path makes of a sidecar (SUFFIX)
# or a plot (PLOT_SUFFIX) name.
_TEMP_NAME = re.compile(r"\..+\.beatwatch\.(?P<ext>json|png)\.\d+\.[0-9a-f]+\.tmp\.(?P=ext)")
# The copy of an audio file that tags are written into (render/file_tags.py): temp_path of `<name>` + TAGS_INFIX.
TAGS_INFIX = ".beatwatch-tags"
_TAGS_TEMP_NAME = re.compile(r"\..+\.beatwatch-tags\.(?P<ext>\w+)\.\d+\.[0-9a-f]+\.tmp\.(?P=ext)")


# File names may be 255 bytes; a temp name adds at most 27 (a dot, a 7-digit pid, 8 hex digits, ".tmp" and the
# 5-byte suffix again, with their dots), so sidecars stay under this.
MAX_NAME_BYTES = 220


def sidecar_path(audio_path: str | os.PathLike[str], output_dir: str | os.PathLike[str] | None = None,
                 inbox: str | os.PathLike[str] | None = None) -> Path:
    """`<audio filename>.beatwatch.json` next to the audio, or inside output_dir when given.

    In output_dir, audio under `inbox` keeps its folders relative to the inbox
    (albumA/track01.wav and albumB/track01.wav must not share one sidecar);
    other audio lands at its top. An audio name too long to take the suffix
    is cut and given a short hash of the full name, so the sidecar still sorts
    beside its audio and stays unique.
    """
    audio = Path(audio_path)
    folder = Path(output_dir) / _relative_folder(audio, inbox) if output_dir is not None else audio.parent
    name = audio.name + SUFFIX
    raw = os.fsencode(name)
    if len(raw) > MAX_NAME_BYTES:
        digest = hashlib.sha256(os.fsencode(audio.name)).hexdigest()[:10]
        keep = MAX_NAME_BYTES - len(SUFFIX) - len(digest) - 1
        head = os.fsencode(audio.name)[:keep].decode("utf-8", "ignore")
        name = f"{head}~{digest}{SUFFIX}"
    return folder / name


def _relative_folder(audio: Path, inbox: str | os.PathLike[str] | None) -> Path:
    if inbox is None:
        return Path()
    try:
        return audio.parent.relative_to(inbox)
    except ValueError:
        return Path()


def temp_path(final: str | os.PathLike[str]) -> Path:
    """A unique dot-named sibling to write `final` into before renaming it over: hidden from the watcher,
    on the same file system (so the rename is atomic), and ending in the final suffix, so a writer that picks
    its format by suffix (matplotlib) writes the right one."""
    final = Path(final)
    return final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{final.suffix}")


def create_temp(final: str | os.PathLike[str]) -> tuple[Path, int]:
    """A new temp file for `final` (`temp_path`), created here and now, and its descriptor open for writing.

    O_CREAT|O_EXCL|O_NOFOLLOW: whatever already lies at the name, a symlink
    planted there to make us write through it included, is never opened;
    another name is drawn instead. The mode 0o666 lets the umask decide
    permissions, as for any file the user writes.
    """
    while True:
        temp = temp_path(final)
        try:
            return temp, os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue


def write_sidecar(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Atomically replace `path` with `doc` as strict JSON (NaN refused: JSON has no NaN)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp, fd = create_temp(path)
    try:
        with open(fd, "w", encoding="utf-8") as out:
            json.dump(doc, out, ensure_ascii=False, indent=1, allow_nan=False)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def remove_stray_temp_files(folder: str | os.PathLike[str], *, older_than_s: float = 60.0) -> int:
    """Delete the temp sidecars, plots and tagged audio copies that crashed writes left under folder
    (recursively); return how many.

    Only temps older than `older_than_s` go, so a write still in flight in
    another process (a one-shot `beatwatch analyze`) is not pulled from under it.
    """
    cutoff = time.time() - older_than_s
    removed = 0
    for candidate in [*Path(folder).rglob(".*.beatwatch.*.tmp.*"), *Path(folder).rglob(".*.beatwatch-tags.*.tmp.*")]:
        ours = _TEMP_NAME.fullmatch(candidate.name) or _TAGS_TEMP_NAME.fullmatch(candidate.name)
        if not ours or candidate.is_symlink() or not candidate.is_file():
            continue
        try:
            if candidate.stat().st_mtime <= cutoff:
                candidate.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some network file systems refuse fsync on a folder; the rename is done, only its durability is weaker.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)
