"""Publishing a finished analysis: where its sidecar and plot go, its rows, and the `inbox.after` move.

`beatwatch analyze`, the supervisor and `make bench` all store results
through a Publisher, so the three cannot drift apart on where a sidecar or a
plot lands (beside the audio or in `output.dir`, long names cut by one rule)
or on what the rows hold. The sidecar is written inside the transaction that
stores the rows: it is on disk before the rows that name it commit. The
supervisor's path adds the lease: the job is marked done in that same
transaction, and only while its lease is held, so a late result from a
stopped or replaced worker is discarded whole.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from beatwatch.analysis.document import printable
from beatwatch.store import jobs
from beatwatch.store.records import rename_path, save_timeline_in
from beatwatch.store.sidecar import PLOT_SUFFIX, SUFFIX, create_temp, sidecar_path, write_sidecar
from beatwatch.store.transactions import write_transaction

from .library_paths import Library
from .moves import move_aside
from .protocol import FileStamp

log = logging.getLogger(__name__)


def plot_path(audio_path: str | os.PathLike[str], output_dir: Path | None, inbox: Path | None = None) -> Path:
    """`<audio>.beatwatch.png` beside its sidecar: the sidecar's rule (output.dir with the inbox's folders, long
    names cut) with the plot's suffix, so the two always sit side by side."""
    sidecar = sidecar_path(audio_path, output_dir, inbox)
    return sidecar.with_name(sidecar.name.removesuffix(SUFFIX) + PLOT_SUFFIX)


def write_plot(document: dict[str, Any], out: Path) -> Path:
    """Drawn into a temp file this call creates (the sidecars' rule, so start-up cleans what a crash left), then
    renamed over `out`. The figure goes into the open file, never to a name: a name could be a planted symlink."""
    from beatwatch.render.plot import render_plot

    temp, fd = create_temp(out)
    try:
        with open(fd, "wb") as handle:
            render_plot(document, out, into=handle)
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return out


@dataclass(frozen=True)
class Publisher:
    """Stores finished analyses. engine None: sidecars only (`analyze --no-db`); inbox: the folders below it are
    kept in output_dir; set_aside_in: the inbox, when `inbox.after = "move"` sends finished files to done/ or
    failed/ (the daemon only); library: this host's library roots, which rows name files and sidecars by."""

    engine: Engine | None
    output_dir: Path | None = None
    set_aside_in: Path | None = None
    inbox: Path | None = None
    library: Library = field(default_factory=Library)

    def sidecar_path(self, audio_path: str | os.PathLike[str]) -> Path:
        return sidecar_path(audio_path, self.output_dir, self.inbox)

    def plot_path(self, audio_path: str | os.PathLike[str]) -> Path:
        return plot_path(audio_path, self.output_dir, self.inbox)

    def publish(self, document: dict[str, Any], audio_path: str | os.PathLike[str]) -> Path:
        """No job, no lease (`beatwatch analyze`): the sidecar, and the rows when there is an engine."""
        target = self.sidecar_path(audio_path)
        if self.engine is None:
            return write_sidecar(document, target)
        mtime = _mtime(audio_path)
        with write_transaction(self.engine) as conn:
            self._store(conn, document, target, mtime, audio_path, linked=False)
        return target

    def publish_job(self, document: dict[str, Any], audio_path: str, *, job_id: int, token: str, outcome: str,
                    opened: FileStamp, now: float) -> Path | None:
        """The daemon's job: done, sidecar and rows in one transaction while `token` holds the lease; None (and
        nothing written) when the lease was lost. opened: the file the result was computed from (file_stamp).
        Raises FileChanged when the path holds other content than the result was computed for, FileGone when
        nothing is at the path any more, and anything else when storing fails; the job then stays running."""
        assert self.engine is not None, "a job's result needs the job's database"
        _check_unchanged(audio_path, opened)
        target = self.sidecar_path(audio_path)
        mtime = _mtime(audio_path)
        done = jobs.complete(self.engine, job_id, token, now=now,
                             write=lambda conn: self._store(conn, document, target, mtime, audio_path,
                                                            linked=outcome == "linked"),
                             outcome=outcome,
                             content_hash=document["file"]["content_hash"],
                             audio_duration=document["file"]["duration"], wall_s=document["performance"]["wall_s"])
        return target if done else None

    def set_aside(self, audio_path: str, folder: str, sidecar: Path | None = None) -> tuple[str, Path | None]:
        """inbox.after = "move": the file goes to done/ or failed/; beside it its sidecar and plot, when they lie
        beside the audio (not in output.dir); the rows follow the new path. Returns where the audio and the
        sidecar are now (as they were when nothing moved)."""
        if self.set_aside_in is None or not os.path.lexists(audio_path):
            return audio_path, sidecar
        assert self.engine is not None, "set_aside_in is the daemon's, which has a database"
        try:
            moved = move_aside(Path(audio_path), self.set_aside_in, folder)
            if sidecar is not None and self.output_dir is None and sidecar.exists():
                plot = self.plot_path(audio_path)
                new_sidecar = self.sidecar_path(moved)
                os.replace(sidecar, new_sidecar)
                sidecar = new_sidecar
                if plot.exists():
                    os.replace(plot, self.plot_path(moved))
            rename_path(self.engine, self.library.stored(audio_path), self.library.stored(moved),
                        sidecar_path=self.library.stored(sidecar) if sidecar else None)
            return str(moved), sidecar
        except OSError as exc:  # UnsafeMove included: the job keeps its state, the file stays where it was
            log.error("not moved to %s/, left where it is: %s: %s", folder, audio_path, exc)
            return audio_path, sidecar

    def _store(self, conn: Connection, document: dict[str, Any], target: Path, mtime: float | None,
               audio_path: str | os.PathLike[str], *, linked: bool) -> int:
        write_sidecar(document, target)
        return save_timeline_in(conn, document, sidecar_path=self.library.stored(target), mtime=mtime,
                                path=self.library.stored(audio_path), linked=linked)


class FileGone(Exception):
    """The file was deleted or renamed while it was analysed. Its sidecar would be an orphan and its rows would
    list a path that holds nothing; a renamed file is queued again under its new name."""


class FileChanged(Exception):
    """The file was replaced or rewritten while it was analysed: the result may mix the old and the new audio, and
    storing it would tie the path to content it no longer holds. Analysing again gets it right."""


def file_stamp(stat: os.stat_result) -> FileStamp:
    return stat.st_dev, stat.st_ino, stat.st_ctime_ns


def _check_unchanged(audio_path: str, opened: FileStamp) -> None:
    """Refuse a result when the path is another file now, or the file's inode changed (written to, touched) since
    the worker opened it.

    The worker stamps the file before it reads a byte, and any change after that sets a new ctime, which no user
    can set back. The stamp is compared with the file's own, never with the claim's time: on PostgreSQL that is
    the server's clock, and a host or file server whose clock runs minutes behind it would stamp a change
    "before the claim" and have it stored. Hashing the file again here would be exact but would stall the
    supervisor on long files and load numpy into it; a change of metadata alone costs one needless analysis.
    """
    try:
        now = file_stamp(os.stat(audio_path))
    except FileNotFoundError:
        raise FileGone(f"{printable(audio_path)}: file deleted or renamed during analysis; nothing stored") from None
    if now != opened:
        raise FileChanged(f"{printable(audio_path)}: file changed during analysis; it will be analysed again")


def _mtime(audio_path: str | os.PathLike[str]) -> float | None:
    try:
        return os.stat(audio_path).st_mtime
    except OSError:
        return None
