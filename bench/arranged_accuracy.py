"""The arranged songs' table in `python -m bench.accuracy`: beatwatch beside madmom, Essentia and the
Laplacian sections peer on songs that sound like records (bench/arranged.py).

Same run as the loop suite's (one `beatwatch analyze` over every file,
peers cached, everything scored against the score's truth), in its own
folder .bench/arranged so the two suites never share a sidecar or a log.
Its minimums are issue 11's (and issue 12's for the chord vocabulary:
majmin, sevenths and mirex): they show as targets until those issues
close, so --strict still judges the loop suite alone. madmom names no
sevenths, so its sevenths and mirex columns score its triads. A sidecar without
`timeline.sections` leaves the section rows to the peer ("-" for
beatwatch); the Laplacian peer names no functions, so it has no label
accuracy ("-").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

import mir_eval

from .accuracy import BENCH_DIR, Measure, SongResult, analyze, failures, print_misses, sidecar_path, summarize
from .arranged import ArrangedSong, arranged_suite, ensure_arranged
from .detuning import print_detuning, sweep_specs
from .detuning import row as detuning_row
from .form_scoring import score_arranged, section_scores
from .peers import PROVIDES, ensure_peers, peer_metrics
from .scoring import SidecarError, chord_accuracy
from .sections_peer import ensure_sections_peer
from .songs import RenderError

ARRANGED_DIR = BENCH_DIR / "arranged"
SONGS_DIR = ARRANGED_DIR / "songs"
SIDECARS_DIR = ARRANGED_DIR / "sidecars"
PEERS_DIR = ARRANGED_DIR / "peers"
REPORT = ARRANGED_DIR / "accuracy.json"
ANALYZE_LOG = ARRANGED_DIR / "analyze.log"
QUICK = 6  # the first songs: one of each form
ISSUE = 11
CHORDS_ISSUE = 12  # the chord vocabulary's targets
PEER_NAMES = ("madmom", "essentia", "laplacian")

MEASURES: tuple[Measure, ...] = (
    Measure("beat_f", "beat F-measure (70 ms)", 0.97, ISSUE),
    Measure("downbeat_f", "downbeat F-measure", 0.95, ISSUE),
    Measure("tempo_acc1", "tempo Acc1 (4 %)", 0.98, ISSUE, per_song=1.0),
    Measure("meter", "meter (3/4, 4/4)", 0.98, ISSUE, per_song=1.0),
    Measure("key_mirex", "key MIREX weighted score", 0.90, ISSUE, per_song=1.0),
    Measure("chord_majmin", "chords majmin, weighted", 0.95, CHORDS_ISSUE),
    Measure("chord_sevenths", "chords sevenths, weighted", 0.85, CHORDS_ISSUE),
    Measure("chord_mirex", "chords mirex, weighted", 0.95, CHORDS_ISSUE),
    Measure("bar_chord", "chord per bar", 0.93, ISSUE, per_song=0.9),
    Measure("section_hit_05", "section boundaries F (0.5 s)", 0.85, ISSUE),
    Measure("section_hit_3", "section boundaries F (3 s)", 0.92, ISSUE),
    Measure("section_pairwise", "sections pairwise frame F", 0.85, ISSUE),
    Measure("section_label", "section label, share of time", 0.70, ISSUE),
)


def evaluate(song: ArrangedSong, sidecar: dict | None, peers: dict | None, sections: dict | None) -> SongResult:
    """One song's scores; a missing or unreadable sidecar scores 0 on every measure but the sections'."""
    truth = song.truth()
    result = SongResult(song.name, song.audio.name, {})
    if sidecar is None:
        result.problem = f"no sidecar (analysis failed or not run; see {ANALYZE_LOG})"
    else:
        try:
            result.metrics = score_arranged(truth, sidecar)
        except (SidecarError, KeyError, TypeError, ValueError) as error:
            result.problem = f"unreadable sidecar: {error}"
    if result.problem:
        result.metrics = score_arranged(truth, {})
    if peers is not None:
        result.peers = peer_metrics(truth, peers)
        for key, rule in (("chord_sevenths", mir_eval.chord.sevenths), ("chord_mirex", mir_eval.chord.mirex)):
            result.peers["madmom"][key] = chord_accuracy(truth["timeline"]["chords"],
                                                         peers["madmom"]["timeline"]["chords"], rule)
        result.peers["madmom"] = {k: v for k, v in result.peers["madmom"].items()
                                  if k in (*PROVIDES["madmom"], "chord_sevenths", "chord_mirex")}
    if sections is not None:
        result.peers["laplacian"] = section_scores(truth, sections["sections"], labels=False)
    return result


def _read(song: ArrangedSong) -> dict | None:
    try:
        return json.loads(sidecar_path(song, SIDECARS_DIR).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_table(rows: list[dict], failed: list[dict], results: Sequence[SongResult]) -> None:
    print(f"{'arranged songs: measure':40} {'beatwatch':>9} {'madmom':>7} {'essentia':>8} {'laplacian':>9} "
          f"{'songs':>5}  {'minimum':14} result")
    for row in rows:
        minimum = "" if row["minimum"] is None else f"{row['minimum']:.2f}" + (
            f" (issue {row['issue']})" if row["issue"] else "")
        print(f"{row['label']:40} {_number(row['value']):>9} {_number(row['peers']['madmom']):>7} "
              f"{_number(row['peers']['essentia']):>8} {_number(row['peers']['laplacian']):>9} {row['songs']:>5}  "
              f"{minimum:14} {row['status']}")
    print_misses(failed, results)


def run_arranged(args: argparse.Namespace) -> int:
    """Render, analyse, score and print the arranged suite (--quick, --only, --score-only, --no-peers and
    --strict as for the loop suite)."""
    suite = arranged_suite(seed=args.arranged_seed)
    specs = suite[:QUICK] if args.quick else suite
    specs = [s for s in specs if not args.only or any(word in s.name for word in args.only)]
    if not specs:
        return 0
    started = time.perf_counter()
    try:
        rendered = ensure_arranged(SONGS_DIR, specs + sweep_specs(specs))
    except RenderError as error:
        print(f"cannot render the arranged songs: {error}", file=sys.stderr)
        return 1
    songs, swept = rendered[:len(specs)], rendered[len(specs):]
    render_s = time.perf_counter() - started
    audio_s = sum(song.truth()["duration"] for song in rendered)
    exit_code, analyze_s = (None, 0.0) if args.score_only else analyze(rendered, SIDECARS_DIR, ANALYZE_LOG)
    started = time.perf_counter()
    audio = [s.audio for s in songs]
    peers = {} if args.no_peers else ensure_peers(audio, PEERS_DIR)
    sections = {} if args.no_peers else ensure_sections_peer(audio, PEERS_DIR)
    peers_s = time.perf_counter() - started
    results = [evaluate(song, _read(song), peers.get(song.audio.name), sections.get(song.audio.name))
               for song in songs]
    rows, failed = summarize(results, MEASURES, PEER_NAMES), failures(results, MEASURES)

    held_out = f" (seed {args.arranged_seed}: held out, nothing was tuned on them)" if args.arranged_seed else ""
    print(f"\n{len(songs)} arranged songs{held_out} and {len(swept)} detuned copies, {audio_s / 60:.1f} min of audio; "
          f"songs ready in {render_s:.1f} s", end="")
    if exit_code is not None:
        print(f"; beatwatch analyze took {analyze_s:.1f} s ({audio_s / max(analyze_s, 1e-9):.0f}x realtime), "
              f"exit {exit_code}", end="")
    if not args.no_peers:
        print(f"; peers ready in {peers_s:.1f} s", end="")
    print("\n")
    print_table(rows, failed, results)
    detuning = {"suite": [detuning_row(s.spec, r, _read(s)) for s, r in zip(songs, results)],
                "sweep": [detuning_row(s.spec, evaluate(s, _read(s), None, None), _read(s)) for s in swept]}
    print_detuning(detuning["suite"], detuning["sweep"])
    missed = [r["key"] for r in rows if r["status"].startswith("FAIL") and not r["issue"]]
    report = REPORT.with_name(f"accuracy-seed{args.arranged_seed}.json") if args.arranged_seed else REPORT
    report.write_text(json.dumps({
        "measures": rows, "failures": failed,
        "songs": {r.name: {"audio": r.audio, "metrics": r.metrics, "peers": r.peers, "problem": r.problem}
                  for r in results},
        "detuning": detuning,
        "run": {"songs": len(songs), "audio_s": round(audio_s, 3), "render_s": round(render_s, 3),
                "analyze_s": round(analyze_s, 3), "peers_s": round(peers_s, 3), "analyze_exit": exit_code,
                "missed": missed},
    }, indent=1))
    return 1 if args.strict and missed else 0

