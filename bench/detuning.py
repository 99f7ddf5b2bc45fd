"""The arranged suite's detuning table: key and chords must not care how far a band sits from A=440.

A third of the arranged songs are detuned by 10-40 cents (`arranged_suite`); they are scored apart
from the songs in tune, with the error of beatwatch's tuning estimate (`summary.tuning_cents` against
the detune the song was rendered with). Then the first SWEEP_SONGS songs are rendered again at each of
SWEEP_CENTS, the far end of what records do, and each is set beside the same song in tune: the key
should be the same and the chords' majmin score within a point or two of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .accuracy import SongResult
from .arrange import ArrangedSpec

SWEEP_CENTS = (-40.0, 40.0)
SWEEP_SONGS = 2  # a00 and a01 of the suite: one minor, one major


def sweep_specs(specs: Sequence[ArrangedSpec]) -> list[ArrangedSpec]:
    """The first SWEEP_SONGS songs again at each of SWEEP_CENTS (the truth does not move with the detune)."""
    return [replace(spec, name=f"{spec.name}-at{cents:+.0f}c", detune_cents=cents)
            for spec in specs[:SWEEP_SONGS] for cents in SWEEP_CENTS]


def row(spec: ArrangedSpec, result: SongResult, sidecar: dict | None) -> dict:
    """One song's line: its detune, the tuning beatwatch heard, its key and how key and chords scored."""
    summary = (sidecar or {}).get("summary") or {}
    tuning = summary.get("tuning_cents")
    return {"song": spec.name, "detune_cents": spec.detune_cents, "tuning_cents": tuning,
            "tuning_error": None if tuning is None else round(abs(tuning - spec.detune_cents), 1),
            "key": summary.get("key"), "key_mirex": result.metrics.get("key_mirex"),
            "chord_majmin": result.metrics.get("chord_majmin")}


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _cell(value: float | None, width: int, digits: int = 3) -> str:
    return f"{'-' if value is None else f'{value:.{digits}f}':>{width}}"


def print_detuning(suite: Sequence[dict], sweep: Sequence[dict]) -> None:
    """The suite in tune against detuned, then each swept song beside the same song in tune."""
    print(f"\n{'detuning: songs':40} {'songs':>5} {'|tuning error| c':>16} {'key MIREX':>9} {'chords majmin':>13}")
    for label, rows in (("in tune", [r for r in suite if r["detune_cents"] == 0]),
                        ("detuned 10-40 cents", [r for r in suite if r["detune_cents"] != 0])):
        error, key, chords = (_mean([r[name] for r in rows]) for name in ("tuning_error", "key_mirex", "chord_majmin"))
        print(f"{label:40} {len(rows):>5} {_cell(error, 16, 1)} {_cell(key, 9)} {_cell(chords, 13)}")
    if not sweep:
        return
    by_name = {r["song"]: r for r in suite}
    print(f"\n{'detuning sweep: song':40} {'detune':>6} {'heard':>6} {'key':>9} {'key MIREX':>9} {'majmin':>7} "
          f"{'vs in tune':>10}")
    for name in dict.fromkeys(r["song"].rsplit("-at", 1)[0] for r in sweep):
        base = by_name.get(name)
        for r in ([base] if base else []) + [r for r in sweep if r["song"].rsplit("-at", 1)[0] == name]:
            compared = base is not None and r is not base
            change = (r["chord_majmin"] - base["chord_majmin"]
                      if compared and None not in (r["chord_majmin"], base["chord_majmin"]) else None)
            same = ("same key" if r["key"] == base["key"] else "KEY CHANGED") if compared else ""
            print(f"{r['song']:40} {r['detune_cents']:>+6.0f} {_cell(r['tuning_cents'], 6, 1)} {r['key'] or '-':>9} "
                  f"{_cell(r['key_mirex'], 9)} {_cell(r['chord_majmin'], 7)} "
                  f"{'' if change is None else f'{change:+.3f}':>10} {same}")
