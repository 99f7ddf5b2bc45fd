"""Peer answers cached per audio file as JSON, computed in worker processes only for files not cached yet.

Peers (madmom, Essentia, the Laplacian segmenter) take minutes per suite while
beatwatch changes on every run, so their answers are kept until their own
version number changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

WORKERS = 2


def cache_path(cache_dir: Path, audio: Path, kind: str) -> Path:
    return Path(cache_dir) / f"{Path(audio).name}.{kind}.json"


def _cached(path: Path, version: int) -> dict | None:
    try:
        doc = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return doc if doc.get("version") == version else None


def _compute(analyse: Callable[[Path], dict], audio: str, out: str) -> None:
    doc = analyse(Path(audio))
    tmp = Path(out).with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, out)


def ensure_cached(audio_files: Sequence[Path], cache_dir: Path, *, kind: str, version: int,
                  analyse: Callable[[Path], dict], workers: int = WORKERS) -> dict[str, dict]:
    """Each file's answer (a dict with `version`) by audio file name; `analyse` must be a module-level function."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    missing = [a for a in audio_files if _cached(cache_path(cache_dir, a, kind), version) is None]
    if missing:
        with ProcessPoolExecutor(max_workers=max(1, min(workers, len(missing)))) as pool:
            list(pool.map(partial(_compute, analyse), [str(a) for a in missing],
                          [str(cache_path(cache_dir, a, kind)) for a in missing]))
    return {Path(a).name: _cached(cache_path(cache_dir, a, kind), version) for a in audio_files}
