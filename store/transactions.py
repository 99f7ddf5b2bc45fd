"""Transactions that SQLAlchemy, not Python's sqlite3 module, begins.

sqlite3 on Python 3.11 starts a transaction only before INSERT/UPDATE/DELETE,
so DDL runs in autocommit and a migration step could half-apply. With
`isolation_level = None` on the DBAPI connection and `emit_begin` as the
engine's "begin" hook, every SQLAlchemy transaction is a real SQLite one.

A deferred transaction that reads and then writes fails at once with
SQLITE_BUSY when another connection committed in between (busy_timeout does
not retry that case), so read-then-write units use `write_transaction`,
which begins IMMEDIATE and waits for the write lock instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

_BEGIN_MODE = "beatwatch_sqlite_begin"


def emit_begin(conn: Connection) -> None:
    """Engine "begin" hook for SQLite engines; plain reads stay DEFERRED so they never take the lock."""
    conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(_BEGIN_MODE, 'DEFERRED')}")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction holding SQLite's write lock from its first statement; other backends ignore the mode."""
    with engine.connect() as conn:
        conn.execution_options(**{_BEGIN_MODE: "IMMEDIATE"})
        with conn.begin():
            yield conn


def lock_content(conn: Connection, content_hash: str) -> None:
    """On PostgreSQL, hold one content's lock until this transaction ends, so hosts saving or starting the same
    content take turns as SQLite's one writer makes them; every such path must take this same lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:content_hash, 0))"),
                     {"content_hash": content_hash})
