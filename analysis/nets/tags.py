"""ML tags: every classifier in the models folder, its scores averaged over the track.

A Tagger loads each graph once and is reused for every file. The MusiCNN mel
patches (Essentia's own TensorflowInputMusiCNN front end, exactly what
TensorflowPredictMusiCNN feeds its graph) are computed once per track and
shared by every MusiCNN-family model, and zoo classification heads reuse those
models' embeddings, so a further model costs one network pass, not another
front end. Only Essentia's bundled TensorFlow runs here: the `tensorflow`
Python package never loads in this process (see beatwatch.analysis.nets.models_build).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np

from .zoo import (FRAME_SIZE, HEAD_ALGORITHM, HOP_SIZE, MEL_BANDS, MUSICNN_ALGORITHM, PATCH_FRAMES, TAG_SAMPLE_RATE,
                  ModelFileError, ModelInfo, model_files, read_model)

# Essentia's bundled TensorFlow 2.5 reads these when it loads, so they are set before essentia is first
# imported: it logs CUDA probing at import (keep stderr for real errors), and it dies with SIGFPE on the
# first graph run if oneDNN kernels are on.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

import essentia  # noqa: E402

essentia.log.infoActive = False  # it reports every graph it loads on stdout
essentia.log.warningActive = False

import essentia.standard as es  # noqa: E402

log = logging.getLogger(__name__)

# Patches are non-overlapping; a longer track is sampled by this many patches spread evenly over it,
# which keeps the cost per song flat (about 50 ms per patch per model here) while the average still
# spans the whole track. On the rendered bench songs 8 patches kept 98 % of each model's top 5.
MAX_PATCHES = 8
# Essentia's CPU TensorFlow ran single patches fastest here (48 ms vs 53 ms at 4 and 78 ms at 16 per patch).
BATCH_SIZE = 1
# Zoo algorithms that take 16 kHz audio and name their graph, input and output nodes like MusiCNN's.
AUDIO_ALGORITHMS = frozenset({"TensorflowPredictVGGish", "TensorflowPredictEffnetDiscogs", "TensorflowPredictMAEST"})


def patch_starts(n_samples: int, max_patches: int | None = MAX_PATCHES) -> np.ndarray:
    """First frame of each whole non-overlapping patch, at most `max_patches` of them spread evenly.

    Frames are centred every HOP_SIZE samples from sample 0, as Essentia's FrameCutter cuts them.
    """
    count = (1 + n_samples // HOP_SIZE) // PATCH_FRAMES
    chosen = np.arange(count)
    if max_patches and count > max_patches:
        chosen = np.linspace(0, count - 1, max_patches).round().astype(int)
    return chosen * PATCH_FRAMES


class MelPatches:
    """Mono 16 kHz audio -> MusiCNN input patches, shape (n, 187, 96), computed only where patches are taken."""

    def __init__(self, max_patches: int | None = MAX_PATCHES) -> None:
        self.max_patches = max_patches
        self._bands = es.TensorflowInputMusiCNN()

    def __call__(self, mono_16k: np.ndarray) -> np.ndarray:
        if len(mono_16k) == 0:
            return np.zeros((0, PATCH_FRAMES, MEL_BANDS), np.float32)
        starts = patch_starts(len(mono_16k), self.max_patches)
        if len(starts) == 0:
            # Shorter than one patch: repeat the frames there are, as musicnn was trained to pad short clips.
            frames = self._frames(mono_16k, 0, 1 + len(mono_16k) // HOP_SIZE)
            return np.resize(frames, (1, PATCH_FRAMES, MEL_BANDS))
        return np.stack([self._frames(mono_16k, start, PATCH_FRAMES) for start in starts])

    def _frames(self, signal: np.ndarray, first: int, count: int) -> np.ndarray:
        """Mel bands of frames first..first+count-1, zero-padded past either end of the signal."""
        start = first * HOP_SIZE - FRAME_SIZE // 2
        segment = np.zeros((count - 1) * HOP_SIZE + FRAME_SIZE, np.float32)
        lo, hi = max(start, 0), min(start + len(segment), len(signal))
        segment[lo - start:hi - start] = signal[lo:hi]
        windows = np.lib.stride_tricks.sliding_window_view(segment, FRAME_SIZE)[::HOP_SIZE]
        return np.stack([self._bands(np.ascontiguousarray(window)) for window in windows])


class GraphModel:
    """A frozen graph run by Essentia's TensorflowPredict on batches the Tagger prepares (patches or embeddings)."""

    def __init__(self, info: ModelInfo, probe: np.ndarray, extra_outputs: tuple[str, ...] = ()) -> None:
        """Load the graph and run it once on `probe` (one zero input), so a graph whose input shape or
        class count does not match its json fails here, once, instead of on every track."""
        self.info = info
        self.outputs = (info.output, *extra_outputs)
        self._predict = es.TensorflowPredict(graphFilename=str(info.graph), inputs=[info.input],
                                             outputs=list(self.outputs))
        self.widths = {name: values.shape[1] for name, values in self(probe).items()}
        if self.widths[info.output] != len(info.classes):
            raise ValueError(f"{info.output} gives {self.widths[info.output]} scores "
                             f"but {info.metadata.name} lists {len(info.classes)} classes")

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """batch: (n, ...) inputs -> {output node: (n, width)}, in batches of BATCH_SIZE."""
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.outputs}
        for begin in range(0, len(batch), BATCH_SIZE):
            chunk = batch[begin:begin + BATCH_SIZE]
            pool = essentia.Pool()
            # Essentia tensors are 4-D; TensorflowPredict squeezes the padding axes back out.
            pool.set(self.info.input, chunk.reshape(len(chunk), *(1,) * (4 - chunk.ndim), *chunk.shape[1:]))
            result = self._predict(pool)
            for name in self.outputs:
                parts[name].append(np.asarray(result[name]).reshape(len(chunk), -1))
        return {name: np.concatenate(values) for name, values in parts.items()}


class AudioModel:
    """A zoo model whose own Essentia algorithm takes the 16 kHz audio and cuts its own patches."""

    def __init__(self, info: ModelInfo) -> None:
        self.info = info
        self._predict = getattr(es, info.algorithm)(graphFilename=str(info.graph), input=info.input,
                                                    output=info.output)

    def __call__(self, mono_16k: np.ndarray) -> np.ndarray:
        return np.asarray(self._predict(mono_16k)).reshape(-1, len(self.info.classes))


Model = TypeVar("Model", GraphModel, AudioModel)


class Tagger:
    """Every classifier in one models folder, loaded once; call it with a track's 16 kHz mono signal."""

    def __init__(self, models_dir: Path | None, *, max_patches: int | None = MAX_PATCHES) -> None:
        self.models_dir = models_dir
        self.skipped: dict[str, str] = {}
        self.patches = MelPatches(max_patches)
        musicnn, heads, audio = self._plan(self._read(models_dir))
        patch = np.zeros((1, PATCH_FRAMES, MEL_BANDS), np.float32)
        self._musicnn = self._load_all(musicnn, lambda info: GraphModel(info, patch, _embedding_outputs(info, heads)))
        self._heads: dict[str, list[GraphModel]] = {}
        for base in self._musicnn:
            if base.info.name in heads and base.info.embedding_output:
                embedding = np.zeros((1, base.widths[base.info.embedding_output]), np.float32)
                self._heads[base.info.name] = self._load_all(heads.pop(base.info.name),
                                                             partial(GraphModel, probe=embedding))
        for name, group in heads.items():
            for info in group:
                self.skipped[info.name] = f"its embedding model {name} did not load"
        self._audio = self._load_all(audio, AudioModel)

    @property
    def models(self) -> list[str]:
        """Names of the loaded classifiers, as `summary.tags[].model` spells them."""
        heads = [head.info.name for group in self._heads.values() for head in group]
        return sorted([model.info.name for model in self._musicnn] + [model.info.name for model in self._audio] + heads)

    def describe(self) -> str:
        """The sidecar's `analyzer.analyses.tags`: which models ran and how the audio reached them."""
        skipped = [f"{name} skipped: {why}" for name, why in sorted(self.skipped.items())]
        if not self.models:
            where = self.models_dir if self.models_dir is not None else "no models folder"
            return f"not configured: no usable models in {where}" + (f" ({'; '.join(skipped)})" if skipped else "")
        parts = []
        if self._musicnn:
            names = [model.info.name for model in self._musicnn]
            names += [f"{head.info.name} on {base} embeddings" for base, group in self._heads.items() for head in group]
            limit = f"up to {self.patches.max_patches}" if self.patches.max_patches else "all"
            parts.append(f"{', '.join(names)} (essentia TensorflowPredict on MusiCNN mel patches, "
                         f"{limit} non-overlapping 3 s patches per track, scores averaged)")
        parts += [f"{model.info.name} (essentia {model.info.algorithm}, scores averaged)" for model in self._audio]
        return "; ".join(parts + skipped)

    def __call__(self, mono_16k: np.ndarray) -> list[dict]:
        """Every class of every model with its track-average score, best first; [] without models or audio."""
        if len(mono_16k) == 0 or not self.models:
            return []
        tags: list[dict] = []
        if self._musicnn:
            patches = self.patches(mono_16k)
            for model in self._musicnn:
                outputs = model(patches)
                tags += _scores(model.info, outputs[model.info.output])
                for head in self._heads.get(model.info.name, []):
                    assert model.info.embedding_output, "heads are planned only on models with an embeddings output"
                    tags += _scores(head.info, head(outputs[model.info.embedding_output])[head.info.output])
        for audio_model in self._audio:
            tags += _scores(audio_model.info, audio_model(mono_16k))
        return sorted(tags, key=lambda tag: (-tag["score"], tag["model"]))

    def _plan(self, infos: list[ModelInfo]) -> tuple[list[ModelInfo], dict[str, list[ModelInfo]], list[ModelInfo]]:
        """Sort the folder's models into MusiCNN-input graphs, heads on their embeddings and audio models."""
        usable = []
        for info in infos:
            if info.sample_rate != TAG_SAMPLE_RATE:
                self.skipped[info.name] = f"needs {info.sample_rate} Hz audio, the tagger runs at {TAG_SAMPLE_RATE}"
            elif info.algorithm not in (MUSICNN_ALGORITHM, HEAD_ALGORITHM, *AUDIO_ALGORITHMS):
                self.skipped[info.name] = f"algorithm {info.algorithm} is not supported"
            else:
                usable.append(info)
        musicnn = {info.name: info for info in usable if info.algorithm == MUSICNN_ALGORITHM}
        heads: dict[str, list[ModelInfo]] = {}
        for info in usable:
            if info.algorithm != HEAD_ALGORITHM:
                continue
            base = _embedding_source(info, musicnn)
            if base is None:
                self.skipped[info.name] = (f"needs embeddings of {info.embedding_model or 'an unnamed model'}, "
                                           "which is not a MusiCNN model with an embeddings output here")
            else:
                heads.setdefault(base.name, []).append(info)
        audio = [info for info in usable if info.algorithm in AUDIO_ALGORITHMS]
        return list(musicnn.values()), heads, audio

    def _read(self, models_dir: Path | None) -> list[ModelInfo]:
        infos = []
        for path in model_files(models_dir) if models_dir is not None else []:
            try:
                infos.append(read_model(path))
            except ModelFileError as exc:
                self.skipped[path.stem] = str(exc)
        return infos

    def _load_all(self, infos: list[ModelInfo], load: Callable[[ModelInfo], Model]) -> list[Model]:
        """The models that load; each one that does not is kept with its reason, never stopping the others."""
        loaded = []
        for info in infos:
            try:
                loaded.append(load(info))
            except (RuntimeError, TypeError, ValueError) as exc:
                log.warning("tag model %s not loaded: %s", info.graph, exc)
                self.skipped[info.name] = f"{info.graph.name} did not load ({exc})"
        return loaded


def _embedding_source(head: ModelInfo, musicnn: dict[str, ModelInfo]) -> ModelInfo | None:
    """The MusiCNN model whose embeddings feed a head; the zoo's `msd-musicnn-1` also names `msd-musicnn`."""
    name = head.embedding_model or ""
    base = musicnn.get(name) or musicnn.get(re.sub(r"-\d+$", "", name))
    return base if base is not None and base.embedding_output else None


def _embedding_outputs(info: ModelInfo, heads: dict[str, list[ModelInfo]]) -> tuple[str, ...]:
    return (info.embedding_output,) if heads.get(info.name) and info.embedding_output else ()


def _scores(info: ModelInfo, predictions: np.ndarray) -> list[dict]:
    if len(predictions) == 0:
        return []
    means = predictions.mean(axis=0)
    return [{"label": label, "score": round(float(score), 4), "model": info.name}
            for label, score in zip(info.classes, means, strict=True)]

