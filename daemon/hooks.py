"""`hooks.on_done` / `hooks.on_failed`: a program run after a job, how people chain beatwatch into other tools.

The program is an argument list handed to exec, never to a shell: file names
come from whoever can write into the inbox, and a file named
`$(rm -rf ~).mp3` must arrive as one inert argument. The facts go in as
appended arguments (what most scripts read) and as BEATWATCH_* variables
(what needs no parsing). Each run has its own thread, so a slow hook never
holds up the supervisor's loop, and its own session, so a timeout kills
everything it started; how it ended is logged.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from dataclasses import dataclass

from .config import Hooks as HookSettings

log = logging.getLogger(__name__)

# The end of a failing hook's output that goes into the log line.
OUTPUT_TAIL_CHARS = 300


@dataclass(frozen=True)
class JobEvent:
    event: str  # "done" or "failed"
    job_id: int
    audio: str
    sidecar: str | None = None
    outcome: str | None = None
    content_hash: str | None = None
    error: str | None = None


def command_for(settings: HookSettings, job: JobEvent) -> tuple[list[str], dict[str, str]] | None:
    """The argv and the environment additions for this event; None when no hook is configured for it."""
    if job.event == "done":
        program, extra = settings.on_done, [job.sidecar or "", job.audio]
    else:
        program, extra = settings.on_failed, [job.audio, job.error or ""]
    if not program:
        return None
    env = {"BEATWATCH_EVENT": job.event, "BEATWATCH_JOB_ID": str(job.job_id), "BEATWATCH_AUDIO": job.audio}
    for name, value in (("SIDECAR", job.sidecar), ("OUTCOME", job.outcome), ("CONTENT_HASH", job.content_hash),
                        ("ERROR", job.error)):
        if value is not None:
            env[f"BEATWATCH_{name}"] = value
    return [*program, *extra], env


def fire(settings: HookSettings, job: JobEvent) -> threading.Thread | None:
    """Start the event's hook, if any, in the background; the thread is returned for tests and shutdown."""
    command = command_for(settings, job)
    if command is None:
        return None
    argv, env = command
    thread = threading.Thread(target=run_hook, args=(argv, {**os.environ, **env}, settings.timeout_s, job),
                              name=f"hook-{job.job_id}", daemon=True)
    thread.start()
    return thread


def run_hook(argv: list[str], env: dict[str, str], timeout_s: float, job: JobEvent) -> int | None:
    """Run one hook to its end or its timeout; the exit code, or None when it could not start or was killed."""
    what = f"hooks.on_{job.event} for job {job.job_id}"
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True, close_fds=True)
    except OSError as exc:
        log.error("%s: cannot start %s: %s", what, argv[0], exc.strerror or exc)
        return None
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        log.warning("%s: killed after %g s (hooks.timeout_s)", what, timeout_s)
        return None
    if proc.returncode:
        tail = output.decode(errors="replace").strip()[-OUTPUT_TAIL_CHARS:]
        log.warning("%s: %s exited with %d%s", what, argv[0], proc.returncode, f": {tail}" if tail else "")
    else:
        log.info("%s: %s ran (exit 0)", what, argv[0])
    return proc.returncode
