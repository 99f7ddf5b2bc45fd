"""Camelot and Open Key names of all 24 keys, against the published wheels (Mixed In Key, Traktor)."""

from __future__ import annotations

import pytest

from beatwatch.analysis.harmony.notation import camelot, open_key
from beatwatch.analysis.harmony.spelling import KEY_NAMES

# The Camelot wheel as Mixed In Key prints it.
CAMELOT_WHEEL = {
    "1A": "G# minor", "1B": "B major", "2A": "D# minor", "2B": "F# major", "3A": "Bb minor", "3B": "Db major",
    "4A": "F minor", "4B": "Ab major", "5A": "C minor", "5B": "Eb major", "6A": "G minor", "6B": "Bb major",
    "7A": "D minor", "7B": "F major", "8A": "A minor", "8B": "C major", "9A": "E minor", "9B": "G major",
    "10A": "B minor", "10B": "D major", "11A": "F# minor", "11B": "A major", "12A": "C# minor", "12B": "E major",
}
# Traktor's Open Key wheel.
OPEN_KEY_WHEEL = {
    "1d": "C major", "2d": "G major", "3d": "D major", "4d": "A major", "5d": "E major", "6d": "B major",
    "7d": "F# major", "8d": "Db major", "9d": "Ab major", "10d": "Eb major", "11d": "Bb major", "12d": "F major",
    "1m": "A minor", "2m": "E minor", "3m": "B minor", "4m": "F# minor", "5m": "C# minor", "6m": "G# minor",
    "7m": "D# minor", "8m": "Bb minor", "9m": "F minor", "10m": "C minor", "11m": "G minor", "12m": "D minor",
}


@pytest.mark.parametrize("key", KEY_NAMES)
def test_every_key_has_its_published_camelot_and_open_key_name(key):
    assert CAMELOT_WHEEL[camelot(key)] == key
    assert OPEN_KEY_WHEEL[open_key(key)] == key


def test_the_24_names_are_distinct_and_cover_both_wheels():
    assert {camelot(k) for k in KEY_NAMES} == set(CAMELOT_WHEEL)
    assert {open_key(k) for k in KEY_NAMES} == set(OPEN_KEY_WHEEL)


@pytest.mark.parametrize("key", [None, "", "H major", "C dorian", "A#:maj", "Cb major"])
def test_no_key_or_a_name_outside_the_24_has_no_notation(key):
    assert camelot(key) is None and open_key(key) is None
