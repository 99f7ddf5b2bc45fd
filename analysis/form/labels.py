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


def name_sections(spans: list[tuple[int, int]], letters: list[str],
                  energy: np.ndarray) -> tuple[list[str], list[float]]:
    """A label per section and how strongly the evidence supports it (0..1)."""
    k = len(spans)
    if k > MAX_SONG_SECTIONS or k < 2:
        return ["section"] * k, [0.5] * k
    loud = np.array([float(np.mean(energy[a:b])) for a, b in spans])
    span = float(loud.max() - loud.min()) or 1.0
    level = (loud - loud.min()) / span
    counts = Counter(letters)
    # A letter heard only first and last frames the song (intro and outro alike): it is neither verse nor chorus.
    bookend = letters[0] if k > 2 and counts[letters[0]] == 2 and letters[-1] == letters[0] else None
    repeated = [letter for letter in dict.fromkeys(letters) if counts[letter] > 1 and letter != bookend]
    mean_level = {letter: float(np.mean([level[i] for i in range(k) if letters[i] == letter])) for letter in repeated}
    labels = ["section"] * k
    evidence = [0.3] * k
    chorus = verse = None
    if repeated:
        chorus = max(repeated, key=lambda letter: (mean_level[letter], counts[letter]))
        others = [letter for letter in repeated if letter != chorus]
        if others:
            verse = max(others, key=lambda letter: (counts[letter], -letters.index(letter)))
    for i, letter in enumerate(letters):
        if letter == chorus:
            gap = mean_level[chorus] - (mean_level[verse] if verse else float(np.mean(level)))
            labels[i], evidence[i] = "chorus", float(np.clip(0.6 + gap, 0.0, 1.0))
        elif letter == verse:
            labels[i], evidence[i] = "verse", float(np.clip(0.5 + 0.1 * counts[letter], 0.0, 1.0))
    first_chorus = letters.index(chorus) if chorus else None
    last_chorus = k - 1 - letters[::-1].index(chorus) if chorus else None
    if counts[letters[0]] == 1 or letters[0] == bookend:
        labels[0], evidence[0] = "intro", float(np.clip(0.9 - level[0] / 2, 0.0, 1.0))
    if counts[letters[-1]] == 1 or letters[-1] == bookend:
        labels[-1], evidence[-1] = "outro", float(np.clip(0.9 - level[-1] / 2, 0.0, 1.0))
    for i in range(1, k - 1):
        if labels[i] == "section" and counts[letters[i]] == 1 and first_chorus is not None \
                and last_chorus is not None and first_chorus < i < last_chorus:
            labels[i], evidence[i] = "bridge", 0.6
    return labels, evidence
