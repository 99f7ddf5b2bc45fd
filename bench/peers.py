"""madmom's and Essentia's own answers on the benchmark songs, in the sidecar's shape, cached per song.

The peers are the libraries' own processors, as a user of each would chain them:

- madmom: RNNBeatProcessor + DBNBeatTrackingProcessor (beats), TempoEstimationProcessor on the same
  beat activation (the song's BPM), RNNDownBeatProcessor + DBNDownBeatTrackingProcessor over 3/4 and
  4/4 (downbeats and meter), CNNKeyRecognitionProcessor (key), CNNChordFeatureProcessor +
  CRFChordRecognitionProcessor (chords).
- Essentia: RhythmExtractor2013 "multifeature" (beats and BPM), KeyExtractor profileType "edma" (key).

Neither library gives a tempo curve, so each peer's curve is read off its own beats the plain way (the
median of the four intervals around each beat). Every file is decoded once, by beatwatch's decoder, so
all three see the same samples. Answers are cached under .bench/peers keyed by the audio file name
(which holds the song's spec hash) and PEERS_VERSION, so a rerun only computes new songs.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .peer_cache import WORKERS, ensure_cached

from .scoring import score

PEERS_VERSION = 1
PEERS = ("madmom", "essentia")
# The measures each peer answers; the others are not its to answer and show as "-".
PROVIDES: dict[str, tuple[str, ...]] = {
    "madmom": ("beat_f", "downbeat_f", "tempo_acc1", "tempo_curve", "meter", "chord_majmin", "key_mirex"),
    "essentia": ("beat_f", "tempo_acc1", "tempo_curve", "key_mirex"),
}
CURVE_HALF_WINDOW = 2

_processors: dict | None = None


def _load() -> dict:
    """Every peer processor, built once per process."""
    global _processors
    if _processors is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        # TempoEstimationProcessor's own default `method` argument warns that it is deprecated, on every file.
        warnings.filterwarnings("ignore", message="Usage of `method` is deprecated", category=UserWarning)
        import onnxruntime
        # madmom's ONNX graphs declare 1-D outputs and warn on every call that the real ones are 2-D.
        onnxruntime.set_default_logger_severity(3)
        import essentia
        essentia.log.infoActive = essentia.log.warningActive = False
        import essentia.standard as es
        from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor
        from madmom.features.chords import CNNChordFeatureProcessor, CRFChordRecognitionProcessor
        from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor
        from madmom.features.key import CNNKeyRecognitionProcessor
        from madmom.features.tempo import TempoEstimationProcessor
        _processors = {
            "beat_act": RNNBeatProcessor(), "beats": DBNBeatTrackingProcessor(fps=100),
            "tempo": TempoEstimationProcessor(fps=100),
            "downbeat_act": RNNDownBeatProcessor(),
            "downbeats": DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100),
            "key": CNNKeyRecognitionProcessor(),
            "chord_features": CNNChordFeatureProcessor(), "chords": CRFChordRecognitionProcessor(),
            "rhythm": es.RhythmExtractor2013(method="multifeature"),
            "key_edma": es.KeyExtractor(profileType="edma"),
        }
    return _processors


def local_tempo(times: np.ndarray) -> list[dict]:
    """A tempo curve from beat times: at each beat, 60 / the median of the intervals around it."""
    if len(times) < 3:
        return []
    intervals = np.diff(times)
    points = []
    for i, time in enumerate(times):
        lo, hi = max(i - CURVE_HALF_WINDOW, 0), min(i + CURVE_HALF_WINDOW, len(intervals))
        points.append({"time": float(time), "bpm": 60.0 / float(np.median(intervals[lo:hi]))})
    return points


def _meter(positions: np.ndarray) -> int | None:
    starts = np.flatnonzero(positions == 1)
    lengths = [int(positions[a:b].max()) for a, b in zip(starts[:-1], starts[1:])]
    if not lengths:
        return int(positions.max()) if len(positions) else None
    values, counts = np.unique(lengths, return_counts=True)
    return int(values[np.argmax(counts)])


def analyse(audio: Path) -> dict:
    """Both peers' answers for one file: {"madmom": doc, "madmom_bars": doc, "essentia": doc}, sidecar-shaped."""
    from madmom.audio.signal import Signal
    from madmom.features.key import key_prediction_to_label

    from beatwatch.analysis.audio.decode import decode, probe

    p = _load()
    mono = np.ascontiguousarray(decode(probe(audio)).mono, dtype=np.float32)
    signal = Signal(mono, sample_rate=44100, num_channels=1)
    beat_act = p["beat_act"](signal)
    beats = np.asarray(p["beats"](beat_act), dtype=float)
    tempi = np.asarray(p["tempo"](beat_act))
    bars = np.asarray(p["downbeats"](p["downbeat_act"](signal)), dtype=float).reshape(-1, 2)
    key = key_prediction_to_label(p["key"](signal))
    chords = p["chords"](p["chord_features"](signal))
    madmom = {
        "summary": {"bpm": float(tempi[0, 0]) if len(tempi) else None, "key": str(key)},
        "timeline": {
            "beats": [{"time": float(t)} for t in beats],
            "tempo": local_tempo(beats),
            "chords": [{"start": float(c["start"]), "end": float(c["end"]), "label": str(c["label"])} for c in chords],
        },
    }
    madmom_bars = {
        "summary": {"meter": _meter(bars[:, 1].astype(int))},
        "timeline": {"beats": [{"time": float(t), "position": int(pos)} for t, pos in bars]},
    }
    bpm, ticks, *_ = p["rhythm"](mono)
    tonic, scale, _strength = p["key_edma"](mono)
    essentia = {
        "summary": {"bpm": float(bpm), "key": f"{tonic} {scale}"},
        "timeline": {"beats": [{"time": float(t)} for t in ticks], "tempo": local_tempo(np.asarray(ticks, float))},
    }
    return {"version": PEERS_VERSION, "madmom": madmom, "madmom_bars": madmom_bars, "essentia": essentia}


def ensure_peers(audio_files: Sequence[Path], cache_dir: Path, workers: int = WORKERS) -> dict[str, dict]:
    """Each file's peer answers by audio file name, computing (in `workers` processes) those not cached."""
    return ensure_cached(audio_files, cache_dir, kind="peers", version=PEERS_VERSION, analyse=analyse,
                         workers=workers)


def peer_metrics(truth: dict, answers: dict | None) -> dict[str, dict[str, float]]:
    """Per peer, the measures it answers, scored exactly as beatwatch's sidecar is."""
    if answers is None:
        return {peer: {} for peer in PEERS}
    out: dict[str, dict[str, float]] = {}
    for peer in PEERS:
        metrics = score(truth, answers[peer])
        if peer == "madmom":
            bars = score(truth, answers["madmom_bars"])
            metrics.update(downbeat_f=bars["downbeat_f"], meter=bars["meter"])
        out[peer] = {k: v for k, v in metrics.items() if k in PROVIDES[peer]}
    return out
