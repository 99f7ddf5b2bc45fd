"""The key notations DJs sort by: Camelot (8A) and Open Key (1m).

Both number the circle of fifths so that keys that mix without a clash sit
next to each other: the same number, one step either way, or the relative
key (same number, other letter). Camelot puts A minor and C major at 8;
Open Key (Traktor) starts its circle at C major = 1d, so it runs five steps
ahead of Camelot (Camelot n is Open Key ((n + 4) mod 12) + 1), with `m` for
minor and `d` for major.
"""

from __future__ import annotations

from .spelling import KEY_NAMES, pitch_class

_C_MAJOR_CAMELOT = 8  # 8B; every fifth up adds 1


def camelot(key: str | None) -> str | None:
    """"8A" for A minor, "8B" for C major; None for no key or a name that is not one of the 24."""
    parsed = _parse(key)
    if parsed is None:
        return None
    number, minor = parsed
    return f"{number}{'A' if minor else 'B'}"


def open_key(key: str | None) -> str | None:
    """"1m" for A minor, "1d" for C major; None for no key or a name that is not one of the 24."""
    parsed = _parse(key)
    if parsed is None:
        return None
    number, minor = parsed
    return f"{(number + 4) % 12 + 1}{'m' if minor else 'd'}"


def _parse(key: str | None) -> tuple[int, bool] | None:
    """(Camelot number 1..12, minor?) of a key name such as "F# minor"."""
    if key not in KEY_NAMES:
        return None
    assert key is not None
    tonic, mode = key.split(" ")
    pc = pitch_class(tonic)
    assert pc is not None
    minor = mode == "minor"
    major_pc = (pc + 3) % 12 if minor else pc  # a minor key shares its number with its relative major
    fifths = (major_pc * 7) % 12  # steps round the circle of fifths from C
    return (_C_MAJOR_CAMELOT - 1 + fifths) % 12 + 1, minor
