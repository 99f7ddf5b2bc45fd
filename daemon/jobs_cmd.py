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


def retry_refusals(engine: Engine, asked: list[int], requeued: list[int], *, failed_only: bool) -> list[str]:
    """Why each asked-for id was not requeued, one sentence each."""
    left = [i for i in asked if i not in set(requeued)]
    known = {job.id: job for job in jobs.listing(engine, ids=left)} if left else {}
    reasons = []
    for job_id in left:
        job = known.get(job_id)
        if job is None:
            reasons.append(f"no job with id {job_id}")
        else:
            which = "failed" if failed_only else "done or failed"
            reasons.append(f"job {job_id} is {job.state}: only a file's latest {which} job can be retried")
    return reasons
