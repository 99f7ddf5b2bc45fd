"""`beatwatch status`: what the queue and the daemon are doing, read from the database alone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from beatwatch.store import jobs
from beatwatch.store.clock import database_now
from beatwatch.store.daemon_status import read_hosts
from beatwatch.store.db import write_lock_held

from .logs import escape_controls

BAR_WIDTH = 20
STALE_AFTER_S = 30.0
# Below this much progress an ETA is a guess from model loading and decoding, not from the analysis: none is shown.
ETA_AFTER_PROGRESS = 0.03


def progress_bar(fraction: float | None) -> str:
    fraction = min(max(fraction or 0.0, 0.0), 1.0)
    filled = int(round(fraction * BAR_WIDTH))
    return "[" + "#" * filled + "." * (BAR_WIDTH - filled) + f"] {fraction * 100:3.0f}%"


def eta_s(elapsed_s: float, fraction: float | None) -> float | None:
    """Seconds left if the rest goes as fast as what is done; None until enough is done to tell."""
    if fraction is None or fraction < ETA_AFTER_PROGRESS or elapsed_s <= 0:
        return None
    return max(elapsed_s * (1.0 - fraction) / fraction, 0.0)


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class DatabaseLocked(RuntimeError):
    """Another process holds the database's write lock: the daemon cannot record anything, so every number
    `status` could read would be stale."""


def status_data(engine: Engine, *, now: float) -> dict[str, Any]:
    """Everything `status` shows, as plain data: the text screen and `status --json` are two views of it."""
    if write_lock_held(engine):
        raise DatabaseLocked("database locked by another process; the daemon is waiting for it, "
                             "and the queue and progress cannot be shown until it is released")
    now = database_now(engine, now)  # the clock the hosts' reports and the jobs' times follow
    hosts = read_hosts(engine)
    for host in hosts:
        host["age_s"] = now - host["updated_at"]
        host["alive"] = host["state"] != "stopped" and host["age_s"] < STALE_AFTER_S
        host["gone"] = host["state"] != "stopped" and not host["alive"]
    daemon = max(hosts, key=lambda host: host["updated_at"]) if hosts else None
    alive = daemon is not None and daemon["alive"]
    running = []
    for job in jobs.running(engine):
        elapsed = now - job.started_at if job.started_at else 0.0
        running.append({"id": job.id, "path": job.path, "stage": job.stage, "progress": job.progress,
                        "attempts": job.attempts, "started_at": job.started_at, "elapsed_s": round(elapsed, 1),
                        "eta_s": _rounded(eta_s(elapsed, job.progress))})
    return {
        "queue": jobs.counts(engine),
        "speed": {"window_s": 600, "audio_s_per_wall_s": round(jobs.recent_throughput(engine, now=now), 2),
                  "audio_s_per_busy_s": round(jobs.recent_busy_speed(engine, now=now), 2)},
        "daemon": daemon, "daemon_running": alive, "hosts": hosts, "running": running,
    }


def _host_state(host: dict[str, Any]) -> str:
    return host["state"] if host["alive"] else ("gone" if host["gone"] else "stopped")


def _daemon_lines(daemon: dict[str, Any]) -> list[str]:
    """What one running daemon reports of itself: throttle, inference and device, workers."""
    lines = [f"throttle: {daemon['throttle']}", f"inference: {daemon['inference']}"]
    if daemon.get("tags"):
        lines.append(f"warning: {daemon['tags']}")
    if daemon.get("workers_asleep"):
        lines.append(f"workers asleep: {daemon['workers_asleep']} (exited after workers.idle_exit_s idle; "
                     "one starts per waiting job)")
    for w in daemon["workers"]:
        doing = f"job {w['job_id']} {w['stage']}" if w["busy"] else ("idle" if w["ready"] else "loading models")
        lines.append(f"worker {w['name']} pid {w['pid']}: {doing} ({w['rss_mb']} MB, {w['jobs_done']} done)")
    if daemon.get("pending_files"):
        lines.append(f"waiting for {daemon['pending_files']} file(s) to finish arriving")
    return lines


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def render_status(engine: Engine, *, now: float) -> str:
    return render_text(status_data(engine, now=now))


def render_text(data: dict[str, Any]) -> str:
    lines = ["queue:   " + "  ".join(f"{state} {n}" for state, n in data["queue"].items())]
    speed = data["speed"]
    lines.append(f"speed:   {speed['audio_s_per_wall_s']:.1f} audio s per wall s, "
                 f"{speed['audio_s_per_busy_s']:.1f} per busy worker s (last 10 min)")
    daemon, hosts = data["daemon"], data.get("hosts") or []
    if daemon is None:
        lines.append("daemon:  never ran against this database")
    elif len(hosts) <= 1:
        alive = data["daemon_running"]
        lines.append(f"daemon:  {daemon['state'] if alive else 'not running'} (pid {daemon['pid']}, "
                     f"updated {daemon['age_s']:.0f} s ago)")
        if alive:
            lines.extend(_daemon_lines(daemon))
    else:
        states = [_host_state(host) for host in hosts]
        lines.append(f"hosts:   {len(hosts)} ({', '.join(f'{states.count(s)} {s}' for s in sorted(set(states)))})")
        for host, state in zip(hosts, states):
            lines.append(f"host {escape_controls(host['host'])}: {state} (pid {host['pid']}, "
                         f"updated {host['age_s']:.0f} s ago)"
                         + ("; its jobs go to other hosts when their leases (jobs.lease_s) run out"
                            if state == "gone" else ""))
            if host["alive"]:
                lines.extend("  " + line for line in _daemon_lines(host))
    if data["running"]:
        lines.append("running:")
        for job in data["running"]:
            name = escape_controls(job["path"])
            lines.append(f"  {job['id']:>6} {progress_bar(job['progress'])} {job['stage'] or '':<12} "
                         f"{clock(job['elapsed_s'])} elapsed, ETA {clock(job['eta_s'])}  {name}")
    return "\n".join(lines)
