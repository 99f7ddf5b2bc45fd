"""Every neural network of the analysis, each loaded once, behind one list-in, list-out surface.

The madmom networks run in onnxruntime sessions configured here rather than
through madmom's runtime, which accepts only the CPU provider and keeps
onnxruntime's memory arena: the arena grows to the largest input a session
has seen and never gives it back (600 MB after one 5-minute chunk through
the eight downbeat networks). Sessions here run without it, on the
providers of the resolved device.

Each method takes a list of inputs and returns a list of outputs, so a
caller holding requests from several files (the daemon's inference process)
can hand them over in one call. The downbeat ensemble runs them as one true
batch (`blstm_graph`); the key CNN runs a song's equal windows as batches
(`conv_graph`); the chord CNN and the tag graphs take one input at a time,
so their lists are run in turn.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from madmom.features.chords import _cnncfp_avg, _cnncfp_pad, _cnncfp_superframes
from madmom.ml.nn.activations import softmax
from madmom.models import CHORDS_CNN_FEAT, DOWNBEATS_BLSTM, KEY_CNN

from .blstm_graph import INPUT, LENGTHS, OUTPUT, ensemble_graph
from .conv_graph import INPUT as CNN_INPUT, nchw_graph
from .device import Device, resolve_device
from .tags import Tagger

# madmom's ONNX graphs declare 1-D outputs and warn on every call that the real ones are 2-D.
onnxruntime.set_default_logger_severity(3)

# Methods whose inputs run as one batch: the only ones worth waiting for more requests to join.
BATCHED = frozenset({"downbeats"})
# Key windows per CNN call. On the CPU 4 ran fastest (0.46 s for a 4-minute song's 96 windows, against 0.51
# one at a time and 0.57 all at once, whose activations no longer fit the cache); a GPU gets fewer calls.
KEY_BATCH = 4


def session(model: str | bytes, device: Device, threads: int | None) -> onnxruntime.InferenceSession:
    """An onnxruntime session without the memory arena, on the device's providers."""
    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(model, sess_options=options, providers=device.providers)


class _Feedforward:
    """A madmom CNN file as the batched NCHW graph of `conv_graph`: (batch, frames, bins) in, no state."""

    def __init__(self, path: str, device: Device, threads: int | None) -> None:
        self._session = session(nchw_graph(onnx.load(path)), device, threads)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {CNN_INPUT: np.asarray(batch, dtype=np.float32)})[0]


class Networks:
    """The downbeat ensemble, chord-feature CNN, key CNN and tag models of one process."""

    def __init__(self, *, device: str = "auto", threads: int | None = None,
                 models_dir: os.PathLike | str | None = None) -> None:
        """device: inference.device (raises DeviceError when it cannot be honoured);
        threads: intra-op threads per session (1 in daemon workers, which already fill the CPUs)."""
        self.device = resolve_device(device)
        self._downbeats = session(ensemble_graph(list(DOWNBEATS_BLSTM)), self.device, threads)
        self._chords = _Feedforward(CHORDS_CNN_FEAT[0], self.device, threads)
        self._key = [_Feedforward(path, self.device, threads) for path in KEY_CNN]
        self._tagger = Tagger(Path(models_dir) if models_dir is not None else None)

    @property
    def tag_models(self) -> list[str]:
        return self._tagger.models

    def describe_tags(self) -> str:
        return self._tagger.describe()

    def downbeats(self, features: list[np.ndarray]) -> list[np.ndarray]:
        """Each (frames, dims) rhythm-feature matrix -> (frames, 2) beat and downbeat probabilities."""
        lengths = np.array([len(f) for f in features], dtype=np.int32)
        if len(features) == 0:
            return []
        batch = np.zeros((max(lengths.max(), 1), len(features), features[0].shape[1]), dtype=np.float32)
        for column, values in enumerate(features):
            batch[:len(values), column] = values
        out = self._downbeats.run([OUTPUT], {INPUT: batch, LENGTHS: np.maximum(lengths, 1)})[0]
        return [np.ascontiguousarray(out[:length, column, 1:]) for column, length in enumerate(lengths)]

    def chord_features(self, spectrograms: list[np.ndarray]) -> list[np.ndarray]:
        """Each chord spectrogram -> madmom's (frames, 128) chord features on the same clock."""
        return [np.asarray(_cnncfp_avg(_cnncfp_superframes(self._chords(_cnncfp_pad(spec)[None])[0])),
                           dtype=np.float32) for spec in spectrograms]

    def key(self, spectrograms: list[np.ndarray]) -> list[np.ndarray]:
        """Each key spectrogram slice -> its softmax over madmom's 24 KEY_LABELS. Slices of one length (a
        song's overlapping windows) run KEY_BATCH at a time."""
        out: list[np.ndarray] = [np.empty(0)] * len(spectrograms)
        by_length: dict[int, list[int]] = {}
        for index, spec in enumerate(spectrograms):
            by_length.setdefault(len(spec), []).append(index)
        for indices in by_length.values():
            for lo in range(0, len(indices), KEY_BATCH):
                group = indices[lo:lo + KEY_BATCH]
                batch = np.stack([spectrograms[i] for i in group])
                scores = softmax(np.mean([cnn(batch) for cnn in self._key], axis=0))
                for i, row in zip(group, scores):
                    out[i] = row
        return out

    def tags(self, audio: list[np.ndarray]) -> list[list[dict]]:
        """Each 16 kHz mono signal -> every class of every tag model with its average score."""
        return [self._tagger(signal) for signal in audio]
