"""What the supervisor, its workers and the inference process tell each other, as named, frozen types.

Every type here crosses a process boundary pickled (spawn start method: a
pipe between supervisor and worker, a Unix socket between a worker and the
inference process), so each is a plain frozen dataclass at module level, and
a reader dispatches on the type, never on a position in a tuple.

Supervisor -> worker: WorkerSettings (once, at spawn), then a Task per job,
Go when the task's content is its to analyse, or None to ask the worker to
exit. Worker -> supervisor: Ready once the models are loaded, then per task
Hashed once it knows the content, Progress at each stage, Alive every
heartbeat and one Result. Worker -> inference process: an InferenceRequest;
the process greets each connection with an InferenceHello and answers every
request with an InferenceAnswer or an InferenceRefusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from .admission import FollowSymlinks

# ----- supervisor and workers ----------------------------------------------------------------


@dataclass(frozen=True)
class WorkerSettings:
    """A worker's whole configuration, fixed for its life: after a SIGHUP only workers started later see new values."""

    store_url: str
    nice: int
    memory_mb: int
    chunk_s: float
    min_bpm: float
    max_bpm: float
    models_dir: str
    device: str
    inference_address: str | None  # the inference process's socket, or None when the worker runs the networks
    # library.roots, name -> this host's mount: a linked copy's document is read from the stored analysis's sidecar.
    library_roots: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Task:
    """One claimed job, handed to an idle worker."""

    job_id: int
    token: str
    path: str
    max_duration_s: float
    force: bool = False
    plot_path: str | None = None
    # The inbox and inbox.follow_symlinks, for the worker's own check just before it opens path (admission.py).
    inbox: str | None = None
    follow_symlinks: FollowSymlinks = "inside"


OutcomeKind = Literal["analysed", "linked", "error"]
# The file a worker read, as (st_dev, st_ino, st_ctime_ns) when it opened it: publish.py compares it with the path's
# now. Comparing stamps of one file, not a ctime with the claim's time, holds when clocks disagree (hosts, a
# PostgreSQL server, a file server).
FileStamp = tuple[int, int, int]


@dataclass(frozen=True)
class Outcome:
    """What a task produced: a document (analysed anew, or linked to an earlier analysis of the same content)
    or an error, permanent when retrying cannot help."""

    kind: OutcomeKind
    document: dict[str, Any] | None = None
    error: str | None = None
    permanent: bool = False
    opened: FileStamp | None = None  # with a document: the file it was computed from


@dataclass(frozen=True)
class Ready:
    """The worker loaded its models and waits for tasks."""

    pid: int


@dataclass(frozen=True)
class Progress:
    """The task entered a stage; fraction is the share of the job done (0-1)."""

    job_id: int
    stage: str
    fraction: float


@dataclass(frozen=True)
class Alive:
    """Heartbeat while a task runs, also during one long stage."""

    job_id: int


@dataclass(frozen=True)
class Hashed:
    """The task's content, known before any analysis; the worker waits for Go (see daemon/turns.py)."""

    job_id: int
    content_hash: str


@dataclass(frozen=True)
class Go:
    """The task's content is this worker's to link or analyse: no other worker is analysing it now."""

    job_id: int


@dataclass(frozen=True)
class Result:
    """The task's end; token is the lease it was claimed with, so a result that comes too late is recognised."""

    job_id: int
    token: str
    outcome: Outcome


WorkerMessage = Ready | Hashed | Progress | Alive | Result

# ----- workers and the inference process ------------------------------------------------------

InferenceMethod = Literal["downbeats", "chord_features", "key", "tags"]
INFERENCE_METHODS: frozenset[str] = frozenset(get_args(InferenceMethod))


@dataclass(frozen=True)
class InferenceSettings:
    """The inference process's configuration, fixed for its life (a restart after a crash reuses it)."""

    device: str
    models_dir: str | None
    max_batch: int
    max_wait_ms: float
    threads: int | None
    nice: int


@dataclass(frozen=True)
class InferenceHello:
    """Sent on every new connection: who answers, on which device, with which tag models."""

    pid: int
    device: str
    reason: str
    tag_models: list[str]
    tags: str


@dataclass(frozen=True)
class InferenceRequest:
    request_id: int
    method: InferenceMethod
    inputs: list[Any]


@dataclass(frozen=True)
class InferenceAnswer:
    """outputs: one per input, in order; batch: how many requests shared the network call (1 = ran alone)."""

    request_id: int
    outputs: list[Any]
    batch: int


@dataclass(frozen=True)
class InferenceRefusal:
    """The request failed (a bad input, an unknown method); the process serves on."""

    request_id: int
    error: str
