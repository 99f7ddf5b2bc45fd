"""Where each bar starts, beat by beat, so that a bar of another length does not shift all the bars after it.

madmom's bar tracker holds one bar phase for as long as it tracks: its
states count the beats of a bar of fixed length. Real songs have irregular
bars (a 2-beat bar before a chorus, a 6-beat bar at the end of a bridge), and
after one the tracker either keeps counting from the old bar line, with
every later bar off by the irregular bar's surplus, or bends its tempo to
slip the phase. The tracker's beats are kept; their bar positions are
decoded again by a small Viterbi over the beats, one state per position in
the bar, where a jump to another position (the bar ending early or running
on) is allowed at a cost that a few bars of the network's downbeat evidence
outweigh and a single ambiguous beat does not.
"""

from __future__ import annotations

import numpy as np

# The probability of a bar line moving at any one beat: a jump needs about four bars of downbeat evidence.
JUMP = 1e-4
EVIDENCE_FLOOR = 0.02
RADIUS_FRAMES = 2


def downbeat_probability(values: np.ndarray, times: np.ndarray, fps: float) -> np.ndarray:
    """Per beat, the network's downbeat share of its beat + downbeat activation, near the beat."""
    frames = np.round(times * fps).astype(int)
    offsets = np.arange(-RADIUS_FRAMES, RADIUS_FRAMES + 1)
    window = np.clip(frames[:, None] + offsets[None, :], 0, len(values) - 1)
    beat, down = values[window, 0].max(axis=1), values[window, 1].max(axis=1)
    return np.clip(down / np.maximum(beat + down, 1e-9), EVIDENCE_FLOOR, 1 - EVIDENCE_FLOOR)


def bar_positions(downbeat: np.ndarray, meter: int, start: int = 0, jump: float = JUMP) -> np.ndarray:
    """1-based positions in the bar for beats with downbeat probabilities `downbeat`; `start` is the
    tracker's position (0-based) of the first beat, kept unless the evidence says otherwise; `jump`: the
    probability of a bar line moving at any one beat."""
    n, start = len(downbeat), start % meter
    states = np.arange(meter)
    step = np.full((meter, meter), np.log(jump / max(meter - 1, 1)))
    step[states, (states + 1) % meter] = np.log(1 - jump)
    observe = np.where(states[None, :] == 0, np.log(downbeat)[:, None], np.log(1 - downbeat)[:, None])
    score = np.full(meter, np.log(jump / max(meter - 1, 1)))
    score[start] = 0.0
    score = score + observe[0]
    back = np.zeros((n, meter), dtype=np.int64)
    for i in range(1, n):
        candidates = score[:, None] + step
        back[i] = np.argmax(candidates, axis=0)
        score = candidates[back[i], states] + observe[i]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return count_from_downbeats(path == 0, int(path[0]))


def count_from_downbeats(downbeats: np.ndarray, start: int) -> np.ndarray:
    """Positions counted from the last downbeat (an irregular bar shows its real length); before the first
    downbeat (a pickup), the count starts at `start`, the first beat's 0-based position."""
    positions = np.empty(len(downbeats), dtype=np.int64)
    count = start - 1
    for i, is_down in enumerate(downbeats):
        count = 0 if is_down else count + 1
        positions[i] = count + 1
    return positions
