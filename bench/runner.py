"""One `beatwatch analyze` process over a list of files, as a user would run it; shared by the benchmarks."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sidecar_name(audio: Path) -> str:
    return f"{Path(audio).name}.beatwatch.json"


def run_analyze(files: Sequence[Path], out_dir: Path, log_path: Path) -> tuple[int, float]:
    """Analyse every file in one process into out_dir, its output in log_path; returns (exit code, seconds).

    Old sidecars of these files are removed first, so a file that fails now cannot be scored on a
    sidecar left over from an earlier run.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for audio in files:
        (out_dir / sidecar_name(audio)).unlink(missing_ok=True)
    command = [str(Path(sys.executable).parent / "beatwatch"), "analyze", *(str(a) for a in files),
               "--out", str(out_dir), "--no-db"]
    started = time.perf_counter()
    with log_path.open("w") as log:
        try:
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, check=False).returncode
        except OSError as error:
            log.write(f"cannot start {command[0]}: {error}\n")
            code = 127
    return code, time.perf_counter() - started
