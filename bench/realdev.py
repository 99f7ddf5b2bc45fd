"""`python -m bench.realdev`: beatwatch against madmom's and Essentia's processors on real, human-annotated recordings.

Rendered songs have exact truth, but real recordings fail in ways they do not (expressive timing, no
drums, off-beat accompaniment, tempo octave). The development set lives outside the repository (its
licences ask for attribution and some forbid redistribution): $BEATWATCH_REAL_DEV, else
../shared/real-dev beside the repository; without it there is no table. Each clip is NAME.EXT with
NAME.truth.json beside it (`beats` with `time` and `position`, `downbeats`, `meter`, `bpm`, each
optional). A clip without `bpm` is scored on the tempo its annotated beats keep (60 / their median
interval), so a tempo octave error shows on every clip that has beats. Four clips are too few to
average, so the table is per clip and the verdict is per clip: none worse than madmom's processors
on beats (F and AMLt), downbeats or tempo. Everything also goes to .bench/realdev/report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .peers import PEERS, PROVIDES, ensure_peers
from .runner import ROOT, run_analyze, sidecar_name
from .scoring import beat_amlt, beat_f_measure, tempo_acc1

ENV = "BEATWATCH_REAL_DEV"
DEFAULT_DIR = ROOT.parent / "shared" / "real-dev"
# Sidecars, the analyze log and the report of a run; --out gives a run its own (two checkouts measured at once).
WORK_DIR = ROOT / ".bench" / "realdev"
# The peers' answers do not depend on beatwatch, so every run shares them.
PEERS_DIR = WORK_DIR / "peers"
# As in bench/accuracy.py: a peer ahead by less than this is a tie.
PEER_MARGIN = 0.005
# The verdict is a target of this issue until it holds: shown, never an exit status.
ISSUE = 13


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    judged: bool  # part of "no clip worse than madmom"


MEASURES: tuple[Measure, ...] = (
    Measure("beat_f", "beat F (70 ms)", True),
    Measure("beat_amlt", "beat AMLt", True),
    Measure("downbeat_f", "downbeat F", True),
    Measure("meter", "meter", False),
    Measure("tempo_acc1", "tempo Acc1 (4 %)", True),
)


@dataclass(frozen=True)
class Clip:
    name: str
    audio: Path
    beats: np.ndarray
    downbeats: np.ndarray
    meter: int | None
    bpm: float | None
    bpm_given: bool  # False: read off the annotated beats


def real_dev_dir() -> Path:
    return Path(os.environ[ENV]) if os.environ.get(ENV) else DEFAULT_DIR


def load_clips(folder: Path) -> list[Clip]:
    """Every NAME.truth.json in `folder` whose audio file (its `file` field) is there."""
    clips = []
    for path in sorted(folder.glob("*.truth.json")):
        truth = json.loads(path.read_text())
        audio = folder / truth["file"]
        if not audio.is_file():
            continue
        beats = truth.get("beats") or []
        times = np.array([float(b["time"]) for b in beats])
        if "downbeats" in truth:
            downbeats = np.array([float(t) for t in truth["downbeats"]])
        else:
            downbeats = np.array([float(b["time"]) for b in beats if b.get("position") == 1])
        bpm = truth.get("bpm")
        if bpm is None and times.size >= 2:
            bpm_given, bpm = False, 60.0 / float(np.median(np.diff(np.sort(times))))
        else:
            bpm_given = bpm is not None
        clips.append(Clip(path.name.removesuffix(".truth.json"), audio, times, downbeats,
                          truth.get("meter"), None if bpm is None else float(bpm), bpm_given))
    return clips


def _beats(doc: dict) -> list[dict]:
    return (doc.get("timeline") or {}).get("beats") or []


def score_clip(clip: Clip, doc: dict, bars: dict | None = None) -> dict[str, float]:
    """The measures this clip's truth allows; `bars` is where downbeats and meter come from, when not `doc`."""
    bars = doc if bars is None else bars
    times = np.array([float(b["time"]) for b in _beats(doc)])
    metrics: dict[str, float] = {}
    if clip.beats.size:
        metrics["beat_f"] = beat_f_measure(clip.beats, times)
        metrics["beat_amlt"] = beat_amlt(clip.beats, times)
    if clip.downbeats.size:
        metrics["downbeat_f"] = beat_f_measure(
            clip.downbeats, np.array([float(b["time"]) for b in _beats(bars) if b.get("position") == 1]))
    if clip.meter is not None:
        metrics["meter"] = float((bars.get("summary") or {}).get("meter") == clip.meter)
    if clip.bpm is not None:
        metrics["tempo_acc1"] = tempo_acc1(clip.bpm, (doc.get("summary") or {}).get("bpm"))
    return metrics


def _provides(peer: str) -> set[str]:
    answered = set(PROVIDES[peer])
    return answered | {"beat_amlt"} if "beat_f" in answered else answered


def evaluate(clip: Clip, sidecar: dict | None, answers: dict | None, log: Path | None = None) -> dict:
    """One clip's row: beatwatch's and each peer's scores and BPM, and the judged measures madmom wins."""
    systems: dict[str, dict] = {}
    problem = None
    if sidecar is None:
        problem = f"no sidecar (analysis failed or not run; see {log or 'the analyze log'})"
        sidecar = {}
    systems["beatwatch"] = {"metrics": score_clip(clip, sidecar),
                            "bpm": (sidecar.get("summary") or {}).get("bpm"),
                            "meter": (sidecar.get("summary") or {}).get("meter")}
    for peer in PEERS if answers else ():
        bars = answers.get(f"{peer}_bars")
        metrics = score_clip(clip, answers[peer], bars)
        systems[peer] = {"metrics": {k: v for k, v in metrics.items() if k in _provides(peer)},
                         "bpm": (answers[peer].get("summary") or {}).get("bpm"),
                         "meter": ((bars or {}).get("summary") or {}).get("meter")}
    ours, madmom = systems["beatwatch"]["metrics"], systems.get("madmom", {}).get("metrics", {})
    worse = [m.key for m in MEASURES
             if m.judged and m.key in ours and m.key in madmom and ours[m.key] < madmom[m.key] - PEER_MARGIN]
    return {"clip": clip.name, "audio": clip.audio.name, "truth_bpm": clip.bpm, "bpm_given": clip.bpm_given,
            "truth_meter": clip.meter, "systems": systems, "worse_than_madmom": worse, "problem": problem}


def verdict(rows: Sequence[dict], peers: bool) -> str:
    if not peers:
        return "no verdict (run without peers)"
    losing = [r for r in rows if r["worse_than_madmom"] or r["problem"]]
    if not losing:
        return "PASS: no clip worse than madmom's processors on beats, downbeats or tempo"
    names = "; ".join(f"{r['clip']}: " + (r["problem"] or ", ".join(r["worse_than_madmom"])) for r in losing)
    return f"below (issue {ISSUE}): {len(losing)} of {len(rows)} clips worse than madmom's processors ({names})"


def _cell(value: float | None, width: int) -> str:
    return f"{'-' if value is None else f'{value:.3f}':>{width}}"


def _plain(value: float | int | None, width: int) -> str:
    return f"{'-' if value is None else f'{value:.1f}' if isinstance(value, float) else str(value):>{width}}"


def print_table(rows: Sequence[dict], peers: bool) -> None:
    systems = ("beatwatch", *PEERS) if peers else ("beatwatch",)
    width = max([len("clip"), *(len(r["clip"]) for r in rows)])
    print(f"{'clip':{width}}  {'measure':22}" + "".join(f" {s:>9}" for s in systems) + "  worse than madmom")
    for row in rows:
        first = True
        for measure in MEASURES:
            if measure.key not in row["systems"]["beatwatch"]["metrics"]:
                continue
            label = measure.label
            if measure.key == "meter":
                label += f" ({row['truth_meter']}/4)"
            values = "".join(_cell(row["systems"].get(s, {}).get("metrics", {}).get(measure.key), 10)
                             for s in systems)
            mark = "WORSE" if measure.key in row["worse_than_madmom"] else ""
            print(f"{row['clip'] if first else '':{width}}  {label:22}{values}  {mark}")
            first = False
        if row["truth_bpm"] is not None:
            label = f"BPM (truth {row['truth_bpm']:.1f}{'' if row['bpm_given'] else '*'})"
            values = "".join(_plain(row["systems"].get(s, {}).get("bpm"), 10) for s in systems)
            print(f"{row['clip'] if first else '':{width}}  {label:22}{values}")
        if row["problem"]:
            print(f"{'':{width}}  {row['problem']}")
    if any(not r["bpm_given"] and r["truth_bpm"] is not None for r in rows):
        print("* the clip gives no BPM: the tempo its annotated beats keep (60 / median interval)")


def run(folder: Path, *, peers: bool = True, score_only: bool = False, work: Path = WORK_DIR) -> dict | None:
    """Analyse, score and print the real-dev table; None (and nothing printed) when the folder has no clips."""
    clips = load_clips(folder) if folder.is_dir() else []
    if not clips:
        return None
    audio = [c.audio for c in clips]
    sidecars, log = work / "sidecars", work / "analyze.log"
    exit_code, analyze_s = (None, 0.0) if score_only else run_analyze(audio, sidecars, log)
    started = time.perf_counter()
    answers = ensure_peers(audio, PEERS_DIR) if peers else {}
    peers_s = time.perf_counter() - started
    rows = []
    for clip in clips:
        try:
            sidecar = json.loads((sidecars / sidecar_name(clip.audio)).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            sidecar = None
        rows.append(evaluate(clip, sidecar, answers.get(clip.audio.name), log))
    print(f"\nreal recordings: {len(clips)} clips in {folder}", end="")
    if exit_code is not None:
        print(f"; beatwatch analyze took {analyze_s:.1f} s, exit {exit_code}", end="")
    if peers:
        print(f"; peers ready in {peers_s:.1f} s", end="")
    print("\n")
    print_table(rows, peers)
    result = verdict(rows, peers)
    print(f"\nreal-dev verdict: {result}")
    report = {"folder": str(folder), "clips": rows, "verdict": result,
              "run": {"analyze_s": round(analyze_s, 3), "analyze_exit": exit_code, "peers_s": round(peers_s, 3)}}
    work.mkdir(parents=True, exist_ok=True)
    (work / "report.json").write_text(json.dumps(report, indent=1))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.realdev", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help=f"the clips (default ${ENV}, else {DEFAULT_DIR})")
    parser.add_argument("--out", type=Path, default=WORK_DIR,
                        help="sidecars, analyze.log and report.json of this run (default .bench/realdev)")
    parser.add_argument("--score-only", action="store_true",
                        help="score the sidecars already in OUT/sidecars instead of running beatwatch")
    parser.add_argument("--no-peers", action="store_true", help="leave out the madmom and Essentia columns")
    args = parser.parse_args(argv)
    folder = args.dir or real_dev_dir()
    if run(folder, peers=not args.no_peers, score_only=args.score_only, work=args.out.absolute()) is None:
        print(f"no annotated clips in {folder}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
