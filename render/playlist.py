"""M3U playlists from a query, in the order given or ordered for harmonic mixing.

Harmonic order walks the Camelot wheel: from each track the next is one a
DJ can mix into without a key clash (the same key, a fifth either way: one
number round the wheel with the same letter, or the relative major/minor:
the same number with the other letter) whose tempo is within the allowed
percentage, the nearest tempo first. When no remaining track fits, the walk
jumps to the closest key, then the closest tempo, as a DJ would change key
with a break. It starts from the slowest track, so a set builds up in tempo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from beatwatch.analysis.harmony.notation import camelot

# Further round the wheel than any two keys are: a track without a key comes last in every choice.
_NO_KEY = 99


@dataclass(frozen=True)
class Entry:
    path: str
    duration: float | None
    bpm: float | None
    key: str | None
    artist: str | None = None
    title: str | None = None

    @property
    def display(self) -> str:
        """"Artist - Title" as players list it; the file name where the tags name nothing."""
        if self.title:
            return f"{self.artist} - {self.title}" if self.artist else self.title
        return os.path.basename(self.path)


def wheel_distance(a: str | None, b: str | None) -> int:
    """Steps between two keys on the Camelot wheel: numbers apart (circularly) plus one for a change of letter.
    0: the same key; 1: a mix without a clash."""
    ca, cb = camelot(a), camelot(b)
    if ca is None or cb is None:
        return _NO_KEY
    na, nb = int(ca[:-1]), int(cb[:-1])
    apart = min((na - nb) % 12, (nb - na) % 12)
    return apart + (ca[-1] != cb[-1])


def _tempo_step(a: Entry, b: Entry) -> float:
    """b's tempo relative to a's, in percent; infinite where either has none."""
    if not a.bpm or not b.bpm:
        return float("inf")
    return abs(b.bpm - a.bpm) / a.bpm * 100.0


def harmonic_order(entries: list[Entry], tempo_percent: float) -> list[Entry]:
    left = sorted(entries, key=lambda e: (e.bpm is None, e.bpm or 0.0, e.path))
    if not left:
        return []
    order = [left.pop(0)]
    while left:
        here = order[-1]

        def rank(candidate: Entry, here: Entry = here) -> tuple[bool, int, float, str]:
            distance = wheel_distance(here.key, candidate.key)
            step = _tempo_step(here, candidate)
            fits = distance <= 1 and step <= tempo_percent
            return (not fits, distance, step, candidate.path)

        order.append(left.pop(left.index(min(left, key=rank))))
    return order


def m3u(entries: list[Entry], playlist: Path) -> str:
    """Extended M3U, each path relative to the playlist's folder so the folder can move with its music."""
    folder = playlist.absolute().parent
    lines = ["#EXTM3U"]
    for entry in entries:
        seconds = round(entry.duration) if entry.duration is not None else -1
        lines.append(f"#EXTINF:{seconds},{entry.display}")
        lines.append(os.path.relpath(entry.path, folder))
    return "\n".join(lines) + "\n"
