"""The arranged suite: songs with a form, rendered like records, each with its truth from the score.

Same machinery as bench/songs.py (FluidSynth renders the MIDI, ffmpeg
encodes; cache under a hash of spec and source), plus what records do to
a band: a global detune (pitch bend on every channel), humanised timing
(each note moved by its own error in ms on the way to the 1 ms render
grid), and mastering (a convolution reverb, heavy compression, a
band-limited lo-fi chain) before encoding, low-bitrate mp3 among the
formats. None of it touches the truth: detune keeps the chord names, the
timing errors stay within 25 ms of beats that are written on the grid.
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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import mido
import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

from .arrange import PROGRESSIONS, ArrangedScore, ArrangedSpec, Master, SectionLabel, compose_arranged
from .compose import PPQ, RENDER_PPQ, RENDER_TEMPO, seconds
from .songs import ENCODER_ARGS, PEAK, SAMPLE_RATE, TAIL_S, RenderError, synthesize
from .spec import Mode, pitch_name

SOURCES = ("spec.py", "compose.py", "songs.py", "arrange.py", "arranged.py")
SUITE_SIZE = 20
DURATION_S = (60.0, 150.0)
FADE_S = 0.05
LOW_BITRATE_MP3 = ["-c:a", "libmp3lame", "-b:a", "64k"]
PITCH_BEND_RANGE_CENTS = 200.0  # General MIDI's default pitch-bend sensitivity: two semitones
# ffmpeg chains for the mastering that a filter does well; the reverb is a convolution (see `_reverb`).
MASTER_FILTERS: dict[str, str] = {
    "compress": "acompressor=threshold=0.03:ratio=12:attack=2:release=80:makeup=10,alimiter=limit=0.9",
    "lofi": "highpass=f=250,lowpass=f=3400,acompressor=threshold=0.1:ratio=4:makeup=2",
}
REVERB_S, REVERB_RT60_S, REVERB_WET = 2.0, 1.6, 0.35
FORMATS = ("wav", "flac", "mp3", "ogg", "m4a")
FORMS: tuple[tuple[tuple[SectionLabel, int], ...], ...] = (
    (("intro", 4), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("bridge", 8), ("chorus", 8),
     ("outro", 4)),
    (("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("bridge", 4), ("chorus", 8), ("chorus", 8)),
    (("intro", 4), ("verse", 8), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("outro", 4)),
    (("intro", 8), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("chorus", 8), ("outro", 4)),
    (("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("bridge", 8), ("chorus", 8), ("outro", 4)),
    (("intro", 4), ("verse", 8), ("chorus", 4), ("verse", 8), ("chorus", 4), ("bridge", 6), ("chorus", 8),
     ("outro", 4)),
)


@dataclass(frozen=True)
class ArrangedSong:
    """A rendered arranged song: its audio file and, beside it, the MIDI FluidSynth played and the truth JSON."""

    spec: ArrangedSpec
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
def _digest() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def song_for(spec: ArrangedSpec, out_dir: Path) -> ArrangedSong:
    text = json.dumps({"renderer": _digest(), "spec": asdict(spec)}, sort_keys=True)
    return ArrangedSong(spec, Path(out_dir) / f"{spec.name}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"
                        f".{spec.format}")


def _slug(tonic: int, mode: Mode) -> str:
    return pitch_name(tonic, tonic, mode).lower().replace("#", "s") + mode[:3]


def arranged_suite(n: int = SUITE_SIZE, seed: int = 0) -> list[ArrangedSpec]:
    """`n` arranged songs: the six forms in turn, a key each (all 24 before any repeats), a quarter in 3/4,
    tempi spread over 84-160 BPM (raised or lowered to keep a song within 60-150 s), a fifth swung, a third
    detuned by 10-40 cents, mastering none/reverb/none/compress/lofi in turn, formats wav, flac, mp3 at
    64 kbit/s, ogg, m4a in turn, humanised by 5-25 ms."""
    rng = random.Random(seed)
    keys = [(tonic, mode) for mode in ("major", "minor") for tonic in range(12)]
    rng.shuffle(keys)
    masters: tuple[Master, ...] = ("none", "reverb", "none", "compress", "lofi")
    bpms = [84 + 76 * (i + 0.5) / n for i in range(n)]
    rng.shuffle(bpms)
    swung = set(rng.sample(range(n), n // 5))
    detuned = set(rng.sample(range(n), n // 3))
    specs = []
    for i in range(n):
        tonic, mode = keys[i % len(keys)]
        form = FORMS[i % len(FORMS)]
        meter = 3 if i % 4 == 3 else 4
        beats = sum(bars for _, bars in form) * meter
        bpm = round(min(max(bpms[i], beats * 60 / DURATION_S[1]), beats * 60 / DURATION_S[0]), 1)
        labels = dict.fromkeys(label for label, _ in form)
        progressions = tuple((label, rng.randrange(len(PROGRESSIONS[mode][label]))) for label in labels)
        detune = round(rng.choice((-1, 1)) * rng.uniform(10, 40), 1) if i in detuned else 0.0
        master = masters[i % len(masters)]
        name = (f"a{i:02d}-{_slug(tonic, mode)}-{round(bpm)}bpm-{meter}4-form{i % len(FORMS)}"
                + ("-swing" if i in swung else "") + (f"-{master}" if master != "none" else "")
                + ("-detuned" if detune else ""))
        specs.append(ArrangedSpec(
            name=name, bpm=bpm, meter=meter, tonic=tonic, mode=mode, form=form, progressions=progressions,
            swing=i in swung, humanize_ms=round(rng.uniform(5, 25), 1), detune_cents=detune, master=master,
            lead=rng.random() < 0.6, format=FORMATS[i % len(FORMATS)], seed=seed * 1000 + 700 + i))
    return specs


def write_render_midi(score: ArrangedScore, path: Path, tail_s: float) -> None:
    """The file FluidSynth plays: each note at its grid time plus its timing error, on a 1 ms grid, after a
    pitch bend on every channel that detunes the whole band."""
    ms_per_tick = RENDER_TEMPO / RENDER_PPQ / 1000
    starts = seconds(score.tempo_map, [n.tick for n in score.notes]) * 1000
    ends = seconds(score.tempo_map, [n.end for n in score.notes]) * 1000
    offsets = np.array(score.offsets_ms)
    bend = int(round(score.spec.detune_cents / PITCH_BEND_RANGE_CENTS * 8192))
    events: list[tuple[int, int, mido.Message | mido.MetaMessage]] = [(0, 0, mido.MetaMessage(
        "set_tempo", tempo=RENDER_TEMPO))]
    for channel, program in score.programs.items():
        events.append((0, 1, mido.Message("program_change", channel=channel, program=program)))
    for channel in range(16):
        events.append((0, 1, mido.Message("pitchwheel", channel=channel, pitch=max(-8192, min(8191, bend)))))
    for note, on, off in zip(score.notes, np.round((starts + offsets) / ms_per_tick).astype(int),
                             np.round((ends + offsets) / ms_per_tick).astype(int)):
        events.append((int(on), 3, mido.Message("note_on", channel=note.channel, note=note.pitch,
                                                velocity=note.velocity)))
        events.append((int(off), 2, mido.Message("note_off", channel=note.channel, note=note.pitch)))
    end = int(round(seconds(score.tempo_map, [score.end_tick])[0] * 1000 / ms_per_tick + tail_s * 1000 / ms_per_tick))
    track = mido.MidiTrack()
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
    midi = mido.MidiFile(type=0, ticks_per_beat=RENDER_PPQ)
    midi.tracks.append(track)
    midi.save(str(path))


def _ffmpeg(args: list[str], what: str) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RenderError("ffmpeg is not installed; `make system-deps` installs it")
    result = subprocess.run([ffmpeg, "-v", "error", "-nostdin", "-y", *args], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise RenderError(f"{what} failed (exit {result.returncode}): {lines[-1] if lines else 'no message'}")


def _reverb(audio: np.ndarray, seed: int) -> np.ndarray:
    """A hall: the dry signal plus its convolution with exponentially decaying noise, different per channel."""
    rng = np.random.default_rng(seed)
    length = int(REVERB_S * SAMPLE_RATE)
    decay = np.exp(-6.9 * np.arange(length) / (REVERB_RT60_S * SAMPLE_RATE))  # -60 dB at RT60
    decay[: int(0.012 * SAMPLE_RATE)] = 0.0  # a 12 ms pre-delay keeps the attacks where the notes are
    wet = np.stack([fftconvolve(audio[:, c], rng.standard_normal(length) * decay)[: len(audio)]
                    for c in range(audio.shape[1])], axis=1)
    wet *= np.abs(audio).max() / max(float(np.abs(wet).max()), 1e-9)
    return audio + REVERB_WET * wet.astype(np.float32)


def _master(audio: np.ndarray, master: Master, seed: int, work: Path) -> np.ndarray:
    if master == "none":
        return audio
    if master == "reverb":
        return _reverb(audio, seed)
    sf.write(str(work / "dry.wav"), audio, SAMPLE_RATE, subtype="FLOAT")
    _ffmpeg(["-i", str(work / "dry.wav"), "-af", MASTER_FILTERS[master], "-c:a", "pcm_f32le", str(work / "wet.wav")],
            f"ffmpeg mastering ({master})")
    wet, _ = sf.read(str(work / "wet.wav"), dtype="float32", always_2d=True)
    return wet[: len(audio)]


def _finish(raw: Path, samples: int) -> np.ndarray:
    audio, rate = sf.read(str(raw), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise RenderError(f"fluidsynth wrote {rate} Hz instead of {SAMPLE_RATE}")
    audio = audio[:samples]
    if len(audio) < samples:
        audio = np.concatenate([audio, np.zeros((samples - len(audio), audio.shape[1]), np.float32)])
    return audio


def _r(value: float) -> float:
    return round(float(value), 6)


def ground_truth(score: ArrangedScore, audio_name: str, duration: float) -> dict:
    """The truth in the sidecar's shape, with `timeline.sections` as the sidecar gives them."""
    spec, tempo_map = score.spec, score.tempo_map
    beat_times = seconds(tempo_map, score.beat_ticks)
    bar_starts = list(range(PPQ, score.end_tick, score.bar_ticks))
    bar_times = seconds(tempo_map, bar_starts + [score.end_tick])
    chord_times = [seconds(tempo_map, [c.start, c.end]) for c in score.chords]
    section_of_bar = {s.bar + k: s.label for s in score.sections for k in range(s.bars)}
    return {
        "schema": "beatwatch.truth/1",
        "name": spec.name,
        "audio": audio_name,
        "duration": _r(duration),
        "spec": asdict(spec),
        "arrangement": {"programs": {str(c): p for c, p in score.programs.items()}, "parts": score.arrangement},
        "music": {"start": _r(beat_times[0]), "end": _r(bar_times[-1]), "bars": len(bar_starts)},
        "tempo_kind": "steady",
        "key_changes": [],
        "summary": {"bpm": _r(spec.bpm), "meter": spec.meter, "key": score.key},
        "timeline": {
            "beats": [{"time": _r(t), "bar": i // spec.meter + 1, "position": i % spec.meter + 1}
                      for i, t in enumerate(beat_times)],
            "bars": [{"bar": i + 1, "time": _r(bar_times[i]), "duration": _r(bar_times[i + 1] - bar_times[i]),
                      "beats": spec.meter, "section": section_of_bar[i + 1],
                      "chord": next(c.label for c in score.chords if c.start <= start < c.end)}
                     for i, start in enumerate(bar_starts)],
            "chords": [{"start": _r(s), "end": _r(e), "label": c.label}
                       for c, (s, e) in zip(score.chords, chord_times)],
            "tempo": [{"time": _r(beat_times[0]), "bpm": _r(spec.bpm)}],
            "keys": [{"start": _r(beat_times[0]), "end": _r(bar_times[-1]), "key": score.key}],
            "sections": [{"start": _r(seconds(tempo_map, [s.start])[0]), "end": _r(seconds(tempo_map, [s.end])[0]),
                          "bar": s.bar, "bars": s.bars, "label": s.label, "letter": s.letter, "confidence": 1.0}
                         for s in score.sections],
        },
    }


def render(spec: ArrangedSpec, out_dir: Path) -> ArrangedSong:
    """Compose, synthesise, master, encode and write the truth for one song; the truth JSON is written last."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    song = song_for(spec, out_dir)
    score = compose_arranged(spec)
    end_s = float(seconds(score.tempo_map, [score.end_tick])[0])
    samples = int(round((end_s + TAIL_S) * SAMPLE_RATE))
    with tempfile.TemporaryDirectory(prefix=".render-", dir=out_dir) as tmp:
        work = Path(tmp)
        write_render_midi(score, work / "render.mid", TAIL_S)
        synthesize(work / "render.mid", work / "raw.wav")
        audio = _master(_finish(work / "raw.wav", samples), spec.master, spec.seed, work)
        fade = int(FADE_S * SAMPLE_RATE)
        audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
        peak = float(np.abs(audio).max())
        if peak == 0.0:
            raise RenderError(f"fluidsynth rendered silence for {spec.name}")
        sf.write(str(work / "song.wav"), audio * (PEAK / peak), SAMPLE_RATE, subtype="PCM_16")
        encoded = work / f"song.{spec.format}"
        if spec.format != "wav":
            codec = LOW_BITRATE_MP3 if spec.format == "mp3" else ENCODER_ARGS[spec.format]
            _ffmpeg(["-i", str(work / "song.wav"), *codec, str(encoded)], f"ffmpeg encoding {song.audio.name}")
        truth = ground_truth(score, song.audio.name, samples / SAMPLE_RATE)
        (work / "truth.json").write_text(json.dumps(truth, indent=1))
        os.replace(work / "render.mid", song.midi)
        os.replace(encoded, song.audio)
        os.replace(work / "truth.json", song.truth_path)
    return song


def ensure_arranged(out_dir: Path, specs: Sequence[ArrangedSpec], workers: int = 2) -> list[ArrangedSong]:
    """Render the songs not already cached under `out_dir`; returns every song in spec order."""
    songs = [song_for(spec, out_dir) for spec in specs]
    missing = [song.spec for song in songs if not (song.truth_path.exists() and song.audio.exists())]
    if missing:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda spec: render(spec, out_dir), missing))
    return songs
