"""What one file's job does, shared by `beatwatch analyze` and the daemon's workers.

Analysis first, then the sidecar (atomically), then the database rows in one
transaction; the user's audio is only ever read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from beatwatch.analysis.pipeline import Analyzer, Progress
from beatwatch.store.records import save_timeline
from beatwatch.store.sidecar import sidecar_path, write_sidecar


@dataclass(frozen=True)
class Outcome:
    document: dict
    sidecar: Path
    analysis_id: int | None


def analyze_file(analyzer: Analyzer, path: str | os.PathLike, *, output_dir: Path | None,
                 engine: Engine | None, max_duration_s: float | None = None,
                 progress: Progress | None = None) -> Outcome:
    """Analyse one file, write its sidecar and (when an engine is given) its rows."""
    path = Path(path).absolute()
    mtime = path.stat().st_mtime if path.exists() else None
    document = analyzer.analyze(path, max_duration_s=max_duration_s, progress=progress)
    target = write_sidecar(document, sidecar_path(path, output_dir))
    analysis_id = save_timeline(engine, document, sidecar_path=str(target), mtime=mtime) if engine is not None else None
    return Outcome(document=document, sidecar=target, analysis_id=analysis_id)
