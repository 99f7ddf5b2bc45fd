"""Functional names for lettered sections, from the evidence a listener would use.

A chorus repeats and is the loudest of what repeats; a verse repeats and is
not the chorus; an intro opens the song and an outro closes it without
coming back in between; a bridge is heard once, between choruses. Where
none of that holds the section is just `section`, and a long mix, whose
parts are tracks rather than verses, is named that way throughout.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

# More segments than this is a mix or a long set, not one song's form.
MAX_SONG_SECTIONS = 40
LABELS = ("intro", "verse", "chorus", "bridge", "outro", "section")
# Bar energy maps -60..0 dB to 0..1; a section this many dB above the quietest counts as fully loud.
ENERGY_DB_RANGE = 60.0
LOUDER_DB = 6.0


def name_sections(spans: list[tuple[int, int]], letters: list[str],
                  energy: np.ndarray) -> tuple[list[str], list[float]]:
    """A label per section and how strongly the evidence supports it (0..1)."""
    k = len(spans)
    if k > MAX_SONG_SECTIONS or k < 2:
        return ["section"] * k, [0.5] * k
    loud = np.array([float(np.mean(energy[a:b])) for a, b in spans]) * ENERGY_DB_RANGE
    level = np.clip((loud - loud.min()) / LOUDER_DB, 0.0, 1.0)
    counts = Counter(letters)
    # A letter heard only first and last frames the song (intro and outro alike): it is neither verse nor chorus.
    bookend = letters[0] if k > 2 and counts[letters[0]] == 2 and letters[-1] == letters[0] else None
    repeated = [letter for letter in dict.fromkeys(letters) if counts[letter] > 1 and letter != bookend]
    labels = ["section"] * k
    evidence = [0.3] * k
    chorus = verse = None
    margin = 0.0
    if repeated:
        scores = {letter: _chorus_score(letter, letters, repeated, loud) for letter in repeated}
        chorus = max(repeated, key=scores.__getitem__)
        others = [letter for letter in repeated if letter != chorus]
        if others:
            verse = max(others, key=lambda letter: (counts[letter], -letters.index(letter)))
        margin = scores[chorus] - max((scores[letter] for letter in others), default=0.0)
    for i, letter in enumerate(letters):
        if letter == chorus:
            labels[i], evidence[i] = "chorus", float(np.clip(0.5 + margin / 2, 0.0, 1.0))
        elif letter == verse:
            labels[i], evidence[i] = "verse", float(np.clip(0.4 + 0.1 * counts[letter], 0.0, 1.0))
    first_chorus = letters.index(chorus) if chorus else None
    last_chorus = k - 1 - letters[::-1].index(chorus) if chorus else None
    # Two sections are a song in two parts, not an intro to an outro: both need something between them.
    if k > 2 and (counts[letters[0]] == 1 or letters[0] == bookend):
        labels[0], evidence[0] = "intro", float(np.clip(0.9 - level[0] / 2, 0.0, 1.0))
    if k > 2 and (counts[letters[-1]] == 1 or letters[-1] == bookend):
        labels[-1], evidence[-1] = "outro", float(np.clip(0.9 - level[-1] / 2, 0.0, 1.0))
    for i in range(1, k - 1):
        if labels[i] == "section" and counts[letters[i]] == 1 and first_chorus is not None \
                and last_chorus is not None and first_chorus < i < last_chorus:
            labels[i], evidence[i] = "bridge", 0.6
    return labels, evidence


def _chorus_score(letter: str, letters: list[str], repeated: list[str], loud: np.ndarray) -> float:
    """How chorus-like a repeated letter is: louder than the other repeated letters (in 3 dB steps), heard more
    often, the last of them to come back and not the first to be heard. Loudness alone fails on a record
    compressed flat, where the order of the form still tells the chorus from the verse."""
    mine = float(np.mean([loud[i] for i, other in enumerate(letters) if other == letter]))
    rest = [loud[i] for i, other in enumerate(letters) if other in repeated and other != letter]
    louder = (mine - float(np.mean(rest))) / 3.0 if rest else 0.0
    last = max(i for i, other in enumerate(letters) if other in repeated)
    return (float(np.clip(louder, -1.0, 1.0)) + 0.25 * letters.count(letter)
            + 0.5 * (letters[last] == letter) - 0.5 * (repeated[0] == letter))
