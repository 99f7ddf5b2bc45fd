"""Where a song's sections begin and which of them repeat, on its bar grid.

Every bar is one vector (harmony, timbre, loudness; each block z-scored and
scaled to equal weight). Boundaries come from an optimal partition of the bar
sequence: a segment costs its scatter around its own mean plus a fixed price,
so a cut is made where the music's mean changes for longer than a phrase,
not where a chord loop moves on. Segment lengths are bounded (MIN_BARS ..
MAX_BARS), which makes the dynamic programme O(bars x MAX_BARS) in time and
O(bars x dims) in memory: no bars x bars similarity matrix is ever built, so
a 3-hour mix (~20,000 bars) costs the same per bar as a song. Segments are
then grouped into letters by the distance of their means, each compared only
with the letters heard in the last LETTER_WINDOW segments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bar_features import BarFeatures
from .labels import name_sections

# A section is at least a short phrase; the first and last may be shorter (a pickup intro, a tag at the end).
MIN_BARS = 4
EDGE_MIN_BARS = 2
MAX_BARS = 64
# A segment is cut into back-to-back copies of its letter only when that letter's sections are this long: two
# 4-bar choruses in a row are as often one 8-bar chorus.
MIN_REPEAT_BARS = 8
# Fewer bars than this hold no form worth naming.
MIN_SONG_BARS = 8
# Relative weight of each block in the bar vector.
WEIGHTS = {"harmony": 1.0, "timbre": 0.8, "energy": 0.6}
# The price of one more section, in units of the bar vectors' mean squared spread.
SECTION_PRICE = 1.0
# A cut on a 4-bar phrase line from the start is cheaper by this share of the price.
PHRASE_BONUS = 0.25
# Letters: segments whose means lie closer than this (same units) repeat each other.
SAME_LETTER = 0.55
LETTER_WINDOW = 48
# Last bars this much quieter than the song's median bar only ring out (energy maps -60..0 dB to 0..1).
RING_OUT_DB = 12.0
ENERGY_DB_RANGE = 60.0
MAX_RING_OUT_BARS = 2
# Bars per block of the segment-cost table: its working memory is this many bars' prefix sums.
COST_BLOCK = 2048


@dataclass(frozen=True)
class Section:
    """Bars [first, stop) as indices into the bar list, with its name, its letter and how sure both are."""

    first: int
    stop: int
    label: str
    letter: str
    confidence: float


def bar_matrix(features: BarFeatures) -> np.ndarray:
    """The bar vectors: each block z-scored per dimension and scaled so its squared norm averages its weight."""
    blocks = []
    for name, values in (("harmony", features.harmony), ("timbre", features.timbre),
                         ("energy", features.energy[:, None])):
        values = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        if values.size == 0:
            continue
        spread = values.std(axis=0)
        z = (values - values.mean(axis=0)) / np.where(spread > 1e-9, spread, 1.0)
        blocks.append(z * np.float32(np.sqrt(WEIGHTS[name] / values.shape[1])))
    return np.hstack(blocks)


def find_sections(features: BarFeatures) -> tuple[list[Section], str | None]:
    """The sections of the bars the features describe, and a note when there are none to find."""
    n = len(features)
    if n < MIN_SONG_BARS:
        return [], f"{n} bars are too few for sections (at least {MIN_SONG_BARS})"
    x = bar_matrix(features)
    spread = float(np.mean(np.sum(x * x, axis=1)))
    if spread < 1e-9:
        return [], "every bar sounds the same: no sections"
    price = SECTION_PRICE * spread
    music = n - ring_out(features.energy)
    cuts = partition(x[:music], price=price)
    cuts[-1] = n
    spans = list(zip(cuts[:-1], cuts[1:]))
    letters, margins = group(x, spans)
    spans, letters, margins = split_repeats(spans, letters, margins, music)
    labels, evidence = name_sections(spans, letters, features.energy)
    sections = []
    for k, ((first, stop), letter, label) in enumerate(zip(spans, letters, labels)):
        gain = _merge_cost(x, spans[k - 1][0], first, stop) if k else 0.0
        boundary = gain / (gain + price) if k else 1.0
        confidence = (boundary + margins[k] + evidence[k]) / 3
        sections.append(Section(int(first), int(stop), label, letter, round(float(confidence), 4)))
    return sections, None


def ring_out(energy: np.ndarray) -> int:
    """How many of the last bars only ring out (reverb, a fading last chord): far quieter than the song. The
    beat grid runs on into them, but they are the end of the last section, not a section of their own."""
    quiet = np.asarray(energy) < np.median(energy) - RING_OUT_DB / ENERGY_DB_RANGE
    count = 0
    while count < MAX_RING_OUT_BARS and count < len(quiet) and quiet[len(quiet) - 1 - count]:
        count += 1
    return count


def split_repeats(spans: list[tuple[int, int]], letters: list[str], margins: list[float],
                  music: int) -> tuple[list[tuple[int, int]], list[str], list[float]]:
    """A segment that is k back-to-back copies of its letter's usual length (a double chorus, two verses in a
    row) is cut into those copies: the same music twice has no change of sound to cut at, only its repetition.
    The usual length is the median of the letter's other segments; the bars that only ring out do not count."""
    out_spans, out_letters, out_margins = [], [], []
    for k, ((first, stop), letter) in enumerate(zip(spans, letters)):
        others = [b - a for (a, b), other in zip(spans, letters) if other == letter and (a, b) != (first, stop)]
        length = min(stop, music) - first
        unit = int(np.median(others)) if others else 0
        copies = round(length / unit) if unit >= MIN_REPEAT_BARS else 1
        if copies >= 2 and abs(length - copies * unit) <= 1:
            edges = [first + i * unit for i in range(copies)] + [stop]
            out_spans += list(zip(edges[:-1], edges[1:]))
            out_letters += [letter] * copies
            out_margins += [margins[k]] * copies
        else:
            out_spans.append((first, stop))
            out_letters.append(letter)
            out_margins.append(margins[k])
    return out_spans, out_letters, out_margins


def segment_costs(x: np.ndarray, block: int = COST_BLOCK) -> np.ndarray:
    """costs[j, L - 1]: the scatter of bars [j - L, j) around their mean, for every end j and length L <= MAX_BARS
    (inf where the segment would start before bar 0). Computed in blocks of bars with prefix sums local to each
    block, so memory is one block's, and precision does not fall with the file's length."""
    n = len(x)
    costs = np.full((MAX_BARS, n + 1), np.inf)
    for first in range(1, n + 1, block):
        stop = min(first + block, n + 1)
        origin = max(0, first - MAX_BARS)
        local = x[origin:stop - 1].astype(np.float64)
        p1 = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(local, axis=0)])
        p2 = np.concatenate([[0.0], np.cumsum(np.einsum("ij,ij->i", local, local))])
        for length in range(1, MAX_BARS + 1):
            lo, hi = max(first - origin, length), stop - origin
            if lo >= hi:
                continue
            total = p1[lo:hi] - p1[lo - length:hi - length]
            costs[length - 1, lo + origin:hi + origin] = (
                p2[lo:hi] - p2[lo - length:hi - length] - np.einsum("ij,ij->i", total, total) / length)
    return np.maximum(costs.T, 0.0)


def partition(x: np.ndarray, price: float) -> list[int]:
    """Cut points 0 = c0 < c1 < ... = len(x) minimising the segments' scatter plus `price` per segment."""
    n = len(x)
    lengths = np.arange(1, MAX_BARS + 1)
    ends = np.arange(n + 1)[:, None]
    starts = ends - lengths
    # Every segment's price, with the phrase bonus, and inf for the ones the length rules forbid.
    shortest = np.where(ends == n, EDGE_MIN_BARS, MIN_BARS)
    allowed = (starts >= 0) & ((starts >= EDGE_MIN_BARS) | (starts == 0))
    allowed &= (lengths >= shortest) | ((starts == 0) & (lengths >= EDGE_MIN_BARS))
    table = segment_costs(x)
    table += price
    table[starts % 4 == 0] -= PHRASE_BONUS * price
    table[~allowed] = np.inf
    # best[j + MAX_BARS] is the best cost of bars [0, j); the MAX_BARS infs before it stand for starts before 0.
    best = np.full(n + 1 + MAX_BARS, np.inf)
    best[MAX_BARS] = 0.0
    back = np.zeros(n + 1, dtype=int)
    for j in range(1, n + 1):
        total = best[j + MAX_BARS - 1:j - 1 if j > 1 else None:-1][:MAX_BARS] + table[j]
        k = int(np.argmin(total))
        best[j + MAX_BARS], back[j] = total[k], j - k - 1
    if not np.isfinite(best[-1]):
        return [0, n]
    cuts = [n]
    while cuts[-1] > 0:
        cuts.append(int(back[cuts[-1]]))
    return cuts[::-1]


def _merge_cost(x: np.ndarray, a: int, b: int, c: int) -> float:
    """How much more [a, c) scatters as one segment than as [a, b) and [b, c): the strength of the cut at b."""
    left, right = x[a:b].mean(axis=0), x[b:c].mean(axis=0)
    return float((b - a) * (c - b) / (c - a) * np.sum((left - right) ** 2))


def letter_name(index: int) -> str:
    """A, B, ..., Z, AA, AB, ...: spreadsheet columns, so a mix's hundreds of parts still get names."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def group(x: np.ndarray, spans: list[tuple[int, int]]) -> tuple[list[str], list[float]]:
    """A letter per segment: the nearest letter among the last LETTER_WINDOW segments' when near enough, else a new
    one; with how clearly it belongs (margin to the threshold, 0..1)."""
    means = np.array([x[a:b].mean(axis=0) for a, b in spans])
    scale = float(np.sqrt(np.mean(np.sum(x * x, axis=1))))
    ids: list[int] = []
    centres: list[np.ndarray] = []
    counts: list[int] = []
    margins: list[float] = []
    for k, mean in enumerate(means):
        recent = sorted(set(ids[max(0, k - LETTER_WINDOW):k]))
        distances = [float(np.linalg.norm(mean - centres[c])) / scale for c in recent]
        nearest = int(np.argmin(distances)) if distances else -1
        if nearest >= 0 and distances[nearest] < SAME_LETTER:
            c = recent[nearest]
            centres[c] = (centres[c] * counts[c] + mean) / (counts[c] + 1)
            counts[c] += 1
            margins.append(1.0 - distances[nearest] / SAME_LETTER)
        else:
            c = len(centres)
            centres.append(mean)
            counts.append(1)
            margins.append(min(1.0, (min(distances) / SAME_LETTER - 1.0)) if distances else 1.0)
        ids.append(c)
    return [letter_name(c) for c in ids], margins
