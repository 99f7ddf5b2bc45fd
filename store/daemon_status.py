"""Each daemon's self-report (workers, throttle, inference), kept in the database so `status` needs no socket.

One row per host, overwritten every few seconds: `beatwatch status` can run
as any user who can read the database, on any host that shares it, and
shows every host. `updated_at` follows the queue's clock (store/clock.py),
so a host's age is measured the same way from every other host.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, text

from .clock import now_in
from .transactions import write_transaction


def write_status(engine: Engine, host: str, data: dict[str, Any]) -> None:
    """Store `data` as `host`'s report; its `updated_at` becomes the time the report was written."""
    with write_transaction(engine) as conn:
        at = now_in(conn, data["updated_at"])
        conn.execute(text(
            "INSERT INTO host_status (host, data, updated_at) VALUES (:host, :data, :at) "
            "ON CONFLICT (host) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at"),
            {"host": host, "data": json.dumps({**data, "host": host, "updated_at": at}), "at": at})


def read_hosts(engine: Engine) -> list[dict[str, Any]]:
    """Every host's latest report, by host name."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT data FROM host_status ORDER BY host")).scalars().all()
    return [json.loads(row) for row in rows]


def read_status(engine: Engine) -> dict[str, Any] | None:
    """The report written last: the daemon, where one database has one."""
    hosts = read_hosts(engine)
    return max(hosts, key=lambda report: report["updated_at"]) if hosts else None
