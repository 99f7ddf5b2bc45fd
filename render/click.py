"""The track with a click on every detected beat, to check the beat grid by ear.

Ears catch a grid that drifts, lags or counts bars wrong faster than a plot
does, so the clicks are mixed over the original audio rather than rendered
alone, and the downbeat click is higher and louder so the bar count can be
heard too. The mix is built and written in blocks: a 3-hour file needs no
second full copy of its samples.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from beatwatch.analysis.audio.decode import Audio

CLICK_S = 0.03
CLICK_DECAY_S = 0.006
BEAT_HZ, DOWNBEAT_HZ = 1000.0, 1600.0
# Fixed levels, not relative to the music: the clicks must be audible over quiet passages too.
BEAT_GAIN, DOWNBEAT_GAIN = 0.35, 0.7
PEAK_LIMIT = 0.99
BLOCK_S = 30.0


def click(freq: float, gain: float, sample_rate: int) -> np.ndarray:
    """A sine burst with an instant attack (the beat time is its first sample) and a few ms of decay."""
    t = np.arange(int(CLICK_S * sample_rate)) / sample_rate
    return (gain * np.sin(2 * np.pi * freq * t) * np.exp(-t / CLICK_DECAY_S)).astype(np.float32)


def _mixed_blocks(audio: Audio, beats: Sequence[dict]) -> Iterator[np.ndarray]:
    """The audio plus clicks, BLOCK_S at a time, shape (n, channels) float32."""
    sr, samples = audio.sample_rate, audio.samples
    sounds = {False: click(BEAT_HZ, BEAT_GAIN, sr), True: click(DOWNBEAT_HZ, DOWNBEAT_GAIN, sr)}
    length = len(sounds[False])
    ordered = sorted(beats, key=lambda b: b["time"])
    starts = np.array([int(round(b["time"] * sr)) for b in ordered], dtype=np.int64)
    accents = [b.get("position") == 1 for b in ordered]
    block = int(BLOCK_S * sr)
    for lo in range(0, len(samples), block):
        hi = min(lo + block, len(samples))
        mixed = np.array(samples[lo:hi], dtype=np.float32)
        # Clicks that start in an earlier block and ring into this one count too.
        first, last = np.searchsorted(starts, lo - length + 1), np.searchsorted(starts, hi)
        for start, accent in zip(starts[first:last], accents[first:last]):
            a, b = max(start, lo), min(start + length, hi)
            mixed[a - lo:b - lo] += sounds[accent][a - start:b - start, None]
        yield mixed


def render_click(audio: Audio, beats: list[dict], out: Path) -> Path:
    """Write audio + clicks at `beats` (timeline.beats rows) to out as 16-bit WAV; raises ValueError for another suffix.

    The mix is scaled down as a whole when its peak would pass PEAK_LIMIT, so
    nothing clips and the clicks keep their level relative to the music.
    """
    out = Path(out)
    if out.suffix.lower() != ".wav":
        raise ValueError(f"{out}: the click track is written as WAV, name it *.wav")
    peak = max((float(np.max(np.abs(block), initial=0.0)) for block in _mixed_blocks(audio, beats)), default=0.0)
    gain = np.float32(PEAK_LIMIT / peak if peak > PEAK_LIMIT else 1.0)
    channels = audio.samples.shape[1]
    with sf.SoundFile(str(out), "w", samplerate=audio.sample_rate, channels=channels,
                      format="WAV", subtype="PCM_16") as handle:
        for block in _mixed_blocks(audio, beats):
            handle.write(block * gain)
    return out
