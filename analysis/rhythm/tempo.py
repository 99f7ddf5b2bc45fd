"""Tempo from the tracked beats: one BPM for the song and a curve that follows ramps and steps.

One beat interval says little: the beats come from a 100 fps activation, so
each interval is off by up to a frame, and a tempo read from intervals is
6000/n BPM (a steady 138.88 BPM song has intervals of 43 and 44 frames and
their median says 139.53, a grid that slips 0.6 beat in 32 bars). So the
tempo is fitted through many beat times at once: where the tempo holds,
beat time against beat number is a straight line whose slope is the beat
period, known to a fraction of a millisecond after a few dozen beats; where
it ramps, a parabola. The beats are cut into the longest pieces that one of
those two fits explains to within the beats' own jitter (a step in tempo, a
misplaced beat or a change of tracked level is where a piece ends), so a
steady stretch reads one flat tempo and a ramp a straight one. Where no
piece of four bars holds (a live band's drift), each beat's tempo is the
slope of a line through the nine beats around it: still a fit, not an
interval, so not held to whole frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A piece is split only into pieces of at least this many beats (two bars of 4/4): fewer cannot tell a
# beat's jitter from a change of tempo.
MIN_PIECE_BEATS = 8
# A fit explains a piece when its residuals' RMS is within this many times the beats' jitter.
FIT_TOLERANCE = 2.0
# The least jitter assumed, in seconds: beats placed on whole 10 ms frames are off by up to half of one,
# an RMS of 2.9 ms, however clean the music.
JITTER_FLOOR_S = 0.003
# Beats either side of a beat whose line sets its tempo where no longer piece does.
LOCAL_HALF_WINDOW = 4
STEADY_TOLERANCE = 0.04


@dataclass(frozen=True)
class Tempo:
    """Global BPM (None without beats), its confidence 0..1, and the local BPM at each beat."""

    bpm: float | None
    confidence: float
    curve_times: np.ndarray
    curve_bpm: np.ndarray

    @classmethod
    def unknown(cls) -> "Tempo":
        return cls(None, 0.0, np.zeros(0), np.zeros(0))


def estimate_tempo(beat_times: np.ndarray, beat_confidence: np.ndarray) -> Tempo:
    """The song's BPM is the tempo most of its beats are played at (the median of the fitted curve over the
    beats, see song_bpm); confidence is the share of beats near it weighted by beat confidence."""
    if len(beat_times) < 3:
        return Tempo.unknown()
    curve = local_tempo(beat_times)
    bpm = song_bpm(curve, np.diff(beat_times, append=beat_times[-1]))
    steady = np.abs(curve / bpm - 1.0) <= STEADY_TOLERANCE
    confidence = float(steady.mean() * np.mean(beat_confidence)) if len(beat_confidence) else 0.0
    return Tempo(bpm=bpm, confidence=confidence, curve_times=beat_times.copy(), curve_bpm=curve)


def song_bpm(curve: np.ndarray, seconds: np.ndarray) -> float:
    """The median of the curve, each beat's tempo read in the octave nearest that median first.

    A ritardando that slows a phrase towards half tempo takes the beat under the slowest tempo the
    tracker allows, so the tracker follows the eighths there and may keep them into the next steady
    stretch, or come back to the quarters: its curve then holds the same tempo at two levels (a song
    at 84 BPM read 167 for a third of its beats and 84 for the rest), and their plain median is a
    tempo the song never plays (104). Read in one octave they agree; which octave is the level the
    curve holds for more of the song's seconds (each beat lasting `seconds`), as the steady stretches
    at the slower level last twice as long per beat. Where no beat is read in another octave (any
    song tracked at one level, a step or a ramp within a tritone) this is the plain median.
    """
    plain = float(np.median(curve))
    octaves = np.round(np.log2(plain / curve))
    if not octaves.any():
        return plain
    folded = float(np.median(curve * 2.0 ** octaves))
    held = [float(seconds[np.abs(curve / (folded * 2.0 ** k) - 1.0) <= STEADY_TOLERANCE].sum()) for k in (0, -1, 1)]
    return folded * 2.0 ** (0, -1, 1)[int(np.argmax(held))]


def local_tempo(beat_times: np.ndarray) -> np.ndarray:
    """BPM at each beat: the slope of its piece's line or parabola through beat time against beat number, or,
    in a piece too short to call steady, of a line through the beats around it (never across a piece's end)."""
    times = np.asarray(beat_times, dtype=np.float64)
    if len(times) < 2:
        return np.zeros(len(times))
    period = np.empty(len(times))
    for lo, hi, degree in pieces(times, jitter(times)):
        index = np.arange(hi - lo, dtype=np.float64)
        if degree:
            period[lo:hi] = np.polyval(np.polyder(np.polyfit(index, times[lo:hi], degree)), index)
        else:
            period[lo:hi] = _sliding_slope(times[lo:hi])
    return 60.0 / period


def _sliding_slope(times: np.ndarray, half_window: int = LOCAL_HALF_WINDOW) -> np.ndarray:
    """The slope at each beat of a least-squares line through the beats within half_window of it."""
    out = np.empty(len(times))
    for i in range(len(times)):
        lo, hi = max(i - half_window, 0), min(i + half_window + 1, len(times))
        x = np.arange(lo, hi, dtype=np.float64)
        x -= x.mean()
        out[i] = float(np.dot(x, times[lo:hi]) / np.dot(x, x))
    return out


def jitter(times: np.ndarray) -> float:
    """The beats' own timing noise in seconds, from their second differences (zero at a steady tempo or a
    steady ramp, and each one a sum of three beats' errors, sqrt(6) times one's); the largest tenth is left
    out, so that a step or a misplaced beat does not count."""
    if len(times) < 4:
        return JITTER_FLOOR_S
    second = np.sort(np.abs(np.diff(times, 2)))
    kept = second[:max(int(len(second) * 0.9), 1)]
    return max(float(np.sqrt(np.mean(kept ** 2) / 6.0)), JITTER_FLOOR_S)


def pieces(times: np.ndarray, noise: float) -> list[tuple[int, int, int]]:
    """(lo, hi, degree) per piece, in order and covering every beat: beats lo..hi-1 lie on a line (degree 1, a
    steady tempo) or a parabola (degree 2, a ramp) to within the jitter, or (degree 0) are too few to say
    so: under 2 * MIN_PIECE_BEATS beats a line bends to a beat or two's jitter, a parabola more, and a tempo
    that wanders (a live band's drift) looks steady for a bar or two."""
    out: list[tuple[int, int, int]] = []
    stack = [(0, len(times))]
    while stack:
        lo, hi = stack.pop()
        degree = _explaining_degree(times[lo:hi], noise) if hi - lo >= 2 * MIN_PIECE_BEATS else 0
        if degree or hi - lo < 2 * MIN_PIECE_BEATS:
            out.append((lo, hi, degree))
            continue
        split = lo + _best_split(times[lo:hi])
        stack += [(split, hi), (lo, split)]
    return out


def _explaining_degree(times: np.ndarray, noise: float) -> int:
    """1 when a line explains the beats, else 2 when a parabola does, else 0."""
    index = np.arange(len(times), dtype=np.float64)
    for degree in (1, 2):
        residual = times - np.polyval(np.polyfit(index, times, degree), index)
        if float(np.sqrt(np.mean(residual ** 2))) <= FIT_TOLERANCE * noise:
            return degree
    return 0


def _best_split(times: np.ndarray) -> int:
    """Where cutting the beats in two leaves the least squared error of a steady tempo on each side, both
    sides at least MIN_PIECE_BEATS long (running sums, so a 3-hour file is one pass)."""
    n = len(times)
    index = np.arange(n, dtype=np.float64)
    # Residuals from one line through all the beats keep the running sums small enough to stay exact.
    y = times - np.polyval(np.polyfit(index, times, 1), index)
    cuts = np.arange(MIN_PIECE_BEATS, n - MIN_PIECE_BEATS + 1)
    left = _line_rss(index, y, cuts, from_start=True)
    right = _line_rss(index, y, cuts, from_start=False)
    return int(cuts[np.argmin(left + right)])


def _line_rss(x: np.ndarray, y: np.ndarray, cuts: np.ndarray, *, from_start: bool) -> np.ndarray:
    """Residual sum of squares of a least-squares line through the points before (or from) each cut."""
    if not from_start:
        x, y, cuts = x[::-1], y[::-1], len(x) - cuts
    x = x - x[0]
    count, sx, sxx, sy, sxy, syy = (np.cumsum(v)[cuts - 1] for v in (np.ones_like(x), x, x * x, y, x * y, y * y))
    vxx = sxx - sx * sx / count
    vxy = sxy - sx * sy / count
    return np.maximum(syy - sy * sy / count - vxy * vxy / np.maximum(vxx, 1e-12), 0.0)
