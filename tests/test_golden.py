"""A rendered song's sidecar, byte for byte as the release before the restructuring wrote it.

Moving modules, renaming and sharing code must not change a single result:
this holds every field but where the file lay, how long it took and which
device ran the networks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.songs import render_progression

GOLDEN = Path(__file__).parent / "data" / "sidecar_golden.json"
MODELS = Path(__file__).resolve().parent.parent / "models"


def comparable(document: dict) -> dict:
    document = json.loads(json.dumps(document, sort_keys=True))
    document.pop("performance")
    document["file"].pop("path")
    for key in ("device", "device_reason"):
        document["analyzer"].pop(key)
    return document


@pytest.mark.slow
def test_sidecar_matches_the_release_before(tmp_path):
    if not (MODELS / "msd-musicnn.pb").is_file():
        pytest.skip("tag models not built (make install builds them)")
    from beatwatch.analysis.nets.networks import Networks
    from beatwatch.analysis.pipeline import Analyzer

    song = render_progression(tmp_path, "i-VI-III-VII", tonic=9, bars=8, style="easy", melody=True)
    document = Analyzer(Networks(models_dir=MODELS)).analyze(song.audio)
    expected = comparable(json.loads(GOLDEN.read_text()))
    got = comparable(document)
    assert got["summary"] == expected["summary"]
    assert got["timeline"] == expected["timeline"]
    assert got == expected
