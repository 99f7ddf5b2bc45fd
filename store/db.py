"""Opening the database: the one place that decides how every connection behaves.

The daemon, its workers and the CLI share one SQLite file, so each connection
gets WAL (readers never block the writer), a busy timeout (writers queue
rather than fail), enforced foreign keys (deleting an analysis must cascade
to its beats) and synchronous=NORMAL (safe with WAL, far fewer fsyncs).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from .migrations import STEPS, current_version, migrate
from .transactions import emit_begin

BUSY_TIMEOUT_MS = 10_000
PRAGMAS = (f"busy_timeout={BUSY_TIMEOUT_MS}", "foreign_keys=ON", "synchronous=NORMAL")


def sqlite_url(path: str | os.PathLike[str]) -> str:
    """An absolute, escaped URL, so neither the working directory nor a `?` in a name changes the file opened."""
    database = str(Path(path).expanduser().absolute())
    return URL.create("sqlite", database=database).render_as_string(hide_password=False)


def open_database(url: str) -> Engine:
    """An engine for any SQLAlchemy URL whose schema is already current."""
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        _create_parent_folder(parsed)
    engine = create_engine(parsed)
    if is_sqlite:
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", emit_begin)
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


class NoDatabase(LookupError):
    """A read-only command found no database file: it must not create an empty one and report on that."""


def open_existing(url: str) -> Engine:
    """Like open_database, for commands that only read: a missing SQLite file is an error, never created."""
    parsed = make_url(url)
    database = parsed.database
    if (parsed.get_backend_name() == "sqlite" and database and database != ":memory:" and not parsed.query.get("uri")
            and not Path(database).exists()):
        raise NoDatabase(f"no database at {database}, the daemon has not run")
    return open_database(url)


def open_for_reading(url: str) -> Engine:
    """The database for commands that only read it (status, show, plot): as `open_database` when this user may
    write it, else read-only, as README promises to any user who can read the file.

    A WAL database needs its `-shm` index to be read: one a running daemon made is shared read-only; when there
    is none and none may be created (no daemon has the file open), the file is read as immutable, a snapshot.
    """
    try:
        return open_existing(url)
    except OperationalError as exc:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or not parsed.database or not _cannot_write(exc):
            raise
        database = parsed.database
    last: OperationalError | None = None
    for query in ({"mode": "ro"}, {"immutable": "1"}):
        engine = create_engine(URL.create("sqlite", database="file:" + quote(database), query={**query, "uri": "true"}))
        try:
            version = current_version(engine)
        except OperationalError as exc:
            engine.dispose()
            last = exc
            continue
        if version != STEPS[-1].version:
            engine.dispose()
            raise ReadOnlyOutdated(f"{database}: read-only and at schema version {version}; this beatwatch needs "
                                   f"{STEPS[-1].version}, which the daemon (or any command with write access) sets up")
        return engine
    assert last is not None
    raise last


class ReadOnlyOutdated(RuntimeError):
    """A database this user cannot write holds an older schema than this version reads."""


def is_read_only(engine: Engine) -> bool:
    return engine.url.query.get("mode") == "ro" or engine.url.query.get("immutable") == "1"


def _cannot_write(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM)


def is_locked(exc: BaseException) -> bool:
    """True for SQLite's "database is locked": another process held the write lock past busy_timeout.

    It passes when that process lets go, so callers say so in one line and retry, rather than treat it as a bug.
    """
    orig = exc.orig if isinstance(exc, OperationalError) else exc
    code = getattr(orig, "sqlite_errorcode", None)  # absent on errors sqlite3 did not raise itself
    return isinstance(orig, sqlite3.OperationalError) and code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def store_trouble(exc: BaseException) -> str | None:
    """Why the database cannot be written when the cause lies outside beatwatch and passes once fixed there (a
    lock let go, space freed, permissions restored), in words that follow "database"; None for anything else."""
    orig = exc.orig if isinstance(exc, OperationalError) else exc
    code = getattr(orig, "sqlite_errorcode", None)
    if not isinstance(orig, sqlite3.OperationalError) or code is None:
        return None
    return _TROUBLES.get(code & 0xFF)


_TROUBLES = {
    sqlite3.SQLITE_BUSY: "locked by another process",
    sqlite3.SQLITE_LOCKED: "locked by another process",
    sqlite3.SQLITE_FULL: "out of disk space",
    sqlite3.SQLITE_READONLY: "read-only",
    sqlite3.SQLITE_IOERR: "failing with I/O errors",
}


def write_lock_held(engine: Engine, wait_s: float = 2.0) -> bool:
    """Whether another process holds the write lock for longer than wait_s.

    In WAL mode readers never wait for a writer, so a reader cannot tell a locked database from an idle one; taking
    the write lock for a moment (and giving it back at once, writing nothing) is the only way to find out.
    """
    if engine.dialect.name != "sqlite" or is_read_only(engine):
        return False
    connection = engine.raw_connection()
    cursor = connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(wait_s * 1000)}")
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if is_locked(exc):
                return True
            raise
        cursor.execute("ROLLBACK")
        return False
    finally:
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()
        connection.close()


def _create_parent_folder(url: URL) -> None:
    """SQLite creates the file but not its folder; memory and `file:` URI databases have no folder to make."""
    database = url.database
    if not database or database == ":memory:" or url.query.get("uri"):
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    # None hands BEGIN over to emit_begin; see transactions.py.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        _enable_wal(cursor)
    finally:
        cursor.close()


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Retry the switch to WAL for as long as busy_timeout would wait.

    Switching a new file to WAL needs an exclusive lock, and SQLite answers
    SQLITE_BUSY at once instead of consulting busy_timeout, so processes
    opening a fresh database together would otherwise fail at random.
    Once the file is in WAL mode the pragma is a no-op.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
