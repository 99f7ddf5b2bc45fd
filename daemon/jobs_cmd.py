"""`beatwatch jobs` and the reasons `retry` gives: job ids are what `retry` takes, so something must show them."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from sqlalchemy import Engine

from beatwatch.store import jobs

from .logs import escape_controls


def job_record(job: jobs.Job) -> dict[str, Any]:
    """A job as JSON: every column, times as epoch seconds (what the database holds, easy to compute with)."""
    return dataclasses.asdict(job)


def _clock(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else "-"


def render_jobs(found: list[jobs.Job]) -> str:
    """One line per job, the path last so a long name cannot push the other columns about; the error below it."""
    if not found:
        return "no jobs"
    lines = [f"{'id':>6}  {'state':<10} {'tries':>5}  {'queued':<19}  {'finished':<19}  path"]
    for job in found:
        lines.append(f"{job.id:>6}  {job.state:<10} {job.attempts:>5}  {_clock(job.created_at):<19}  "
                     f"{_clock(job.finished_at):<19}  {escape_controls(job.path)}")
        if job.error:
            lines.append(f"{'':>8}error: {escape_controls(job.error)}")
    return "\n".join(lines)


def retry_refusals(engine: Engine, asked: list[int], requeued: list[int], *, failed_only: bool
                   ) -> tuple[list[str], list[str]]:
    """Why each asked-for id was not requeued, one sentence each: (refusals, notices).

    A notice is a job whose file has an active job already, most likely
    queued by a watcher (on this host or another) while `retry` ran: the file
    will be analysed, so that is not the user's mistake, only worth saying.
    """
    left = [i for i in asked if i not in set(requeued)]
    known = {job.id: job for job in jobs.listing(engine, ids=left)} if left else {}
    refusals, notices = [], []
    for job_id in left:
        job = known.get(job_id)
        if job is None:
            refusals.append(f"no job with id {job_id}")
            continue
        latest = jobs.job_for_path(engine, job.path)
        if latest is not None and latest.id != job_id and latest.state in jobs.ACTIVE:
            notices.append(f"job {job_id} not requeued: {escape_controls(job.path)} is queued already, as job "
                           f"{latest.id} ({latest.state})")
            continue
        which = "failed" if failed_only else "done or failed"
        newer = f" (job {latest.id} is)" if latest is not None and latest.id != job_id else ""
        refusals.append(f"job {job_id} is {job.state}: only a file's latest {which} job can be retried{newer}")
    return refusals, notices
