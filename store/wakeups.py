"""Waking idle hosts when a job becomes runnable: PostgreSQL's LISTEN/NOTIFY on one channel.

Every change that makes a job runnable (queued, retried, a lease taken
back, a job given back) sends a NOTIFY in its own transaction, so it
arrives only once the job can be claimed. A daemon listens on a connection
of its own and waits on its socket along with its workers' pipes: a job
queued on one host is claimed within moments by whichever host is idle,
without polling the table. Notifications are a hint, never the truth: the
daemon still looks every few seconds, so a dropped listener or a missed
notice only makes it slower. SQLite has one host, whose intake wakes it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, text

CHANNEL = "beatwatch_jobs"


def notify(conn: Connection) -> None:
    """Tell listening hosts, once this transaction commits, that a job may be waiting."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"NOTIFY {CHANNEL}"))


class Listener:
    """A connection that LISTENs; `fileno()` for select/wait, `drain()` after it turned readable."""

    def __init__(self, connection: Any) -> None:
        self._conn = connection

    @classmethod
    def open(cls, engine: Engine) -> Listener | None:
        """None where the database has no notifications (SQLite)."""
        if engine.dialect.name != "postgresql":
            return None
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        connection = engine.dialect.loaded_dbapi.connect(*args, **{**kwargs, "autocommit": True})
        try:
            connection.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            connection.close()
            raise
        return cls(connection)

    def fileno(self) -> int:
        return self._conn.fileno()

    def drain(self) -> bool:
        """Read what arrived, without waiting; True when any notice did. Raises when the connection broke.

        Called once the socket turned readable. A socket readable with no notice on it is most likely closed
        by the server, which reading notices does not report: a query finds out, so the caller never waits on
        a dead socket that is readable for ever.
        """
        if any(True for _ in self._conn.notifies(timeout=0)):
            return True
        self._conn.execute("SELECT 1")
        return any(True for _ in self._conn.notifies(timeout=0))  # one that came in meanwhile is kept for here

    def close(self) -> None:
        self._conn.close()
