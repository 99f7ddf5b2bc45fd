"""The nearest of a sorted set of times to each of many others: one search, shared where two clocks meet."""

from __future__ import annotations

import numpy as np


def nearest(sorted_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the nearest of `sorted_times` (ascending, at least one) to each of `times`; a tie takes the earlier.

    A search, not a times x times table: a 3-hour mix has tens of thousands of beats and chords.
    """
    right = np.clip(np.searchsorted(sorted_times, times), 0, len(sorted_times) - 1)
    left = np.maximum(right - 1, 0)
    return np.where(np.abs(sorted_times[left] - times) <= np.abs(sorted_times[right] - times), left, right)
