"""`beatwatch status`: what the queue and the daemon are doing, read from the database alone."""

from __future__ import annotations

from sqlalchemy import Engine

from beatwatch.store import jobs
from beatwatch.store.daemon_status import read_status
from beatwatch.store.db import write_lock_held

from .logs import escape_controls

BAR_WIDTH = 20
STALE_AFTER_S = 30.0


def progress_bar(fraction: float | None) -> str:
    fraction = min(max(fraction or 0.0, 0.0), 1.0)
    filled = int(round(fraction * BAR_WIDTH))
    return "[" + "#" * filled + "." * (BAR_WIDTH - filled) + f"] {fraction * 100:3.0f}%"


class DatabaseLocked(RuntimeError):
    """Another process holds the database's write lock: the daemon cannot record anything, so every number
    `status` could read would be stale."""


def render_status(engine: Engine, *, now: float) -> str:
    if write_lock_held(engine):
        raise DatabaseLocked("database locked by another process; the daemon is waiting for it, "
                             "and the queue and progress cannot be shown until it is released")
    counts = jobs.counts(engine)
    lines = ["queue:   " + "  ".join(f"{state} {n}" for state, n in counts.items())]
    throughput = jobs.recent_throughput(engine, now=now)
    lines.append(f"speed:   {throughput:.1f} audio s per wall s (last 10 min)")
    daemon = read_status(engine)
    if daemon is None:
        lines.append("daemon:  never ran against this database")
    else:
        age = now - daemon["updated_at"]
        alive = daemon["state"] != "stopped" and age < STALE_AFTER_S
        lines.append(f"daemon:  {daemon['state'] if alive else 'not running'} (pid {daemon['pid']}, "
                     f"updated {age:.0f} s ago)")
        if alive:
            lines.append(f"throttle: {daemon['throttle']}")
            lines.append(f"inference: {daemon['inference']}")
            if daemon.get("tags"):
                lines.append(f"warning: {daemon['tags']}")
            for w in daemon["workers"]:
                doing = f"job {w['job_id']} {w['stage']}" if w["busy"] else ("idle" if w["ready"] else "loading models")
                lines.append(f"worker {w['name']} pid {w['pid']}: {doing} ({w['rss_mb']} MB, {w['jobs_done']} done)")
            if daemon.get("pending_files"):
                lines.append(f"waiting for {daemon['pending_files']} file(s) to finish arriving")
    running = jobs.running(engine)
    if running:
        lines.append("running:")
        for job in running:
            name = escape_controls(job.path)
            lines.append(f"  {job.id:>6} {progress_bar(job.progress)} {job.stage or '':<12} {name}")
    return "\n".join(lines)
