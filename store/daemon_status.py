"""The daemon's self-report (workers, throttle, inference), kept in the database so `status` needs no socket.

One row, overwritten every few seconds: `beatwatch status` can run as any
user who can read the database, on any host that shares it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, text

from .transactions import write_transaction


def write_status(engine: Engine, data: dict[str, Any]) -> None:
    with write_transaction(engine) as conn:
        conn.execute(text(
            "INSERT INTO daemon_status (id, data, updated_at) VALUES (1, :data, :at) "
            "ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at"),
            {"data": json.dumps(data), "at": data["updated_at"]})


def read_status(engine: Engine) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT data FROM daemon_status WHERE id = 1")).first()
    return json.loads(row[0]) if row else None
