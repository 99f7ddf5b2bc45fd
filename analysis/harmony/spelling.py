"""One spelling per key, and chord roots spelled the way that key writes them.

The chord CNN names its 12 roots with sharps only, so a song in "Eb major"
came out with "D#:maj" chords beside it. Keys use madmom's 24 names, which
are the conventional ones: the spelling with fewer accidentals, and for the
two six-accidental pairs the sharp side (F# major and its relative D# minor
share a signature). A chord's root takes the accidentals of the key it sits
in: sharps in sharp keys, flats in flat keys, and flats in C major and
A minor, whose black-key chords are mostly borrowed ones (Bb, Eb, Ab).
"""

from __future__ import annotations

from madmom.features.key import KEY_LABELS

KEY_NAMES: tuple[str, ...] = tuple(KEY_LABELS)
SHARP_ROOTS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLAT_ROOTS = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
SHARP_KEYS = frozenset({"G major", "D major", "A major", "E major", "B major", "F# major",
                        "E minor", "B minor", "F# minor", "C# minor", "G# minor", "D# minor"})
_NATURALS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def pitch_class(root: str) -> int | None:
    """0..11 for a note name with any number of # and b; None for anything else."""
    if not root or root[0] not in _NATURALS or any(c not in "#b" for c in root[1:]):
        return None
    return (_NATURALS[root[0]] + root.count("#") - root.count("b")) % 12


def spell_chord(label: str, key: str | None) -> str:
    """A Harte label with its root (and bass note name, if any) respelled for `key`; "N" and unknowns unchanged."""
    root, colon, rest = label.partition(":")
    pc = pitch_class(root)
    if pc is None:
        return label
    names = SHARP_ROOTS if key in SHARP_KEYS else FLAT_ROOTS
    return names[pc] + colon + rest
