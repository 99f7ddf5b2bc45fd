"""One job at a time per content across every host sharing the database.

daemon/turns.py makes a daemon's own workers take turns on copies of one
song; hosts sharing a PostgreSQL database cannot see each other's workers,
so the turn is also kept in the rows. A running job whose `content_hash`
is set holds its content's turn: the claim clears the column, and a job
sets it only here, once no other running job with a live lease holds that
content. A job that finds a holder waits and asks again; when the holder
finishes, its analysis is stored and the waiter links to it. A holder whose
host died stops holding once its lease runs out, by the database's clock,
so a waiter never waits for a dead host longer than `jobs.lease_s`.

Two hosts asking for the same content at once take turns on the same
advisory lock that `save_timeline_in` takes for it, so at most one becomes
the holder, and a holder's result being stored is seen whole or not at all;
SQLite's single writer gives the same order.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from .clock import now_in
from .transactions import lock_content, write_transaction

_HOLDER = text("""
SELECT id FROM jobs WHERE state = 'running' AND content_hash = :content_hash AND id <> :id
    AND lease_expires >= :now
ORDER BY id LIMIT 1""")

_TAKE = text("""
UPDATE jobs SET content_hash = :content_hash, updated_at = :now
WHERE id = :id AND lease_owner = :owner AND state = 'running'""")


def take_content(engine: Engine, job_id: int, owner: str, content_hash: str, *, now: float) -> int | None:
    """Make the job the one analysing `content_hash`; return the id of the job that already is, else None.

    None also when the job's lease was lost: the work may go on, and its result is refused when it is stored.
    """
    with write_transaction(engine) as conn:
        lock_content(conn, content_hash)
        now = now_in(conn, now)
        holder = conn.scalar(_HOLDER, {"content_hash": content_hash, "id": job_id, "now": now})
        if holder is not None:
            return int(holder)
        conn.execute(_TAKE, {"content_hash": content_hash, "now": now, "id": job_id, "owner": owner})
        return None
