"""One vector per bar, pooled from frames the other analyses already computed.

Sections are told apart by what they play (harmony), how they sound
(instruments, drums) and how loud they are; the chord network's features,
a coarse log spectrum with its onsets, and the RMS energy curve carry those,
so finding sections reads no audio again. Pooling is a running sum per bar,
so memory is bars x dims whatever the file's length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


# Bars pooled per reduceat: its transposed copy of their frames stays a few MB.
POOL_BLOCK = 1024


@dataclass(frozen=True)
class BarFeatures:
    """Per-bar means, one row per bar: harmony [shape=(bars, dh)], timbre [shape=(bars, dt)], energy [shape=(bars,)]."""

    harmony: np.ndarray
    timbre: np.ndarray
    energy: np.ndarray

    def __len__(self) -> int:
        return len(self.energy)


def pool(frames: np.ndarray, fps: float, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The mean of the frames inside each [start, end) span; a span shorter than a frame takes the frame it is in,
    and a span past the last frame takes the last one."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim == 1:
        frames = frames[:, None]
    n = len(starts)
    if len(frames) == 0 or n == 0:
        return np.zeros((n, frames.shape[1]), dtype=np.float32)
    last = len(frames) - 1
    lo = np.clip(np.floor(np.asarray(starts) * fps).astype(int), 0, last)
    hi = np.clip(np.ceil(np.asarray(ends) * fps).astype(int), lo + 1, last + 1)
    out = np.empty((n, frames.shape[1]), dtype=np.float32)
    # A reduceat over (lo, hi) pairs sums a block of spans at once (its odd entries, the gaps, are dropped), along
    # the rows of a transposed copy of the block's frames (twice as fast as down the columns; a block keeps the
    # copy small). A span that runs to the last frame has no end index reduceat accepts: those few are summed alone.
    inner = np.flatnonzero(hi <= last)
    for block in np.array_split(inner, max(1, math.ceil(len(inner) / POOL_BLOCK))):
        if len(block) == 0:
            continue
        origin = lo[block].min()
        piece = np.ascontiguousarray(frames[origin:hi[block].max() + 1].T)
        pairs = np.column_stack([lo[block], hi[block]]).ravel() - origin
        sums = np.add.reduceat(piece, pairs, axis=1)[:, ::2].T
        out[block] = sums / (hi[block] - lo[block])[:, None]
    for i in np.flatnonzero(hi > last):
        out[i] = frames[lo[i]:].mean(axis=0)
    return out


def bar_features(starts: np.ndarray, ends: np.ndarray, *, harmony: np.ndarray, harmony_fps: float,
                 timbre: np.ndarray, timbre_fps: float, energy: np.ndarray, energy_fps: float) -> BarFeatures:
    """Each frame stream pooled onto the bars given by their start and end times in seconds."""
    return BarFeatures(harmony=pool(harmony, harmony_fps, starts, ends), timbre=pool(timbre, timbre_fps, starts, ends),
                       energy=pool(energy, energy_fps, starts, ends)[:, 0])


def block_means(frames: np.ndarray, factor: int) -> np.ndarray:
    """Frames averaged in consecutive blocks of `factor` (the last block may be shorter): a coarser clock for a
    stream kept for the whole file."""
    frames = np.asarray(frames, dtype=np.float32)
    full = len(frames) // factor * factor
    head = frames[:full].reshape(-1, factor, *frames.shape[1:]).mean(axis=1)
    if full == len(frames):
        return head
    return np.concatenate([head, frames[full:].mean(axis=0, keepdims=True)])
