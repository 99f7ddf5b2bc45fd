"""`python -m bench.accuracy`: beatwatch's accuracy on rendered songs with exact ground truth.

Renders the suite (cached in .bench/songs), analyses every file in one
`beatwatch analyze` process exactly as a user would run it, scores each
sidecar against its truth, and scores madmom's and Essentia's own
processors on the same files the same way (cached in .bench/peers, see
bench/peers.py). Prints one table, a row per measure: beatwatch, madmom,
Essentia, the minimum and the verdict (PASS needs the minimum and no peer
ahead); then whether confidence means something (the accuracy of the least
confident quarter of beats, chords, keys and tempi against the most
confident); then the songs that miss a measure. Everything also goes to
.bench/accuracy.json so that runs can be compared. Then the same for the
arranged songs, as a table of their own (bench/arranged_accuracy.py). When the
real recordings of ../shared/real-dev are there, their own per-clip table
follows (bench/realdev.py). Tempo precision has its own rows: on steady songs
(the loop suite's and bench/precision.py's, at BPMs with two decimals), the
median BPM error and the median drift of a constant grid at the reported BPM
after 64 bars, for beatwatch and the peers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import hard, realdev
from .peers import PEERS, ensure_peers, peer_metrics
from .runner import run_analyze, sidecar_name
from .precision import precision_suite
from .scoring import SidecarError, confidence_items, quartile_accuracy, score, tempo_precision
from .arranged import ArrangedSong
from .songs import RenderError, Song, SongSpec, benchmark_suite, ensure_suite, quick_subset

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / ".bench"
SONGS_DIR = BENCH_DIR / "songs"
SIDECARS_DIR = BENCH_DIR / "sidecars"
PEERS_DIR = BENCH_DIR / "peers"
REPORT = BENCH_DIR / "accuracy.json"
ANALYZE_LOG = BENCH_DIR / "analyze.log"
# A mean of exact fractions (4.8 / 6) can land a hair under the minimum it equals.
ROUNDING = 1e-9
# A peer ahead by less than this is a tie, not a loss.
PEER_MARGIN = 0.005
CONFIDENCE_ANALYSES = ("beats", "chords", "key", "tempo")
# Tempo precision on steady songs, lower is better: (key, label, target for the median).
PRECISION: tuple[tuple[str, str, float], ...] = (
    ("bpm_error", "tempo precision: median |BPM error|", 0.05),
    ("grid_drift_ms", "grid drift after 64 bars, median ms", 20.0),
)


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
    Measure("tempo_acc1", "tempo Acc1 (4 %, steady songs)", 0.98, per_song=1.0),
    Measure("tempo_curve", "tempo curve within 4 % (ramp/step/drift)", 0.90),
    Measure("meter", "meter (3/4, 4/4)", 0.98, per_song=1.0),
    Measure("chord_majmin", "chords majmin, weighted", 0.93),
    Measure("bar_chord", "chord per bar", 0.93, per_song=0.9),
    Measure("key_mirex", "key MIREX weighted score", 0.80, per_song=1.0),
    Measure("key_change", "key change found (within 2 bars)", 0.90, per_song=1.0),
)


@dataclass
class SongResult:
    """One song's scores, kept per song so that the report can name the songs that miss."""

    name: str
    audio: str
    metrics: dict[str, float]
    problem: str | None = None  # why the sidecar is missing or unreadable
    peers: dict[str, dict[str, float]] = field(default_factory=dict)  # peer -> the measures it answers
    confidence: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)
    precision: dict[str, dict[str, float]] = field(default_factory=dict)  # beatwatch or a peer -> its precision


def select(quick: bool, only: Sequence[str], suite_size: int | None) -> list[SongSpec]:
    """The specs to run: the whole suite and the precision songs, the --quick handful, narrowed by --only
    substrings."""
    specs = benchmark_suite(suite_size) + precision_suite()
    if quick:
        specs = quick_subset(specs)
    if only:
        specs = [s for s in specs if any(word in s.name for word in only)]
    return specs


def sidecar_path(song: Song | ArrangedSong, sidecars: Path = SIDECARS_DIR) -> Path:
    return sidecars / sidecar_name(song.audio)


def analyze(songs: Sequence[Song | ArrangedSong], sidecars: Path = SIDECARS_DIR,
            log_path: Path = ANALYZE_LOG) -> tuple[int, float]:
    """Run one `beatwatch analyze` over every song, output in `log_path`; returns (exit code, seconds)."""
    return run_analyze([s.audio for s in songs], sidecars, log_path)


def evaluate(song: Song, sidecar: dict | None, peers: dict | None = None) -> SongResult:
    """Score one song's sidecar (None when missing); a missing or unreadable sidecar scores 0 on every measure."""
    truth = song.truth()
    result = SongResult(song.name, song.audio.name, {})
    if sidecar is None:
        result.problem = (f"no sidecar {sidecar_path(song).name} (analysis failed or not run; "
                          f"see {ANALYZE_LOG.relative_to(ROOT)})")
    else:
        try:
            result.metrics = score(truth, sidecar)
            result.confidence = confidence_items(truth, sidecar)
            result.precision = _precisions(truth, {"beatwatch": sidecar, **(peers or {})})
        except (SidecarError, KeyError, TypeError, ValueError) as error:
            result.problem = f"unreadable sidecar: {error}"
    if result.problem:
        result.metrics = score(truth, {})
    if peers is not None:
        result.peers = peer_metrics(truth, peers)
    return result


def _precisions(truth: dict, answers: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Tempo precision of beatwatch's sidecar and of each peer's answer, where the song is steady."""
    found = {name: tempo_precision(truth, answers[name]) for name in ("beatwatch", *PEERS) if name in answers}
    return {name: value for name, value in found.items() if value is not None}


def precision_report(results: Sequence[SongResult]) -> list[dict]:
    """Per precision measure: the median over the steady songs for beatwatch and each peer, beatwatch's worst
    song, and whether beatwatch's median meets the target."""
    rows = []
    for key, label, target in PRECISION:
        values = {name: [r.precision[name][key] for r in results if name in r.precision]
                  for name in ("beatwatch", *PEERS)}
        medians = {name: float(np.median(v)) if v else None for name, v in values.items()}
        value = medians.pop("beatwatch")
        status = "-" if value is None else "PASS" if value < target else "FAIL"
        rows.append({"key": key, "label": label, "target": target, "value": value, "peers": medians,
                     "worst": max(values["beatwatch"], default=None), "songs": len(values["beatwatch"]),
                     "status": status})
    return rows


def read_sidecar(song: Song) -> dict | None:
    try:
        return json.loads(sidecar_path(song).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def verdict(measure: Measure, value: float | None, peers: dict[str, float | None]) -> str:
    """PASS when the minimum is met and no peer is ahead (by more than PEER_MARGIN); "-" when nothing to judge."""
    if value is None:
        return "-"
    ahead = [f"{name} ahead" for name, peer in peers.items() if peer is not None and peer > value + PEER_MARGIN]
    if measure.minimum is not None and value < measure.minimum - ROUNDING:
        return f"below (issue {measure.issue})" if measure.issue else "FAIL"
    if ahead:
        return "FAIL (" + ", ".join(ahead) + ")"
    return "PASS" if measure.minimum is not None or any(p is not None for p in peers.values()) else "-"


def summarize(results: Sequence[SongResult], measures: Sequence[Measure] = MEASURES,
              peer_names: Sequence[str] = PEERS) -> list[dict]:
    """One row per measure: beatwatch's mean over the songs it applies to, each peer's mean over the same
    songs (where the peer answers the measure), and the verdict."""
    rows = []
    for measure in measures:
        scored = [r for r in results if measure.key in r.metrics]
        value = _mean([r.metrics[measure.key] for r in scored])
        pool = scored or list(results)  # a measure beatwatch does not answer yet still shows the peers'
        peers = {}
        for peer in peer_names:
            answered = [r.peers[peer][measure.key] for r in pool if measure.key in r.peers.get(peer, {})]
            peers[peer] = _mean(answered) if answered and len(answered) == len(pool) else None
        rows.append({**asdict(measure), "value": value, "songs": len(pool), "peers": peers,
                     "status": verdict(measure, value, peers)})
    return rows


def confidence_report(results: Sequence[SongResult]) -> list[dict]:
    """Per analysis, the accuracy of the least and the most confident quarter, pooled over all songs."""
    rows = []
    for analysis in CONFIDENCE_ANALYSES:
        items = [item for r in results for item in r.confidence.get(analysis, [])]
        split = quartile_accuracy(items)
        low, high = split if split else (None, None)
        status = "-" if split is None else "ok" if high >= low - ROUNDING else "INVERTED"
        rows.append({"analysis": analysis, "items": len(items), "low": low, "high": high, "status": status})
    return rows


def failures(results: Sequence[SongResult], measures: Sequence[Measure] = MEASURES) -> list[dict]:
    """(song, measure, value) for every song value under its measure's per-song floor.

    Songs without a readable sidecar are left out: their one problem line says more than a row of zeros.
    """
    rows = []
    for result in (r for r in results if not r.problem):
        for measure in measures:
            value = result.metrics.get(measure.key)
            if value is not None and measure.song_floor is not None and value < measure.song_floor - ROUNDING:
                rows.append({"song": result.name, "measure": measure.key, "value": value})
    return rows


def _minimum_text(row: dict) -> str:
    if row["minimum"] is None:
        return ""
    return f"{row['minimum']:.2f}" + (f" (issue {row['issue']})" if row["issue"] else "")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_report(rows: list[dict], confidence: list[dict], failed: list[dict], results: Sequence[SongResult],
                 precision: Sequence[dict] = ()) -> None:
    print(f"{'measure':40} {'beatwatch':>9} {'madmom':>7} {'essentia':>8} {'songs':>5}  {'minimum':8} result")
    for row in rows:
        print(f"{row['label']:40} {_number(row['value']):>9} {_number(row['peers'].get('madmom')):>7} "
              f"{_number(row['peers'].get('essentia')):>8} {row['songs']:>5}  {_minimum_text(row):8} {row['status']}")
    if precision:
        print(f"\n{'lower is better (steady songs)':40} {'beatwatch':>9} {'madmom':>7} {'essentia':>8} {'songs':>5}  "
              f"{'target':8} result (worst song)")
    for row in precision:
        print(f"{row['label']:40} {_number(row['value']):>9} {_number(row['peers'].get('madmom')):>7} "
              f"{_number(row['peers'].get('essentia')):>8} {row['songs']:>5}  {'< ' + format(row['target'], 'g'):8} "
              f"{row['status']} ({_number(row['worst'])})")
    print(f"\n{'confidence: accuracy of the quarter that is':40} {'least':>9} {'most':>7} {'items':>8}  sure")
    for row in confidence:
        print(f"{row['analysis']:40} {_number(row['low']):>9} {_number(row['high']):>7} {row['items']:>8}  "
              f"{row['status']}")
    print_misses(failed, results)


def print_misses(failed: list[dict], results: Sequence[SongResult]) -> None:
    """The songs that could not be scored, then each song's measure below its minimum."""
    problems = [r for r in results if r.problem]
    if not (failed or problems):
        return
    width = max(len(r.name) for r in results)
    print(f"\n{'song':{width}} {'measure':16} value")
    for result in problems:
        print(f"{result.name:{width}} {'-':16} {result.problem}")
    for row in failed:
        print(f"{row['song']:{width}} {row['measure']:16} {row['value']:.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fixed handful of songs (one of each kind)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="only songs whose name contains NAME (repeatable)")
    parser.add_argument("--songs", type=int, metavar="N", help="size of the random spread (default 48; the fixed "
                        "edge cases always follow it)")
    parser.add_argument("--score-only", action="store_true",
                        help="score the sidecars already in .bench/sidecars instead of running beatwatch")
    parser.add_argument("--no-peers", action="store_true", help="leave out the madmom and Essentia columns")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a minimum (not an issue target) is missed")
    parser.add_argument("--suite", choices=("all", "loops", "arranged"), default="all",
                        help="the loop songs' table, the arranged songs' table (bench/arranged.py), or both")
    parser.add_argument("--arranged-seed", type=int, default=0, metavar="N",
                        help="draw the arranged songs with this seed: 0 is the suite the analyses were tuned on, "
                             "any other a held-out set of 20 new songs")
    parser.add_argument("--real-dev-only", action="store_true",
                        help="only the table of real recordings (see bench/realdev.py), not the rendered songs")
    parser.add_argument("--no-real-dev", action="store_true", help="leave out the table of real recordings")
    parser.add_argument("--hard", action="store_true",
                        help="then the hard-material table (bench/hard.py: what real recordings do, issue 13)")
    args = parser.parse_args(argv)
    if args.real_dev_only:
        flags = [flag for flag, on in (("--no-peers", args.no_peers), ("--score-only", args.score_only)) if on]
        return realdev.main(flags)
    code = run_loops(args) if args.suite != "arranged" else 0
    if args.suite != "loops":
        from .arranged_accuracy import run_arranged  # it builds on this module, so only once this one is loaded
        code = max(code, run_arranged(args))
    if args.hard:
        print()
        code = max(code, 0 if hard.run(peers=not args.no_peers) or not args.strict else 1)
    if not args.no_real_dev:
        realdev.run(realdev.real_dev_dir(), peers=not args.no_peers, score_only=args.score_only)
    return code


def run_loops(args: argparse.Namespace) -> int:
    """The loop suite's table (bench/songs.py)."""
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
    started = time.perf_counter()
    peers = {} if args.no_peers else ensure_peers([s.audio for s in songs], PEERS_DIR)
    peers_s = time.perf_counter() - started
    results = [evaluate(song, read_sidecar(song), None if args.no_peers else peers.get(song.audio.name))
               for song in songs]
    rows, confidence, failed = summarize(results), confidence_report(results), failures(results)
    precision = precision_report(results)

    print(f"{len(songs)} songs, {audio_s / 60:.1f} min of audio; songs ready in {render_s:.1f} s", end="")
    if exit_code is not None:
        print(f"; beatwatch analyze took {analyze_s:.1f} s ({audio_s / max(analyze_s, 1e-9):.0f}x realtime), "
              f"exit {exit_code}", end="")
    if not args.no_peers:
        print(f"; peers ready in {peers_s:.1f} s", end="")
    print("\n")
    print_report(rows, confidence, failed, results, precision)
    missed = [r["key"] for r in [*rows, *precision] if r["status"].startswith("FAIL")]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({
        "measures": rows, "confidence": confidence, "failures": failed, "precision": precision,
        "songs": {r.name: {"audio": r.audio, "metrics": r.metrics, "peers": r.peers, "problem": r.problem,
                           "precision": r.precision}
                  for r in results},
        "run": {"songs": len(songs), "audio_s": round(audio_s, 3), "render_s": round(render_s, 3),
                "analyze_s": round(analyze_s, 3), "peers_s": round(peers_s, 3), "analyze_exit": exit_code,
                "missed": missed},
    }, indent=1))
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
