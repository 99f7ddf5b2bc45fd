"""`python -m bench.hard`: rendered material for the ways real recordings defeat beat and bar tracking.

The main suite (bench/songs.py) is steady grid music on which every tracker does well. Real
recordings failed in nine ways it does not reproduce (issue 13), each rendered here as its own kind:

- ballad: slow acoustic guitar songs without drums, eighth- or sixteenth-note picking (double tempo bait);
- rubato: solo piano with expressive timing, phrases that push and hold back (tempo octave and phase);
- offbeat: chords on the "and" of every beat over a sparse bass (the off-beat phase);
- waltz: classical 3/4 textures, oom-pah-pah and arpeggiated (3/4 heard as 4/4);
- irregular: 4/4 songs with a 2-beat and a 6-beat bar (bars after an irregular bar must recover);
- fermata: picked guitar or piano whose every fourth bar ends on a chord held for seconds while a few notes
  roll out of time, where a listener taps nothing (and a tracker must not fill the hold with beats);
- backbeat: eight bars of a band whose kit accents the wrong beats (snare on 1 and 3, kick on 2 and 4) under a
  chord a bar: a short excerpt where the network's bar and the harmony's disagree;
- pickup: a band whose song opens with two beats of its last chord and the kit (a pickup) before bar 1,
  the kit hitting beats 1 and 3 alike, so the first chord heard is not on a downbeat;
- codec: a band stored as a raw AAC stream or a VBR MP3 without a Xing/LAME header, which state neither their
  length (ffprobe guesses one from the first frames' bitrate, far off after a quiet start) nor their encoder's
  delay (every beat 23-25 ms late unless the decoder drops it).

Notes are placed in seconds from the beat times the truth is made of, written to MIDI on a 1 ms
grid and rendered by FluidSynth like the main suite. Every file is analysed by one `beatwatch
analyze`, madmom's own processors run on the same files (bench/peers.py), and one table compares
them per measure with the issue's minimums. Songs are cached under .bench/hard by a hash of this file.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import mido
import numpy as np

from .peers import ensure_peers
from .scoring import beat_f_measure, tempo_acc1
from .songs import SAMPLE_RATE, _finish, encode, synthesize

ROOT = Path(__file__).resolve().parent.parent
HARD_DIR = ROOT / ".bench" / "hard"
SONGS_DIR = HARD_DIR / "songs"
SIDECARS_DIR = HARD_DIR / "sidecars"
PEERS_DIR = ROOT / ".bench" / "peers"
REPORT = HARD_DIR / "hard.json"
MS = 1000  # MIDI ticks per second: 500 ticks per beat at 120 BPM
TAIL_S = 1.0
LEAD_IN_S = 0.6
PROGRESSIONS = ((0, 9, 5, 7), (0, 5, 7, 0), (9, 5, 0, 7), (2, 7, 0, 9))  # roots of I-vi-IV-V and friends
MINOR_ROOTS = {9, 2, 4}  # vi, ii and iii are minor
MEASURES = (("beat_f", "beat F-measure (70 ms)", 0.95), ("downbeat_f", "downbeat F-measure", 0.90),
            ("tempo_acc1", "tempo Acc1 (4 %)", 0.95), ("meter", "meter (3/4, 4/4)", 0.95))
PEER_MARGIN = 0.005


@dataclass(frozen=True)
class HardSpec:
    """One song: its kind, tempo, meter, key (semitones above C), instrument program, length and seed."""

    kind: str
    bpm: float
    meter: int
    tonic: int
    program: int
    bars: int
    seed: int
    fast_picking: bool = False
    codec: str = "flac"

    @property
    def name(self) -> str:
        return f"{self.kind}-{round(self.bpm)}bpm-{self.meter}4-p{self.program}-s{self.seed}"


SPECS: tuple[HardSpec, ...] = (
    HardSpec("ballad", 62.0, 4, 0, 24, 10, 1),
    HardSpec("ballad", 68.0, 4, 7, 25, 11, 2, fast_picking=True),
    HardSpec("ballad", 74.0, 3, 2, 24, 14, 3),
    HardSpec("ballad", 80.0, 4, 9, 25, 12, 4, fast_picking=True),
    HardSpec("rubato", 66.0, 4, 5, 0, 10, 5),
    HardSpec("rubato", 78.0, 3, 0, 0, 14, 6),
    HardSpec("rubato", 92.0, 4, 10, 0, 13, 7),
    HardSpec("offbeat", 96.0, 4, 7, 0, 14, 8),
    HardSpec("offbeat", 112.0, 4, 2, 4, 16, 9),
    HardSpec("offbeat", 128.0, 4, 0, 16, 18, 10),
    HardSpec("offbeat", 90.0, 4, 0, 24, 14, 17),
    HardSpec("offbeat", 120.0, 4, 7, 0, 16, 18),
    HardSpec("waltz", 96.0, 3, 0, 48, 16, 11),
    HardSpec("waltz", 126.0, 3, 7, 0, 20, 12),
    HardSpec("waltz", 150.0, 3, 5, 48, 24, 13),
    HardSpec("waltz", 176.0, 3, 9, 0, 28, 14),
    HardSpec("irregular", 104.0, 4, 4, 0, 16, 15),
    HardSpec("irregular", 124.0, 4, 11, 25, 18, 16),
    HardSpec("fermata", 76.0, 4, 2, 24, 12, 19),
    HardSpec("fermata", 88.0, 3, 9, 0, 16, 20),
    HardSpec("backbeat", 100.0, 4, 4, 4, 8, 21),
    HardSpec("backbeat", 116.0, 4, 9, 4, 8, 22),
    HardSpec("pickup", 96.0, 4, 7, 0, 8, 25),
    HardSpec("pickup", 118.0, 4, 2, 4, 14, 26),
    HardSpec("codec", 108.0, 4, 5, 0, 12, 23, codec="aac"),
    HardSpec("codec", 132.0, 4, 10, 4, 14, 24, codec="mp3"),
)
# The codec kind's streams, written without a header (every other song is flac, as the main suite writes it).
HEADERLESS = {"aac": ("-c:a", "aac", "-b:a", "128k"), "mp3": ("-c:a", "libmp3lame", "-q:a", "2", "-write_xing", "0")}
# The pickup kind's song opens with this many beats before its first bar.
PICKUP_BEATS = 2
# The fermata kind holds its chord this long (seconds), and its rolled notes come this far apart.
HOLD_S, ROLL_S = (4.5, 6.0), (1.1, 1.5)


@dataclass
class Note:
    start: float
    length: float
    pitch: int
    velocity: int
    channel: int = 0


@functools.cache
def _source_digest() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def audio_path(spec: HardSpec) -> Path:
    digest = hashlib.sha256(json.dumps({"src": _source_digest(), **asdict(spec)}, sort_keys=True).encode())
    return SONGS_DIR / f"{spec.name}-{digest.hexdigest()[:10]}.{spec.codec}"


def bar_lengths(spec: HardSpec) -> list[int]:
    """Beats per bar: the meter everywhere, except a 2-beat bar and a 6-beat bar in the irregular kind."""
    lengths = [spec.meter] * spec.bars
    if spec.kind == "irregular":
        lengths[spec.bars // 3] = 2
        lengths[2 * spec.bars // 3] = 6
    return lengths


def beat_grid(spec: HardSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Beat times and positions in the bar; rubato bends each phrase: pushed in the middle, held back at its end."""
    pickup = np.arange(spec.meter - PICKUP_BEATS + 1, spec.meter + 1) if spec.kind == "pickup" else []
    positions = np.concatenate([pickup, *(np.arange(1, n + 1) for n in bar_lengths(spec))]).astype(int)
    period = np.full(len(positions), 60.0 / spec.bpm)
    if spec.kind == "rubato":
        phrase = 4 * spec.meter
        phase = (np.arange(len(positions)) % phrase) / phrase
        bend = 1 - 0.06 * np.sin(2 * np.pi * phase + rng.uniform(0, 0.5)) + 0.12 * np.clip(phase - 0.8, 0, None) / 0.2
        period = period * bend * rng.normal(1.0, 0.02, len(positions))
    if spec.kind == "fermata":
        bar = np.cumsum(positions == 1) - 1
        last_of_phrase = (bar % 4 == 3) & (np.append(positions[1:], 1) == 1)
        last_of_phrase[-1] = False
        period[last_of_phrase] = rng.uniform(*HOLD_S, int(last_of_phrase.sum()))
    times = LEAD_IN_S + np.concatenate([[0.0], np.cumsum(period[:-1])])
    return times, positions


def _triad(root: int, tonic: int) -> list[int]:
    third = 3 if root in MINOR_ROOTS else 4
    base = 48 + (tonic + root) % 12
    return [base, base + third, base + 7]


def compose(spec: HardSpec) -> tuple[list[Note], dict[int, int], np.ndarray, np.ndarray]:
    """Notes, programs per channel, beat times and positions of one song."""
    rng = np.random.default_rng(spec.seed)
    times, positions = beat_grid(spec, rng)
    ends = np.append(times[1:], times[-1] + (times[-1] - times[-2]))
    bar_starts = np.flatnonzero(positions == 1)
    progression = PROGRESSIONS[spec.seed % len(PROGRESSIONS)]
    notes: list[Note] = []
    solo = spec.kind in ("ballad", "rubato", "fermata")
    programs = {0: spec.program, 1: spec.program if solo else 32, 2: spec.program if spec.kind == "rubato" else 73}
    # Bar 0 is a pickup where the song opens before its first downbeat: the progression's last chord leads in.
    starts = np.concatenate([[0], bar_starts]) if bar_starts[0] > 0 else bar_starts
    for bar, first in enumerate(starts, start=-1 if bar_starts[0] > 0 else 0):
        last = bar_starts[bar + 1] if bar + 1 < len(bar_starts) else len(times)
        chord = _triad(progression[bar % 4], spec.tonic)
        bass = chord[0] - 12
        for beat in range(first, last):
            t, length, pos = times[beat], ends[beat] - times[beat], positions[beat]
            notes += _beat_notes(spec, chord, bass, t, length, pos, rng)
        if spec.kind in ("rubato", "ballad", "waltz", "fermata"):
            top = chord[2] + 12
            notes.append(Note(times[first], ends[last - 1] - times[first], top + int(rng.choice((0, 2, 5))), 70, 2))
    if spec.kind in ("irregular", "backbeat", "pickup"):
        for beat, (t, pos) in enumerate(zip(times, positions)):
            notes.append(_drum_hit(spec, t, pos))
            notes.append(Note(t, 0.05, 42, 60, 9))
            notes.append(Note(t + (ends[beat] - t) / 2, 0.05, 42, 45, 9))
    return notes, programs, times, positions


def _drum_hit(spec: HardSpec, t: float, pos: int) -> Note:
    """The kick or snare of one beat: irregular's and pickup's kit hits beats 1 and 3 alike (kick), backbeat's has the
    snare on 1 and 3 and the kick on 2 and 4."""
    if spec.kind == "backbeat":
        return Note(t, 0.2, 38 if pos in (1, 3) else 36, 110 if pos == 3 else 70 if pos == 1 else 100, 9)
    return Note(t, 0.1, 36 if pos in (1,) or (pos == 3 and spec.meter == 4) else 38, 105 if pos == 1 else 85, 9)


def _beat_notes(spec: HardSpec, chord: list[int], bass: int, t: float, length: float, pos: int,
                rng: np.random.Generator) -> list[Note]:
    """One beat of accompaniment in the kind's texture."""
    accent = 12 if pos == 1 else 0
    if spec.kind == "fermata" and length > 2 * 60.0 / spec.bpm:  # the held chord, and notes rolled over it
        out = [Note(t, length, p + 12, 70, 0) for p in chord] + [Note(t, length, bass, 80, 1)]
        at = t + rng.uniform(*ROLL_S)
        while at < t + length - 0.8:
            out.append(Note(at, 1.0, chord[int(rng.integers(3))] + 24, 56, 0))
            at += rng.uniform(*ROLL_S)
        return out
    if spec.kind in ("ballad", "fermata"):
        steps = 4 if spec.fast_picking else 2
        pattern = [chord[0] + 12, chord[1] + 12, chord[2], chord[1] + 12]
        out = [Note(t + i * length / steps, length * 1.5, pattern[(pos * steps + i) % 4], 58 + (8 if i == 0 else 0))
               for i in range(steps)]
        if pos == 1 or (spec.meter == 4 and pos == 3):
            out.append(Note(t, length * 2, bass, 82 + accent, 1))
        return out
    if spec.kind == "rubato":
        out = [Note(t, length * 0.95, bass if pos == 1 else bass + 7, 64 + accent, 1)]
        out += [Note(t + length / 2, length * 0.5, p + 12, 52, 0) for p in chord[1:]]
        out.append(Note(t, length * 0.9, chord[int(rng.integers(3))] + 24, 72 + accent // 2, 2))
        return out
    if spec.kind == "backbeat":  # the chord held through the bar, the bass on 1 and 3
        out = [Note(t, 4 * length * 0.95, p, 70, 0) for p in chord] if pos == 1 else []
        if pos in (1, 3):
            out.append(Note(t, 2 * length * 0.9, bass + (7 if pos == 3 else 0), 80, 1))
        return out
    if spec.kind == "offbeat":
        out = [Note(t + length / 2, length * 0.35, p + 12, 84, 0) for p in chord]
        if pos in (1, 3):
            out.append(Note(t, length * 0.9, bass, 70 + accent // 2, 1))
        return out
    if spec.kind == "waltz":
        if spec.program == 0 and spec.seed % 2 == 0:  # arpeggiated left hand, six eighths to the bar
            low = bass if pos == 1 else chord[pos % 3]
            return [Note(t, length * 0.5, low, 60 + accent, 0),
                    Note(t + length / 2, length * 0.5, chord[(pos + 1) % 3] + 12, 52, 0)]
        if pos == 1:
            return [Note(t, length * 0.95, bass, 80, 1)]
        return [Note(t, length * 0.6, p + 12, 58, 0) for p in chord]
    out = [Note(t, length * 0.45, p + 12, 66 + accent // 2, 0) for p in chord]
    out.append(Note(t, length * 0.9, bass, 80 + accent // 2, 1))
    return out


def write_midi(notes: Sequence[Note], programs: dict[int, int], path: Path) -> None:
    events: list[tuple[int, int, mido.Message]] = [
        (0, 0, mido.Message("program_change", channel=ch, program=p)) for ch, p in programs.items()]
    for n in notes:
        on, off = int(round(n.start * MS)), int(round((n.start + n.length) * MS))
        pitch = int(np.clip(n.pitch, 21, 108))
        events.append((on, 2, mido.Message("note_on", channel=n.channel, note=pitch, velocity=int(n.velocity))))
        events.append((off, 1, mido.Message("note_off", channel=n.channel, note=pitch)))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=500_000))
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    midi = mido.MidiFile(type=0, ticks_per_beat=500)
    midi.tracks.append(track)
    midi.save(str(path))


def render(spec: HardSpec) -> Path:
    """Render one song (cached): audio file and truth JSON beside it."""
    out = audio_path(spec)
    truth_path = out.with_suffix(".truth.json")
    if out.exists() and truth_path.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    notes, programs, times, positions = compose(spec)
    duration = float(max(n.start + n.length for n in notes)) + TAIL_S
    with tempfile.TemporaryDirectory(prefix=".render-", dir=out.parent) as tmp:
        work = Path(tmp)
        write_midi(notes, programs, work / "song.mid")
        synthesize(work / "song.mid", work / "raw.wav")
        _finish(work / "raw.wav", work / "song.wav", int(round(duration * SAMPLE_RATE)))
        encoded = work / f"song.{spec.codec}"
        encode(work / "song.wav", encoded, HEADERLESS.get(spec.codec))
        truth = {"name": spec.name, "bpm": float(np.median(60.0 / np.diff(times))), "meter": spec.meter,
                 "beats": [{"time": round(float(t), 6), "position": int(p)} for t, p in zip(times, positions)]}
        truth_path.write_text(json.dumps(truth))
        os.replace(encoded, out)
    return out


def score(truth: dict, beats: Sequence[dict], bpm: float | None, meter: int | None) -> dict[str, float]:
    """The four measures of one answer (beats with position where it gives them)."""
    ref = np.array([b["time"] for b in truth["beats"]])
    ref_down = np.array([b["time"] for b in truth["beats"] if b["position"] == 1])
    times = np.array([float(b["time"]) for b in beats])
    down = np.array([float(b["time"]) for b in beats if b.get("position") == 1])
    return {"beat_f": beat_f_measure(ref, times), "downbeat_f": beat_f_measure(ref_down, down),
            "tempo_acc1": tempo_acc1(truth["bpm"], bpm), "meter": float(meter == truth["meter"])}


def analyze(files: Sequence[Path]) -> None:
    SIDECARS_DIR.mkdir(parents=True, exist_ok=True)
    for f in files:
        (SIDECARS_DIR / f"{f.name}.beatwatch.json").unlink(missing_ok=True)
    command = [str(Path(sys.executable).parent / "beatwatch"), "analyze", *map(str, files),
               "--out", str(SIDECARS_DIR), "--no-db"]
    with (HARD_DIR / "analyze.log").open("w") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, check=False)


def evaluate(files: Sequence[Path], peers: dict | None) -> dict[str, dict[str, dict[str, float]]]:
    """Per song, per tracker ("beatwatch", "madmom"), the four measures."""
    results = {}
    for f in files:
        truth = json.loads(f.with_suffix(".truth.json").read_text())
        try:
            doc = json.loads((SIDECARS_DIR / f"{f.name}.beatwatch.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            doc = {"summary": {}, "timeline": {}}
        row = {"beatwatch": score(truth, doc["timeline"].get("beats") or [], doc["summary"].get("bpm"),
                                  doc["summary"].get("meter"))}
        answers = (peers or {}).get(f.name)
        if answers:
            madmom = score(truth, answers["madmom"]["timeline"]["beats"], answers["madmom"]["summary"]["bpm"], None)
            bars = score(truth, answers["madmom_bars"]["timeline"]["beats"], None,
                         answers["madmom_bars"]["summary"]["meter"])
            row["madmom"] = {**madmom, "downbeat_f": bars["downbeat_f"], "meter": bars["meter"]}
        results[truth["name"]] = row
    return results


def table(results: dict) -> tuple[list[str], bool]:
    """The printed table (overall and per kind) and whether every minimum holds with madmom not ahead."""
    lines = [f"{'hard material':34} {'beatwatch':>9} {'madmom':>7} {'songs':>5}  {'minimum':7} result"]
    passed = True
    for key, label, minimum in MEASURES:
        ours = [r["beatwatch"][key] for r in results.values()]
        theirs = [r["madmom"][key] for r in results.values() if "madmom" in r]
        value = float(np.mean(ours))
        peer = float(np.mean(theirs)) if len(theirs) == len(ours) else None
        ok = value >= minimum and (peer is None or value >= peer - PEER_MARGIN)
        passed &= ok
        lines.append(f"{label:34} {value:9.3f} {'-' if peer is None else f'{peer:.3f}':>7} {len(ours):5d}  "
                     f"{minimum:<7.2f} {'PASS' if ok else 'FAIL'}")
    kinds = sorted({name.split("-")[0] for name in results})
    lines.append(f"\n{'kind':12} " + " ".join(f"{key:>21}" for key, _, _ in MEASURES) + "   (beatwatch / madmom)")
    for kind in kinds:
        rows = [r for name, r in results.items() if name.startswith(kind + "-")]
        cells = []
        for key, _, _ in MEASURES:
            ours = np.mean([r["beatwatch"][key] for r in rows])
            theirs = [r["madmom"][key] for r in rows if "madmom" in r]
            cells.append(f"{ours:.3f} / {np.mean(theirs):.3f}" if theirs else f"{ours:.3f} / -")
        lines.append(f"{kind:12} " + " ".join(f"{c:>21}" for c in cells))
    misses = [(name, key, r["beatwatch"][key]) for name, r in results.items() for key, _, minimum in MEASURES
              if r["beatwatch"][key] < minimum]
    if misses:
        lines.append("")
        lines += [f"{name:34} {key:12} {value:.3f}" for name, key, value in misses]
    return lines, passed


def run(*, peers: bool = True, only: Sequence[str] = ()) -> bool:
    """Render, analyse, score and print; True when every minimum holds."""
    specs = [s for s in SPECS if not only or any(word in s.name for word in only)]
    files = [render(spec) for spec in specs]
    analyze(files)
    answers = ensure_peers(files, PEERS_DIR) if peers else None
    results = evaluate(files, answers)
    lines, passed = table(results)
    print("\n".join(lines))
    REPORT.write_text(json.dumps({"songs": results, "passed": passed}, indent=1))
    return passed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hard", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="only songs whose name has NAME")
    parser.add_argument("--no-peers", action="store_true", help="leave out madmom's column")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a minimum is missed")
    args = parser.parse_args(argv)
    passed = run(peers=not args.no_peers, only=args.only)
    return 1 if args.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
