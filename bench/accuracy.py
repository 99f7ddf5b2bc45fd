"""`python -m bench.accuracy`: beatwatch's accuracy on rendered songs with exact ground truth.

Renders the suite (cached in .bench/songs), analyses every file in one
`beatwatch analyze` process exactly as a user would run it, scores each
sidecar against its truth and prints one table of measures against the
minimums, then the songs that miss one. The table also goes to
.bench/accuracy.json so that runs can be compared.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .scoring import SidecarError, score
from .songs import RenderError, Song, SongSpec, benchmark_suite, ensure_suite, quick_subset

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / ".bench"
SONGS_DIR = BENCH_DIR / "songs"
SIDECARS_DIR = BENCH_DIR / "sidecars"
REPORT = BENCH_DIR / "accuracy.json"
ANALYZE_LOG = BENCH_DIR / "analyze.log"
# A mean of exact fractions (4.8 / 6) can land a hair under the minimum it equals.
ROUNDING = 1e-9


@dataclass(frozen=True)
class Measure:
    """One row of the table.

    `minimum` fails --strict when missed, unless `issue` names the issue that tracks reaching it
    (then it is a target: shown, not enforced). A song is listed under the table when its own
    value is below `per_song` (the minimum when not given).
    """

    key: str
    label: str
    minimum: float | None = None
    issue: int | None = None
    per_song: float | None = None

    @property
    def song_floor(self) -> float | None:
        return self.per_song if self.per_song is not None else self.minimum


MEASURES: tuple[Measure, ...] = (
    Measure("beat_f", "beat F-measure (70 ms)", 0.97),
    Measure("downbeat_f", "downbeat F-measure", 0.95),
    Measure("tempo_acc1", "tempo Acc1 (4 %, steady songs)", 0.98, issue=5, per_song=1.0),
    Measure("tempo_curve", "tempo curve within 4 % (ramp/step)", per_song=0.9),
    Measure("meter", "meter (3/4, 4/4)", 0.98, per_song=1.0),
    Measure("chord_majmin", "chords majmin, weighted", 0.93),
    Measure("bar_chord", "chord per bar", per_song=0.9),
    Measure("key_mirex", "key MIREX weighted score", 0.80, issue=5, per_song=1.0),
    Measure("key_change", "key change found (within 2 bars)", per_song=1.0),
)


@dataclass
class SongResult:
    """One song's scores, kept per song so that the report can name the songs that miss."""

    name: str
    audio: str
    metrics: dict[str, float]
    problem: str | None = None  # why the sidecar is missing or unreadable


def select(quick: bool, only: Sequence[str], suite_size: int | None) -> list[SongSpec]:
    """The specs to run: the whole suite, the --quick handful, narrowed by --only substrings."""
    specs = benchmark_suite(suite_size)
    if quick:
        specs = quick_subset(specs)
    if only:
        specs = [s for s in specs if any(word in s.name for word in only)]
    return specs


def sidecar_path(song: Song) -> Path:
    return SIDECARS_DIR / f"{song.audio.name}.beatwatch.json"


def analyze(songs: Sequence[Song]) -> tuple[int, float]:
    """Run one `beatwatch analyze` over every file, output in ANALYZE_LOG; returns (exit code, seconds).

    Old sidecars of these files are removed first, so a file that fails now cannot be scored on a
    sidecar left over from an earlier run.
    """
    SIDECARS_DIR.mkdir(parents=True, exist_ok=True)
    for song in songs:
        sidecar_path(song).unlink(missing_ok=True)
    command = [str(Path(sys.executable).parent / "beatwatch"), "analyze", *(str(s.audio) for s in songs),
               "--out", str(SIDECARS_DIR), "--no-db"]
    started = time.perf_counter()
    with ANALYZE_LOG.open("w") as log:
        try:
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, check=False).returncode
        except OSError as error:
            log.write(f"cannot start {command[0]}: {error}\n")
            code = 127
    return code, time.perf_counter() - started


def evaluate(song: Song) -> SongResult:
    """Score one song's sidecar; a missing or unreadable sidecar scores 0 on every measure."""
    truth = song.truth()
    path = sidecar_path(song)
    result = SongResult(song.name, song.audio.name, {})
    try:
        result.metrics = score(truth, json.loads(path.read_text()))
    except FileNotFoundError:
        result.problem = f"no sidecar {path.name} (analysis failed or not run; see {ANALYZE_LOG.relative_to(ROOT)})"
    except (json.JSONDecodeError, SidecarError) as error:
        result.problem = f"unreadable sidecar: {error}"
    if result.problem:
        result.metrics = score(truth, {})
    return result


def summarize(results: Sequence[SongResult]) -> list[dict]:
    """One row per measure: mean over the songs it applies to, and its verdict against the minimum."""
    rows = []
    for measure in MEASURES:
        values = [r.metrics[measure.key] for r in results if measure.key in r.metrics]
        value = sum(values) / len(values) if values else None
        if measure.minimum is None or value is None:
            status = "-"
        elif value >= measure.minimum - ROUNDING:
            status = "PASS"
        else:
            status = f"below (issue {measure.issue})" if measure.issue else "FAIL"
        rows.append({**asdict(measure), "value": value, "songs": len(values), "status": status})
    return rows


def failures(results: Sequence[SongResult]) -> list[dict]:
    """(song, measure, value) for every song value under its measure's per-song floor.

    Songs without a readable sidecar are left out: their one problem line says more than a row of zeros.
    """
    rows = []
    for result in (r for r in results if not r.problem):
        for measure in MEASURES:
            value = result.metrics.get(measure.key)
            if value is not None and measure.song_floor is not None and value < measure.song_floor - ROUNDING:
                rows.append({"song": result.name, "measure": measure.key, "value": value})
    return rows


def _minimum_text(row: dict) -> str:
    if row["minimum"] is None:
        return ""
    return f"{row['minimum']:.2f}" + (f" (issue {row['issue']})" if row["issue"] else "")


def print_report(rows: list[dict], failed: list[dict], results: Sequence[SongResult]) -> None:
    print(f"{'measure':36} {'beatwatch':>9} {'songs':>5}  {'minimum':16} result")
    for row in rows:
        value = "n/a" if row["value"] is None else f"{row['value']:.3f}"
        print(f"{row['label']:36} {value:>9} {row['songs']:>5}  {_minimum_text(row):16} {row['status']}")
    problems = [r for r in results if r.problem]
    if not (failed or problems):
        return
    width = max(len(r.name) for r in results)
    print(f"\n{'song':{width}} {'measure':14} value")
    for result in problems:
        print(f"{result.name:{width}} {'-':14} {result.problem}")
    for row in failed:
        print(f"{row['song']:{width}} {row['measure']:14} {row['value']:.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fixed handful of songs (one of each kind) for CI")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="only songs whose name contains NAME (repeatable)")
    parser.add_argument("--songs", type=int, metavar="N", help="suite size (default: the full suite)")
    parser.add_argument("--score-only", action="store_true",
                        help="score the sidecars already in .bench/sidecars instead of running beatwatch")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a minimum (not an issue target) is missed")
    args = parser.parse_args(argv)

    specs = select(args.quick, args.only, args.songs)
    if not specs:
        print("no song matches --only " + " ".join(args.only), file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        songs = ensure_suite(SONGS_DIR, specs)
    except RenderError as error:
        print(f"cannot render the benchmark songs: {error}", file=sys.stderr)
        return 1
    render_s = time.perf_counter() - started
    audio_s = sum(song.truth()["duration"] for song in songs)
    exit_code, analyze_s = (None, 0.0) if args.score_only else analyze(songs)
    results = [evaluate(song) for song in songs]
    rows, failed = summarize(results), failures(results)

    print(f"{len(songs)} songs, {audio_s / 60:.1f} min of audio; songs ready in {render_s:.1f} s", end="")
    if exit_code is not None:
        print(f"; beatwatch analyze took {analyze_s:.1f} s ({audio_s / max(analyze_s, 1e-9):.0f}x realtime), "
              f"exit {exit_code}", end="")
    print("\n")
    print_report(rows, failed, results)
    missed = [r["key"] for r in rows if r["status"] == "FAIL"]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({
        "measures": rows, "failures": failed,
        "songs": {r.name: {"audio": r.audio, "metrics": r.metrics, "problem": r.problem} for r in results},
        "run": {"songs": len(songs), "audio_s": round(audio_s, 3), "render_s": round(render_s, 3),
                "analyze_s": round(analyze_s, 3), "analyze_exit": exit_code, "missed": missed},
    }, indent=1))
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
