"""The one decoder shared by chords-per-beat and key changes: stay free, switch at a price.

Both want the best label path where keeping the label costs nothing and
changing it costs a price that may vary by step (a downbeat, a tonic chord),
which reduces the Viterbi step to "stay, or jump from the best label".
"""

from __future__ import annotations

import numpy as np


def switch_path(evidence: np.ndarray, switch_cost: np.ndarray) -> np.ndarray:
    """Best path through evidence [shape=(steps, labels)]; switch_cost [shape=(steps,) or (steps, labels)]
    is the price of arriving in a new label at each step (per label when 2-D)."""
    n, k = evidence.shape
    score = evidence[0].copy()
    back = np.zeros((n, k), dtype=int)
    for i in range(1, n):
        best = int(score.argmax())
        switch = score[best] - switch_cost[i]
        stay = score >= switch
        back[i] = np.where(stay, np.arange(k), best)
        score = np.where(stay, score, switch) + evidence[i]
    path = np.empty(n, dtype=int)
    path[-1] = int(score.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path
