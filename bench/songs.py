"""Benchmark songs with exact ground truth: composed as MIDI, rendered by FluidSynth, encoded by ffmpeg.

Every time in the ground truth comes from the same tick-to-seconds mapping
that places the notes FluidSynth plays, so beats, bars, chords, keys and the
tempo curve are exact for the audio (to FluidSynth's 1 ms event clock and
~1.5 ms block grid), whatever the tempo does. Rendered songs are cached under
a hash of their spec and of the renderer's source, so a rerun only renders
what changed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .compose import PPQ, Score, compose, seconds, write_midi, write_render_midi
from .spec import (
    FORMATS,
    INSTRUMENTS,
    PROGRESSIONS,
    AudioFormat,
    Mode,
    Modulation,
    SongSpec,
    Style,
    Tempo,
    TempoKind,
    key_name,
)

__all__ = [
    "FORMATS", "Modulation", "RenderError", "Song", "SongSpec", "Tempo", "benchmark_suite", "ci_suite", "edge_cases",
    "encode", "ensure_suite", "quick_subset", "render", "render_progression",
]

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATE = 44100
GAIN = 0.8
TAIL_S = 1.0  # after the last bar: release and reverb, then silence
FADE_S = 0.05  # so the cut at the end of the tail does not click
PEAK = 0.89  # -1 dBFS: every song at the same peak level, none clipped
# The renderer's own source is part of every cache key, so editing how songs are made re-renders them.
RENDERER_SOURCES = ("spec.py", "compose.py", "songs.py")
DEFAULT_SUITE_SIZE = 48
RENDER_WORKERS = 2
JUMP = 0.01  # a tempo change bigger than this between two tempo events is a step, not part of a ramp

ENCODER_ARGS: dict[str, list[str]] = {
    "wav": ["-c:a", "pcm_s16le"],
    "flac": ["-c:a", "flac"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "5"],
    "m4a": ["-c:a", "aac", "-b:a", "192k"],
}


class RenderError(RuntimeError):
    """FluidSynth or ffmpeg is missing or failed on a song."""


@dataclass(frozen=True)
class Song:
    """A rendered song: its audio file and, beside it, the MIDI source and the ground truth JSON."""

    spec: SongSpec
    audio: Path

    @property
    def truth_path(self) -> Path:
        return self.audio.with_suffix(".truth.json")

    @property
    def midi(self) -> Path:
        return self.audio.with_suffix(".mid")

    @property
    def name(self) -> str:
        return self.spec.name

    def truth(self) -> dict:
        return json.loads(self.truth_path.read_text())


@functools.cache
def _renderer_digest() -> str:
    digest = hashlib.sha256()
    for name in RENDERER_SOURCES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def spec_hash(spec: SongSpec) -> str:
    """Short digest of the spec and the renderer's source: the cache key in the file name."""
    text = json.dumps({"renderer": _renderer_digest(), "spec": asdict(spec)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def song_for(spec: SongSpec, out_dir: Path) -> Song:
    """Where `spec` is (or will be) rendered under `out_dir`."""
    return Song(spec, Path(out_dir) / f"{spec.name}-{spec_hash(spec)}.{spec.format}")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RenderError(f"{name} is not installed; `make system-deps` installs it")
    return found


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise RenderError(f"{what} failed (exit {result.returncode}): {lines[-1] if lines else 'no message'}")


def synthesize(midi: Path, wav: Path) -> None:
    """Render a MIDI file to float WAV with FluidSynth's offline renderer (no audio driver needed)."""
    if not SOUNDFONT.exists():
        raise RenderError(f"{SOUNDFONT} is missing; `make system-deps` installs fluid-soundfont-gm")
    _run([_tool("fluidsynth"), "-n", "-i", "-q", "-g", str(GAIN), "-r", str(SAMPLE_RATE),
          "-O", "float", "-T", "wav", "-F", str(wav), str(SOUNDFONT), str(midi)], f"fluidsynth on {midi.name}")


def encode(wav: Path, out: Path, args: Sequence[str] | None = None) -> None:
    """Encode a WAV file into the format named by `out`'s extension (wav, flac, mp3, ogg, m4a), with that format's
    usual encoder options or `args`."""
    fmt = out.suffix.lstrip(".")
    if args is None and fmt not in ENCODER_ARGS:
        raise ValueError(f"{out}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if out.resolve() == wav.resolve():
        return
    options = ENCODER_ARGS[fmt] if args is None else args
    _run([_tool("ffmpeg"), "-v", "error", "-nostdin", "-y", "-i", str(wav), *options, str(out)],
         f"ffmpeg encoding {out.name}")


def _finish(raw: Path, out: Path, samples: int) -> None:
    """Cut FluidSynth's output to the song's exact length, fade the last FADE_S, normalise, write 16-bit."""
    audio, rate = sf.read(str(raw), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise RenderError(f"fluidsynth wrote {rate} Hz instead of {SAMPLE_RATE}")
    audio = audio[:samples]
    if len(audio) < samples:
        audio = np.concatenate([audio, np.zeros((samples - len(audio), audio.shape[1]), np.float32)])
    fade = int(FADE_S * SAMPLE_RATE)
    audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
    peak = float(np.abs(audio).max())
    if peak == 0.0:
        raise RenderError(f"fluidsynth rendered silence into {raw.name}")
    sf.write(str(out), audio * (PEAK / peak), SAMPLE_RATE, subtype="PCM_16")


def _r(value: float) -> float:
    return round(float(value), 6)


def _tempo_curve(score: Score) -> list[dict]:
    """The tempo from the first beat on, as points whose linear interpolation is the true tempo.

    A jump (a step) gets a point holding the old tempo 1 ms before it, so that reading the curve
    the way a sidecar's is read (interpolated) does not turn the step into a ramp.
    """
    events = [(tick, us) for tick, us in score.tempo_map if tick >= PPQ]
    times = seconds(score.tempo_map, [tick for tick, _ in events])
    points: list[dict] = []
    for (_, us), time in zip(events, times):
        bpm = 60e6 / us
        if points and abs(bpm / points[-1]["bpm"] - 1) > JUMP:
            points.append({"time": _r(time - 0.001), "bpm": points[-1]["bpm"]})
        points.append({"time": _r(time), "bpm": _r(bpm)})
    return points


def ground_truth(score: Score, audio_name: str, duration: float) -> dict:
    """The truth in the sidecar's own shape (summary + timeline), plus what only truth knows."""
    spec, tempo_map = score.spec, score.tempo_map
    beat_times = seconds(tempo_map, score.beat_ticks)
    bar_starts = list(range(PPQ, score.end_tick, score.bar_ticks))
    bar_times = seconds(tempo_map, bar_starts + [score.end_tick])
    bar_chords = [next(c.label for c in score.chords if c.start <= start < c.end) for start in bar_starts]
    keys = [{"start": _r(s), "end": _r(e), "key": k.label}
            for k, s, e in zip(score.keys, seconds(tempo_map, [k.start for k in score.keys]),
                               seconds(tempo_map, [k.end for k in score.keys]))]
    tempo = _tempo_curve(score)
    if spec.tempo.kind == "steady":
        bpm = tempo[0]["bpm"]
    else:
        bpm = _r(np.median(60.0 / np.diff(beat_times)))
    longest = max(keys, key=lambda k: k["end"] - k["start"])
    return {
        "schema": "beatwatch.truth/1",
        "name": spec.name,
        "audio": audio_name,
        "duration": _r(duration),
        "spec": asdict(spec),
        "music": {"start": _r(beat_times[0]), "end": _r(bar_times[-1]), "bars": len(bar_starts)},
        "tempo_kind": spec.tempo.kind,
        "key_changes": [k["start"] for k in keys[1:]],
        "summary": {"bpm": bpm, "meter": spec.meter, "key": longest["key"]},
        "timeline": {
            "beats": [{"time": _r(t), "bar": i // spec.meter + 1, "position": i % spec.meter + 1}
                      for i, t in enumerate(beat_times)],
            "bars": [{"bar": i + 1, "time": _r(bar_times[i]), "duration": _r(bar_times[i + 1] - bar_times[i]),
                      "beats": spec.meter, "chord": bar_chords[i]} for i in range(len(bar_starts))],
            "chords": [{"start": _r(s), "end": _r(e), "label": c.label}
                       for c, s, e in zip(score.chords, seconds(tempo_map, [c.start for c in score.chords]),
                                          seconds(tempo_map, [c.end for c in score.chords]))],
            "tempo": tempo,
            "keys": keys,
        },
    }


def render(spec: SongSpec, out_dir: Path) -> Song:
    """Compose, synthesise, encode and write ground truth for one song; the truth JSON is written last."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    song = song_for(spec, out_dir)
    score = compose(spec)
    end_s = float(seconds(score.tempo_map, [score.end_tick])[0])
    samples = int(round((end_s + TAIL_S) * SAMPLE_RATE))
    with tempfile.TemporaryDirectory(prefix=".render-", dir=out_dir) as tmp:
        work = Path(tmp)
        write_midi(score, work / "song.mid")
        write_render_midi(score, work / "render.mid", TAIL_S)
        synthesize(work / "render.mid", work / "raw.wav")
        _finish(work / "raw.wav", work / "song.wav", samples)
        encoded = work / f"song.{spec.format}"
        encode(work / "song.wav", encoded)
        truth = ground_truth(score, song.audio.name, samples / SAMPLE_RATE)
        (work / "truth.json").write_text(json.dumps(truth, indent=1))
        os.replace(work / "song.mid", song.midi)
        os.replace(encoded, song.audio)
        os.replace(work / "truth.json", song.truth_path)
    return song


def ensure_suite(out_dir: Path, specs: Sequence[SongSpec], workers: int = RENDER_WORKERS) -> list[Song]:
    """Render the songs not already cached under `out_dir`; returns every song in spec order.

    A thread pool is enough for parallelism: the work happens in FluidSynth and ffmpeg child processes.
    """
    songs = [song_for(spec, out_dir) for spec in specs]
    missing = [song.spec for song in songs if not (song.truth_path.exists() and song.audio.exists())]
    if missing:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda spec: render(spec, out_dir), missing))
    return songs


def render_progression(out_dir: Path, progression: str = "I-vi-IV-V", *, tonic: int = 0, bpm: float = 120.0,
                       meter: int = 4, bars: int = 8, instrument: str = "piano", style: Style = "no_drums",
                       melody: bool = False, tempo: Tempo | None = None, format: AudioFormat = "wav",
                       seed: int = 0) -> Song:
    """One short song in a call, for tests: by default C-Am-F-G on piano, no drums, no melody."""
    mode: Mode = PROGRESSIONS[progression][0]
    tempo = tempo or Tempo.steady(bpm)
    name = f"{progression}-{_key_slug(tonic, mode)}-{round(tempo.bpm)}bpm-{meter}4-{tempo.kind}"
    spec = SongSpec(name=name, tempo=tempo, meter=meter, tonic=tonic, mode=mode, progression=progression,
                    instrument=instrument, bars=bars, style=style, melody=melody, format=format, seed=seed)
    return render(spec, out_dir)


def _key_slug(tonic: int, mode: Mode) -> str:
    note, mode_word = key_name(tonic, mode).split()
    return note.lower().replace("#", "s") + mode_word[:3]


def _spread(rng: random.Random, values: Sequence, n: int) -> list:
    """`n` values cycling through `values` in blocks, each block shuffled: balanced counts, varied combinations."""
    result: list = []
    while len(result) < n:
        block = list(values)
        rng.shuffle(block)
        result += block
    return result[:n]


def _tempo_plan(rng: random.Random, kind: TempoKind, bpm: float) -> tuple[float, float]:
    """End tempo for a ramp (10-15 %) or step (12-25 %): upwards from slow songs, downwards from fast ones."""
    if kind in ("steady", "drift"):
        return bpm, bpm
    low, high = (0.10, 0.15) if kind == "ramp" else (0.12, 0.25)
    direction = 1 if bpm < 100 else -1 if bpm > 150 else rng.choice((1, -1))
    return bpm, round(bpm * (1 + direction * rng.uniform(low, high)), 2)


STYLE_SUFFIX = {"easy": "", "no_drums": "-nodrums", "swing": "-swing", "syncopated": "-sync", "breaks": "-breaks"}


def _name(prefix: str, tonic: int, mode: Mode, tempo: Tempo, meter: int, instrument: str, style: Style,
          modulation: Modulation | None) -> str:
    return (f"{prefix}-{_key_slug(tonic, mode)}-{round(tempo.bpm)}bpm-{meter}4-{tempo.kind}-{instrument}"
            + STYLE_SUFFIX[style] + ("-mod" if modulation else ""))


def _bars(seconds_of_music: float, tempo: Tempo, meter: int) -> int:
    return max(8, round(seconds_of_music * (tempo.bpm + tempo.end_bpm) / 2 / 60 / meter))


def benchmark_suite(n: int | None = None, seed: int = 0, *, edges: bool = True) -> list[SongSpec]:
    """The accuracy suite: `n` songs (default 48) spreading tempo, tempo shape, meter, key, harmony, sound and
    format, followed by the `edge_cases` (unless `edges` is false).

    The first 24 songs already hold all 24 keys; tempi are spread evenly over 70-180 BPM; half are
    steady and a sixth each ramp, step and drift; a third are in 3/4; a third have an easy rock kit and
    a sixth each no drums, swing, syncopation and drum breaks; one in eight modulates; formats rotate
    wav, flac, mp3, ogg, m4a.
    """
    n = DEFAULT_SUITE_SIZE if n is None else n
    rng = random.Random(seed)
    keys = _spread(rng, [(tonic, mode) for mode in ("major", "minor") for tonic in range(12)], n)
    bpms = [round(70 + 110 * (i + 0.5) / n, 1) for i in range(n)]
    rng.shuffle(bpms)
    kinds = _spread(rng, ["steady", "steady", "steady", "ramp", "step", "drift"], n)
    meters = _spread(rng, [4, 4, 3], n)
    styles = _spread(rng, ["easy", "easy", "no_drums", "swing", "syncopated", "breaks"], n)
    instruments = _spread(rng, list(INSTRUMENTS), n)
    melodies = _spread(rng, [True, False], n)
    modulated = set(rng.sample(range(n), n // 8))
    progressions = {mode: _spread(rng, [p for p, (m, _) in PROGRESSIONS.items() if m == mode], n)
                    for mode in ("major", "minor")}
    specs = []
    for i in range(n):
        (tonic, mode), kind, meter = keys[i], kinds[i], meters[i]
        start_bpm, end_bpm = _tempo_plan(rng, kind, bpms[i])
        seconds_of_music = rng.uniform(30, 45)
        bars = _bars(seconds_of_music, Tempo(kind, start_bpm, end_bpm), meter)
        tempo = Tempo(kind, start_bpm, end_bpm, bars // 2 if kind == "step" else 0)
        modulation = Modulation(round(bars * 0.6), (tonic + rng.choice((1, 2, 5))) % 12) if i in modulated else None
        name = _name(f"{i:02d}", tonic, mode, tempo, meter, instruments[i], styles[i], modulation)
        specs.append(SongSpec(
            name=name, tempo=tempo, meter=meter, tonic=tonic, mode=mode, progression=progressions[mode][i],
            instrument=instruments[i], bars=bars, style=styles[i], melody=melodies[i],
            changes_per_bar=2 if meter == 4 and rng.random() < 0.25 else 1, modulation=modulation,
            format=FORMATS[i % len(FORMATS)], seed=seed * 1000 + i,
        ))
    return specs + (edge_cases() if edges else [])


# The corners a random spread may miss: (tonic, progression, bpm, meter, tempo kind, instrument, style,
# modulation as (fraction of the song, semitones up) or None, chords per bar, seconds of music).
EDGE_CASES: tuple[tuple, ...] = (
    # fast waltzes: three beats to a bar at 168-180 BPM, one with no drums, one as a jazz waltz
    (2, "I-IV-V-I", 180.0, 3, "steady", "piano", "easy", None, 1, 36),
    (7, "I-V-vi-IV", 176.0, 3, "steady", "guitar", "no_drums", None, 1, 36),
    (4, "i-iv-V-i", 168.0, 3, "drift", "epiano", "swing", None, 1, 36),
    # slow ballads: 4/4 at 70-74 BPM, half-tempo bait
    (5, "I-vi-IV-V", 70.0, 4, "steady", "pad", "no_drums", None, 1, 44),
    (0, "i-VI-III-VII", 72.0, 4, "steady", "piano", "easy", None, 1, 44),
    (10, "I-V-vi-IV", 74.0, 4, "steady", "strings", "breaks", None, 2, 44),
    # key changes, two of them in minor progressions that never play the dominant
    (4, "i-VI-III-VII", 118.0, 4, "steady", "guitar", "syncopated", (0.55, 2), 1, 42),
    (0, "I-V-vi-IV", 126.0, 4, "steady", "piano", "breaks", (0.4, 5), 1, 42),
    (10, "I-vi-IV-V", 104.0, 4, "drift", "epiano", "swing", (0.6, 1), 1, 42),
    (7, "i-iv-v", 92.0, 3, "steady", "pad", "no_drums", (0.5, 2), 1, 42),
    # swing and syncopation at tempi where half and double are both plausible
    (9, "ii-V-I", 84.0, 4, "steady", "piano", "swing", None, 1, 38),
    (1, "i-VI-III-VII", 100.0, 4, "ramp", "guitar", "syncopated", None, 2, 38),
)


def edge_cases(seed: int = 0) -> list[SongSpec]:
    """Fixed hard songs: fast waltzes, slow ballads, key changes (some in dominant-free minor), swing, syncopation."""
    specs = []
    for i, (tonic, progression, bpm, meter, kind, instrument, style, change, per_bar, length) in enumerate(EDGE_CASES):
        mode: Mode = PROGRESSIONS[progression][0]
        end_bpm = round(bpm * 1.12, 2) if kind == "ramp" else bpm
        bars = _bars(length, Tempo(kind, bpm, end_bpm), meter)
        tempo = Tempo(kind, bpm, end_bpm)
        modulation = Modulation(round(bars * change[0]), (tonic + change[1]) % 12) if change else None
        specs.append(SongSpec(
            name=_name(f"x{i:02d}", tonic, mode, tempo, meter, instrument, style, modulation), tempo=tempo,
            meter=meter, tonic=tonic, mode=mode, progression=progression, instrument=instrument, bars=bars,
            style=style, melody=i % 3 != 1, changes_per_bar=per_bar, modulation=modulation,
            format=FORMATS[i % len(FORMATS)], seed=seed * 1000 + 500 + i,
        ))
    return specs


def ci_suite() -> list[SongSpec]:
    """Six short songs (15-20 s) that together touch every hard case, for the test that guards the benchmark's
    minimums: a dominant-free minor song, a fast no-drums waltz, swing, syncopation with a key change,
    drum breaks over a tempo step, and a drift."""
    rows = (
        ("ci0", 9, "i-VI-III-VII", Tempo.steady(120.0), 4, "piano", "easy", None, 1),
        ("ci1", 2, "I-IV-V-I", Tempo.steady(172.0), 3, "guitar", "no_drums", None, 1),
        ("ci2", 7, "ii-V-I", Tempo.steady(132.0), 4, "epiano", "swing", None, 1),
        ("ci3", 4, "i-iv-V-i", Tempo.steady(112.0), 4, "organ", "syncopated", 2, 1),
        ("ci4", 5, "I-V-vi-IV", Tempo("step", 96.0, 116.0, 5), 4, "strings", "breaks", None, 2),
        ("ci5", 11, "i-iv-v", Tempo("drift", 140.0, 140.0), 3, "piano", "easy", None, 1),
    )
    specs = []
    for i, (prefix, tonic, progression, tempo, meter, instrument, style, change, per_bar) in enumerate(rows):
        mode: Mode = PROGRESSIONS[progression][0]
        bars = 16 if change else 10 if meter == 4 else 12
        modulation = Modulation(round(bars * 0.6), (tonic + change) % 12) if change else None
        specs.append(SongSpec(
            name=_name(prefix, tonic, mode, tempo, meter, instrument, style, modulation), tempo=tempo, meter=meter,
            tonic=tonic, mode=mode, progression=progression, instrument=instrument, bars=bars, style=style,
            melody=True, changes_per_bar=per_bar, modulation=modulation, format="wav", seed=900 + i,
        ))
    return specs


QUICK_PICKS: tuple[Callable[[SongSpec], bool], ...] = (
    lambda s: s.tempo.kind == "steady" and s.meter == 4 and s.style == "easy" and s.modulation is None,
    lambda s: s.tempo.kind == "steady" and s.meter == 3,
    lambda s: s.tempo.kind == "ramp",
    lambda s: s.tempo.kind == "step",
    lambda s: s.style == "no_drums",
    lambda s: s.modulation is not None,
    lambda s: s.style == "swing",
    lambda s: s.style == "syncopated",
    lambda s: s.style == "breaks",
    lambda s: s.tempo.kind == "drift",
)


def quick_subset(specs: Sequence[SongSpec]) -> list[SongSpec]:
    """A fixed handful: the first song of each kind in QUICK_PICKS (steady 4/4, waltz, ramp, step, no drums,
    key change, swing, syncopation, drum breaks, drift)."""
    chosen: list[SongSpec] = []
    for pick in QUICK_PICKS:
        match = next((s for s in specs if pick(s) and s not in chosen), None)
        if match is not None:
            chosen.append(match)
    return sorted(chosen, key=specs.index)
