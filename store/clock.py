"""Whose clock the queue's times follow: the caller's on SQLite, the database server's on PostgreSQL.

One SQLite file has one host, whose clock every process shares. On
PostgreSQL several hosts share the queue and their clocks disagree, so
there every time written or compared (leases, backoff, heartbeats) is the
server's, and the caller's `now` is not used: a host whose clock runs
minutes off can neither take a live lease nor keep a dead one. Tests that
drive a fake clock on PostgreSQL ask for it with `caller_clock`.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, Engine, text

# An engine option: "caller" makes PostgreSQL follow the callers' `now` (only tests with a fake clock want that).
_CLOCK_OPTION = "beatwatch_queue_clock"
_SERVER_NOW = text("SELECT extract(epoch FROM clock_timestamp())::float8")


def caller_clock(engine: Engine) -> Engine:
    """The engine (same pool) with PostgreSQL following the callers' `now` too."""
    return engine.execution_options(**{_CLOCK_OPTION: "caller"})


def now_in(conn: Connection, now: float) -> float:
    """The time a change in this transaction happens at, given the caller's idea of it."""
    if conn.dialect.name != "postgresql" or conn.get_execution_options().get(_CLOCK_OPTION) == "caller":
        return now
    return conn.scalar(_SERVER_NOW)


def database_now(engine: Engine, now: float | None = None) -> float:
    """`now_in` outside a transaction: `now` (else this host's clock) on SQLite, the server's on PostgreSQL."""
    with engine.connect() as conn:
        return now_in(conn, time.time() if now is None else now)
