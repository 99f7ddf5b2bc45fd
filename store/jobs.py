"""The durable job queue: a row per file to analyse, leased to one worker at a time.

Every change runs in `write_transaction` (BEGIN IMMEDIATE), so "find the
next job, then take it" is one atomic step across processes. Guarded
UPDATEs still check `rowcount`, as huey's SqliteStorage does, so a lost
race shows up as a refusal, never as two owners.

The lease rule, shared by heartbeat, complete, fail and release: a worker
holds a job while the row is 'running' with its `lease_owner`, until
`expire_leases` takes it back. The clock is consulted only there. A lease
that ran out but was not yet taken back has not been given to anyone else,
so a late worker's result is still the only one and is accepted rather than
thrown away. Once taken back the job may go to another worker, and the late
worker's calls change nothing. Owner strings must therefore be unique per
worker process (host, pid and a random part), never reused.

Times are epoch seconds passed in as `now`: rows outlive processes and
reboots, where a monotonic clock means nothing, and tests pass a fake clock.

On PostgreSQL every time written or compared is the database server's, not
the caller's `now` (store/clock.py). Claims take the oldest runnable row with
`FOR UPDATE SKIP LOCKED`, so claimers on many hosts never wait for each
other's row or see a taken job as none left; rows read before they are
changed are locked `FOR UPDATE`, which SQLite's single writer makes moot.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from sqlalchemy import BindParameter, Connection, Engine, Row, TextClause, bindparam, insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from beatwatch.analysis.document import printable

from . import models
from .clock import now_in
from .names import exact_path, raw_bytes
from .transactions import write_transaction
from .wakeups import notify

State = Literal["queued", "running", "retry_wait", "done", "failed"]
STATES: tuple[State, ...] = get_args(State)
ACTIVE: tuple[State, ...] = ("queued", "running", "retry_wait")
ANALYSED = "analysed"

# Paths per `IN (...)` lookup in enqueue_many; far below SQLite's limit on bound parameters.
_LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class Job:
    """One row; `path` is the exact file name, also when it is not valid UTF-8."""

    id: int
    path: str
    state: State
    attempts: int
    force: bool
    lease_owner: str | None
    lease_expires: float | None
    not_before: float | None
    error: str | None
    stage: str | None
    progress: float | None
    size: int | None
    mtime: float | None
    content_hash: str | None
    analysis_id: int | None
    audio_duration: float | None
    wall_s: float | None
    outcome: str | None
    created_at: float | None
    updated_at: float | None
    started_at: float | None
    finished_at: float | None


# Named columns rather than `*`: a column added by a later migration must not break `Job(**row)`.
_COLUMNS = ", ".join([field.name for field in fields(Job)] + ["raw_path"])
_HELD = "id = :id AND lease_owner = :owner AND state = 'running'"
_NO_LEASE = "lease_owner = NULL, lease_expires = NULL"

# A name's identity is (path, raw_path): two names that differ only in bytes that are not UTF-8 share their
# printable `path` but not `raw_path`, and must not stand for each other (or each rescan queues the other).
_LATEST = text(
    "SELECT path, raw_path, state, size, mtime FROM jobs"
    " WHERE id IN (SELECT max(id) FROM jobs WHERE path IN :paths GROUP BY path, raw_path)"
).bindparams(bindparam("paths", expanding=True))
_SAME_NAME = "later.path = jobs.path AND later.raw_path IS NOT DISTINCT FROM jobs.raw_path"

# The oldest job that may run now: each branch is one search of ix_jobs_state_not_before.
_NEXT = text("""
SELECT min(id) FROM (
    SELECT min(id) AS id FROM jobs WHERE state = 'queued'
    UNION ALL
    SELECT min(id) FROM jobs WHERE state = 'retry_wait' AND not_before <= :now
)""")

# content_hash cleared: on a running job it means "holds this content's turn" (store/content_turns.py).
_TAKEN = """
UPDATE jobs SET state = 'running', lease_owner = :owner, lease_expires = :expires, attempts = attempts + 1,
    not_before = NULL, stage = 'claimed', progress = 0, content_hash = NULL, started_at = :now, finished_at = NULL,
    updated_at = :now"""
_RUNNABLE = "(state = 'queued' OR (state = 'retry_wait' AND not_before <= :now))"
_TAKE = text(f"{_TAKEN} WHERE id = :id AND {_RUNNABLE}")
# PostgreSQL: find and take in one statement; a row another claimer holds is passed over, not waited for.
_TAKE_NEXT = text(f"""{_TAKEN}
WHERE id = (SELECT id FROM jobs WHERE state IN ('queued', 'retry_wait') AND {_RUNNABLE}
            ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING {_COLUMNS}""")

_HEARTBEAT = text(f"""
UPDATE jobs SET lease_expires = :expires, updated_at = :now,
    stage = coalesce(:stage, stage), progress = coalesce(:progress, progress)
WHERE {_HELD}""")

_DONE = text(f"""
UPDATE jobs SET state = 'done', {_NO_LEASE}, error = NULL, stage = 'done', progress = 1, outcome = :outcome,
    content_hash = :content_hash, audio_duration = :audio_duration, wall_s = :wall_s,
    finished_at = :now, updated_at = :now
WHERE {_HELD}""")

# After a failure or a lost worker: the stage stays, saying how far the attempt got.
_SETTLE = text(f"""
UPDATE jobs SET state = :state, {_NO_LEASE}, error = :error, not_before = :not_before,
    finished_at = :finished_at, updated_at = :now
WHERE id = :id""")

_RELEASE = text(f"""
UPDATE jobs SET state = 'queued', {_NO_LEASE}, attempts = attempts - 1, stage = NULL, progress = NULL,
    started_at = NULL, updated_at = :now
WHERE {_HELD}""")


def enqueue(engine: Engine, path: str, *, size: int | None, mtime: float | None, now: float) -> int | None:
    """Queue one file; None when it already has an active job or was handled in this very version."""
    ids = enqueue_many(engine, [(path, size, mtime)], now=now)
    return ids[0] if ids else None


def enqueue_many(engine: Engine, items: Iterable[tuple[str, int | None, float | None]], *,
                 now: float) -> list[int]:
    """Queue every (path, size, mtime) that needs a job, in one transaction; return the new ids.

    The reconcile pass offers the inbox a batch at a time (daemon/reconcile.py),
    so the latest job of each path is looked up in chunks by the indexed path
    and the new rows go in as one multi-row INSERT. A path is skipped while it has an active job, or when
    its latest job finished (done or failed) with the same size and mtime:
    only a changed file is worth another try without `retry`. The first
    occurrence of a path repeated in `items` wins.
    """
    with write_transaction(engine) as conn:
        now = now_in(conn, now)
        rows = [
            {"path": printable(path), "raw_path": raw_bytes(path), "state": "queued", "attempts": 0, "size": size,
             "mtime": mtime, "created_at": now, "updated_at": now}
            for path, size, mtime in _without_job(conn, items)
        ]
        if not rows:
            return []
        if conn.dialect.name == "postgresql":
            # Another host's watcher may queue the same file between the look-up and here: the unique index on
            # active names keeps one, and this insert skips it rather than failing the whole batch.
            skip = postgresql.insert(models.JobRow).on_conflict_do_nothing().returning(models.JobRow.id)
            added = sorted(conn.execute(skip, rows).scalars())
            if added:
                notify(conn)
            return added
        statement = insert(models.JobRow).returning(models.JobRow.id, sort_by_parameter_order=True)
        return list(conn.execute(statement, rows).scalars())


def unqueued(engine: Engine, items: Iterable[tuple[str, int | None, float | None]]
             ) -> list[tuple[str, int | None, float | None]]:
    """The (path, size, mtime) that enqueue_many would queue now, found without writing: the reconcile pass sorts
    a batch of the library with it, so only new or changed files reach the stability tracker."""
    with engine.connect() as conn:
        return _without_job(conn, items)


def claim(engine: Engine, owner: str, *, lease_s: float, now: float) -> Job | None:
    """Take the oldest job that may run now (queued, or retry_wait whose wait is over); None if there is none."""
    with write_transaction(engine) as conn:
        now = now_in(conn, now)
        if conn.dialect.name == "postgresql":
            row = conn.execute(_TAKE_NEXT, {"owner": owner, "expires": now + lease_s, "now": now}).first()
            return _job(row) if row is not None else None
        job_id = conn.scalar(_NEXT, {"now": now})
        if job_id is None:
            return None
        taken = conn.execute(_TAKE, {"id": job_id, "owner": owner, "expires": now + lease_s, "now": now})
        if taken.rowcount != 1:
            return None
        return _job(conn.execute(text(f"SELECT {_COLUMNS} FROM jobs WHERE id = :id"), {"id": job_id}).one())


def heartbeat(engine: Engine, job_id: int, owner: str, *, lease_s: float, now: float,
              stage: str | None = None, progress: float | None = None) -> bool:
    """Extend the lease and record how far the job got; False means the lease was lost and the work should stop.

    Progress is clamped to 0..1 so a rounding slip in a chunk count cannot fail a heartbeat.
    """
    if progress is not None:
        progress = min(max(progress, 0.0), 1.0)
    with write_transaction(engine) as conn:
        now = now_in(conn, now)
        result = conn.execute(_HEARTBEAT, {"id": job_id, "owner": owner, "expires": now + lease_s, "now": now,
                                           "stage": stage, "progress": progress})
        return result.rowcount == 1


def complete(engine: Engine, job_id: int, owner: str, *, now: float, write: Callable[[Connection], int | None],
             outcome: str = ANALYSED, content_hash: str | None = None, audio_duration: float | None = None,
             wall_s: float | None = None) -> bool:
    """Mark the job done and store its result in the same transaction, only while the lease is held.

    `write` gets the transaction's connection (e.g. `save_timeline_in`) and
    returns the analysis id, or None when nothing new was stored (a file
    linked to an existing analysis). A worker whose lease was taken back
    gets False and its `write` is never called; if `write` raises, nothing
    is stored and the job stays running for the caller to `fail`.
    """
    with write_transaction(engine) as conn:
        now = now_in(conn, now)
        done = conn.execute(_DONE, {"id": job_id, "owner": owner, "now": now, "outcome": outcome,
                                    "content_hash": content_hash, "audio_duration": audio_duration,
                                    "wall_s": wall_s})
        if done.rowcount != 1:
            return False
        analysis_id = write(conn)
        if analysis_id is not None:
            conn.execute(text("UPDATE jobs SET analysis_id = :analysis_id WHERE id = :id"),
                         {"analysis_id": analysis_id, "id": job_id})
        return True


def fail(engine: Engine, job_id: int, owner: str, *, error: str, permanent: bool, now: float, max_attempts: int,
         backoff_base_s: float = 5.0, backoff_max_s: float = 3600.0, rng: Callable[[], float] = random.random,
         permanent_if_repeated: str | None = None) -> State | None:
    """Record a failed attempt; return the new state ('retry_wait' or 'failed'), None if the lease was lost.

    A transient error waits min(max, base * 2**(attempts-1)) scaled by a
    random factor in [0.5, 1.5), so files that failed together (a share
    that went away) do not all come back in the same second.

    `permanent_if_repeated` is a mark in an error's text (the daemon's
    "(jobs.timeout_s)"): when this error and the previous attempt's both
    hold it, the failure is permanent, since a file that timed out twice will time out
    again and each try holds a worker for the whole limit.
    """
    with write_transaction(engine) as conn:
        now = now_in(conn, now)
        held = conn.execute(text(f"SELECT attempts, error FROM jobs WHERE {_HELD}{_for_update(conn)}"),
                            {"id": job_id, "owner": owner}).first()
        if held is None:
            return None
        attempts, previous = held
        repeated = permanent_if_repeated is not None and permanent_if_repeated in error \
            and permanent_if_repeated in (previous or "")
        if permanent or repeated or attempts >= max_attempts:
            state: State = "failed"
            not_before, finished_at = None, now
        else:
            state = "retry_wait"
            delay = min(backoff_max_s, backoff_base_s * 2 ** (attempts - 1)) * (0.5 + rng())
            not_before, finished_at = now + delay, None
        conn.execute(_SETTLE, {"id": job_id, "state": state, "error": printable(error), "not_before": not_before,
                               "finished_at": finished_at, "now": now})
        return state


def expire_leases(engine: Engine, *, now: float, max_attempts: int) -> list[int]:
    """Take back the jobs of workers that died or stalled; requeue them, or fail those out of attempts."""
    with write_transaction(engine) as conn:
        now = now_in(conn, now)
        expired = conn.execute(
            text("SELECT id, attempts FROM jobs WHERE state = 'running' AND lease_expires < :now ORDER BY id"
                 + _for_update(conn, skip_locked=True)),
            {"now": now},
        ).all()
        for job_id, attempts in expired:
            gave_up = attempts >= max_attempts
            conn.execute(_SETTLE, {
                "id": job_id, "state": "failed" if gave_up else "queued", "not_before": None,
                "error": f"lease expired on attempt {attempts} of {max_attempts}: the worker died or stalled",
                "finished_at": now if gave_up else None, "now": now,
            })
        if expired:
            notify(conn)
        return [job_id for job_id, _ in expired]


def requeue_all_running(engine: Engine, *, now: float, owner_prefix: str | None = None) -> int:
    """At start-up, queue again what a crashed daemon left running; the attempt it spent stays counted.

    Without `owner_prefix` every running job is taken: one daemon per database. Hosts sharing a database pass
    their own prefix (owners start with the host name) and leave the others' jobs to their leases.
    """
    where = "state = 'running'"
    params: dict[str, Any] = {}
    if owner_prefix is not None:
        where += " AND substr(lease_owner, 1, :length) = :prefix"
        params.update(length=len(owner_prefix), prefix=owner_prefix)
    with write_transaction(engine) as conn:
        params["now"] = now_in(conn, now)
        requeued = conn.execute(
            text(f"UPDATE jobs SET state = 'queued', {_NO_LEASE}, updated_at = :now WHERE {where}"), params,
        ).rowcount
        if requeued:
            notify(conn)
        return requeued


def release(engine: Engine, job_id: int, owner: str, *, now: float) -> bool:
    """Give a job back unfinished (a drain ran out of time) without counting the attempt against it."""
    with write_transaction(engine) as conn:
        released = conn.execute(_RELEASE, {"id": job_id, "owner": owner, "now": now_in(conn, now)}).rowcount == 1
        if released:
            notify(conn)
        return released


def retry(engine: Engine, *, ids: list[int] | None = None, failed_only: bool = False, now: float) -> list[int]:
    """Start jobs over from nothing (attempts, error and result cleared); return the ids requeued, so a caller
    can name each id it asked for that was not.

    They come back with `force` set: the user asked for a fresh analysis, so
    the worker must not reuse a stored one of the same content.

    With `ids`, those jobs if failed, or done too unless `failed_only`;
    without, every failed job. Only a path's latest job is retried: older
    ones are history, and the latest being finished also means the path has
    no active job that the requeued one would collide with.

    On PostgreSQL another host's watcher may queue one of these files while
    this runs: its new row and a requeued one then meet on the unique index
    of active names. Each job is requeued in a transaction of its own, tried
    again once the other host's row is in, when the job is no longer its
    file's latest and is left alone: the file is queued once, and one job
    per transaction cannot wait in a cycle with a watcher's batch.
    """
    if ids is not None and not ids:
        return []
    where = f"state IN :states AND id = (SELECT max(later.id) FROM jobs AS later WHERE {_SAME_NAME})"
    params: dict[str, Any] = {"states": ["failed"] if failed_only or ids is None else ["failed", "done"]}
    if ids is not None:
        where += " AND id IN :ids"
        params["ids"] = ids
    if engine.dialect.name != "postgresql":
        return _requeue(engine, where, params, now=now)  # SQLite's one writer: nobody can queue in between
    with engine.connect() as conn:
        candidates = conn.execute(_expanding(f"SELECT id FROM jobs WHERE {where} ORDER BY id"), params).scalars().all()
    return [job_id for candidate in candidates
            for job_id in _requeue(engine, f"{where} AND id = :id", {**params, "id": candidate}, now=now)]


def _requeue(engine: Engine, where: str, params: dict[str, Any], *, now: float) -> list[int]:
    statement = _expanding(f"""
        UPDATE jobs SET state = 'queued', attempts = 0, force = 1, {_NO_LEASE}, not_before = NULL, error = NULL,
            stage = NULL, progress = NULL, content_hash = NULL, analysis_id = NULL, audio_duration = NULL,
            wall_s = NULL, outcome = NULL, started_at = NULL, finished_at = NULL, updated_at = :now
        WHERE {where} RETURNING id""")
    for _ in range(3):
        try:
            with write_transaction(engine) as conn:
                requeued = sorted(conn.execute(statement, {**params, "now": now_in(conn, now)}).scalars())
                if requeued:
                    notify(conn)
                return requeued
        except IntegrityError:  # another host queued the file first; looked at again, this job is not its latest
            continue
    return []


def _expanding(sql: str) -> TextClause:
    """The statement with its list parameters (:states, :ids) bound as lists."""
    return text(sql).bindparams(*[bindparam(name, expanding=True) for name in ("states", "ids") if f":{name}" in sql])


def listing(engine: Engine, *, states: Iterable[State] | None = None, limit: int | None = None,
            ids: Iterable[int] | None = None) -> list[Job]:
    """Jobs newest first, optionally only in some states or with some ids, for `beatwatch jobs` and `retry`."""
    where: list[str] = []
    params: dict[str, Any] = {}
    binds: list[BindParameter[Any]] = []
    if states is not None:
        where.append("state IN :states")
        params["states"] = list(states)
        binds.append(bindparam("states", expanding=True))
    if ids is not None:
        where.append("id IN :ids")
        params["ids"] = list(ids)
        binds.append(bindparam("ids", expanding=True))
    query = f"SELECT {_COLUMNS} FROM jobs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
    if limit:
        query += f" LIMIT {int(limit)}"
    with engine.connect() as conn:
        return [_job(row) for row in conn.execute(text(query).bindparams(*binds), params)]


def runnable(engine: Engine, *, now: float, limit: int) -> int:
    """How many jobs (up to limit) may be claimed now: the question that wakes workers that exited while idle."""
    with engine.connect() as conn:
        return len(conn.execute(text(
            "SELECT id FROM jobs WHERE state = 'queued' OR (state = 'retry_wait' AND not_before <= :now) LIMIT :n"),
            {"now": now_in(conn, now), "n": limit}).all())


def counts(engine: Engine) -> dict[State, int]:
    """Jobs per state, every state present so `status` prints a stable table."""
    with engine.connect() as conn:
        query = text("SELECT state, count(*) FROM jobs GROUP BY state")
        found: dict[str, int] = dict(conn.execute(query).tuples().all())
    return {state: found.get(state, 0) for state in STATES}


def running(engine: Engine) -> list[Job]:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {_COLUMNS} FROM jobs WHERE state = 'running' ORDER BY id")).all()
    return [_job(row) for row in rows]


def job_for_path(engine: Engine, path: str) -> Job | None:
    """The path's latest job, which is also its active one when it has one."""
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT {_COLUMNS} FROM jobs WHERE path = :path"
                                " AND raw_path IS NOT DISTINCT FROM :raw ORDER BY id DESC LIMIT 1"),
                           {"path": printable(path), "raw": raw_bytes(path)}).first()
    return _job(row) if row is not None else None


def recent_throughput(engine: Engine, *, now: float, window_s: float = 600.0) -> float:
    """Audio seconds analysed per wall-clock second over the last `window_s`, all workers together.

    Counts jobs with outcome 'analysed' that finished in the window (linked
    files took no analysis and would inflate it). Divides by the time from
    the window's start, or from the first such job's start when later, to
    `now`, so a daemon that has run for one minute is not judged over ten.
    0.0 when nothing was analysed.
    """
    with engine.connect() as conn:
        now = now_in(conn, now)
        since = now - window_s
        audio, first_start = conn.execute(
            text("SELECT sum(audio_duration), min(started_at) FROM jobs"
                 " WHERE state = 'done' AND outcome = :outcome AND finished_at >= :since"),
            {"outcome": ANALYSED, "since": since},
        ).one()
    span = now - max(since, first_start if first_start is not None else since)
    return audio / span if audio and span > 0 else 0.0


def recent_busy_speed(engine: Engine, *, now: float, window_s: float = 600.0) -> float:
    """Audio seconds per second a worker spent analysing, over the jobs analysed in the last `window_s`.

    `recent_throughput` divides by wall time, idle time included, so a daemon
    that ran one file at 30x in ten quiet minutes shows 1.7x; this is the
    speed of the analysis itself. 0.0 when nothing was analysed.
    """
    with engine.connect() as conn:
        now = now_in(conn, now)
        audio, busy = conn.execute(
            text("SELECT sum(audio_duration), sum(wall_s) FROM jobs"
                 " WHERE state = 'done' AND outcome = :outcome AND finished_at >= :since AND wall_s > 0"),
            {"outcome": ANALYSED, "since": now - window_s},
        ).one()
    return audio / busy if audio and busy else 0.0


def _for_update(conn: Connection, *, skip_locked: bool = False) -> str:
    """Row locks for a read that a write in the same transaction relies on; SQLite's write lock covers it."""
    if conn.dialect.name != "postgresql":
        return ""
    return " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"


def _latest_jobs(conn: Connection, paths: list[str]) -> dict[tuple[str, bytes | None], Row[Any]]:
    """The latest job of each name with one of these printable paths, keyed by (path, raw_path)."""
    latest: dict[tuple[str, bytes | None], Row[Any]] = {}
    for start in range(0, len(paths), _LOOKUP_CHUNK):
        for row in conn.execute(_LATEST, {"paths": paths[start:start + _LOOKUP_CHUNK]}):
            latest[(row.path, row.raw_path)] = row
    return latest


def _without_job(conn: Connection, items: Iterable[tuple[str, int | None, float | None]]
                 ) -> list[tuple[str, int | None, float | None]]:
    """The items that need a job (see enqueue_many), each path once, its first occurrence winning."""
    wanted: dict[str, tuple[int | None, float | None]] = {}
    for path, size, mtime in items:
        wanted.setdefault(path, (size, mtime))
    by_name = _latest_jobs(conn, sorted({printable(path) for path in wanted}))
    return [(path, size, mtime) for path, (size, mtime) in wanted.items()
            if _needs_job(by_name.get((printable(path), raw_bytes(path))), size, mtime)]


def _needs_job(latest: Row[Any] | None, size: int | None, mtime: float | None) -> bool:
    if latest is None:
        return True
    if latest.state in ACTIVE:
        return False
    return (latest.size, latest.mtime) != (size, mtime)


def _job(row: Row[Any]) -> Job:
    values = dict(row._mapping)
    raw = values.pop("raw_path")
    return Job(**{**values, "path": exact_path(values["path"], raw),
                  "force": bool(values["force"])})


def note_rewritten(engine: Engine, path: str, *, size: int, mtime: float) -> None:
    """beatwatch itself rewrote the file (its tags): the latest finished job of the name now stands for the new
    size and mtime, so the change it made does not queue the file again."""
    name = (printable(path), raw_bytes(path))
    with write_transaction(engine) as conn:
        latest = conn.execute(
            text("SELECT id, state FROM jobs WHERE path = :path AND raw_path IS NOT DISTINCT FROM :raw"
                 " ORDER BY id DESC LIMIT 1"),
            {"path": name[0], "raw": name[1]}).first()
        if latest is None or latest.state in ACTIVE:
            return
        conn.execute(text("UPDATE jobs SET size = :size, mtime = :mtime WHERE id = :id"),
                     {"size": size, "mtime": mtime, "id": latest.id})
