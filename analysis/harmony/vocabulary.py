"""The chord names beatwatch writes: Harte labels over a musician's vocabulary, and their majmin reduction.

People read charts as Cmaj7, Dm7, G7, Bø7, Gsus4 and C/E, so those are
the labels; people (and tools) that want triads only read `simple`: the
root with a major or minor triad, as mir_eval's majmin vocabulary has it.
The reduction follows the third: a minor third (min, min7, dim, hdim7,
dim7, min6) reduces to min, anything else (7, maj7, sus2, sus4, aug, maj6)
to maj, the triad a guitarist strums for it.
"""

from __future__ import annotations

# Harte quality -> semitones above the root.
QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10),
    "hdim7": (0, 3, 6, 10), "dim": (0, 3, 6), "sus2": (0, 2, 7), "sus4": (0, 5, 7),
    "aug": (0, 4, 8), "dim7": (0, 3, 6, 9), "maj6": (0, 4, 7, 9), "min6": (0, 3, 7, 9),
}
MINOR_THIRD = frozenset({"min", "min7", "hdim7", "dim", "dim7", "min6"})
# Harte's name of a bass note by its interval above the root.
BASS_DEGREES = {2: "2", 3: "b3", 4: "3", 5: "4", 6: "b5", 7: "5", 8: "#5", 9: "6", 10: "b7", 11: "7"}
NO_CHORD = "N"


def harte(root: str, quality: str, bass_interval: int = 0) -> str:
    """"C:maj7", or "C:maj/3" when the bass plays the chord's third rather than its root."""
    label = f"{root}:{quality}"
    return f"{label}/{BASS_DEGREES[bass_interval]}" if bass_interval else label


def simple(label: str) -> str:
    """The majmin reduction: "C:min7/b3" -> "C:min", "G:sus4" -> "G:maj"; "N" (and anything unparsable) as is."""
    root, colon, rest = label.partition(":")
    if not colon:
        return label
    quality = rest.partition("/")[0]
    return f"{root}:{'min' if quality in MINOR_THIRD else 'maj'}"
