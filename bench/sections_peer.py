"""The sections peer: McFee & Ellis's Laplacian structural decomposition, as librosa's gallery writes it.

"Analyzing song structure with spectral clustering" (ISMIR 2014), recipe
from librosa's "Laplacian segmentation" example: a beat-synchronous CQT,
a recurrence affinity smoothed along diagonals, a path affinity from
beat-to-beat MFCC similarity, their balanced sum, the normalised
Laplacian's first K eigenvectors clustered by k-means into K = 5 segment
types (the gallery's and MSAF's default). It gives boundaries and
cluster letters, no functional names, so it does not answer the label
measure. Answers are cached under the arranged suite's peers folder by
audio file name and PEERS_VERSION, like bench/peers.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .peer_cache import WORKERS, ensure_cached

PEERS_VERSION = 1
SAMPLE_RATE = 22050
BINS_PER_OCTAVE = 36
OCTAVES = 7
CLUSTERS = 5


def laplacian_sections(mono: np.ndarray, sr: int = SAMPLE_RATE) -> list[dict]:
    """[{"start", "end", "letter"}] covering the signal, in the gallery recipe's steps."""
    import librosa
    import scipy.linalg
    import scipy.ndimage
    import scipy.sparse.csgraph
    import sklearn.cluster

    cqt = librosa.amplitude_to_db(np.abs(librosa.cqt(y=mono, sr=sr, bins_per_octave=BINS_PER_OCTAVE,
                                                      n_bins=OCTAVES * BINS_PER_OCTAVE)), ref=np.max)
    _, beats = librosa.beat.beat_track(y=mono, sr=sr, trim=False)
    beats = librosa.util.fix_frames(beats, x_min=0)
    cqt_sync = librosa.util.sync(cqt, beats, aggregate=np.median)
    beat_times = librosa.frames_to_time(librosa.util.fix_frames(beats, x_min=0, x_max=cqt.shape[1]), sr=sr)
    recurrence = librosa.segment.recurrence_matrix(cqt_sync, width=3, mode="affinity", sym=True)
    smoothed = librosa.segment.timelag_filter(scipy.ndimage.median_filter)(recurrence, size=(1, 7))
    mfcc_sync = librosa.util.sync(librosa.feature.mfcc(y=mono, sr=sr), beats)
    path_distance = np.sum(np.diff(mfcc_sync, axis=1) ** 2, axis=0)
    path_sim = np.exp(-path_distance / np.median(path_distance))
    path = np.diag(path_sim, k=1) + np.diag(path_sim, k=-1)
    deg_path, deg_rec = np.sum(path, axis=1), np.sum(smoothed, axis=1)
    mu = deg_path.dot(deg_path + deg_rec) / np.sum((deg_path + deg_rec) ** 2)
    affinity = mu * smoothed + (1 - mu) * path
    laplacian = scipy.sparse.csgraph.laplacian(affinity, normed=True)
    _, evecs = scipy.linalg.eigh(laplacian)
    evecs = scipy.ndimage.median_filter(evecs, size=(9, 1))
    norms = np.cumsum(evecs ** 2, axis=1) ** 0.5
    features = evecs[:, :CLUSTERS] / norms[:, CLUSTERS - 1:CLUSTERS]
    ids = sklearn.cluster.KMeans(n_clusters=CLUSTERS, n_init=10, random_state=0).fit_predict(features)
    starts = np.concatenate(([0], 1 + np.flatnonzero(ids[:-1] != ids[1:])))
    letters: dict[int, str] = {}
    for i in ids[starts]:
        letters.setdefault(int(i), chr(ord("A") + len(letters)))
    edges = [float(beat_times[i]) for i in starts] + [len(mono) / sr]
    edges[0] = 0.0
    return [{"start": a, "end": b, "letter": letters[int(ids[i])], "label": letters[int(ids[i])]}
            for i, a, b in zip(starts, edges, edges[1:])]


def analyse(audio: Path) -> dict:
    """The peer's sections for one file, decoded by beatwatch's decoder like the other peers."""
    import librosa

    from beatwatch.analysis.audio.decode import decode, probe

    decoded = decode(probe(audio))
    mono = librosa.resample(np.ascontiguousarray(decoded.mono, dtype=np.float32), orig_sr=decoded.sample_rate,
                            target_sr=SAMPLE_RATE)
    return {"version": PEERS_VERSION, "sections": laplacian_sections(mono)}


def ensure_sections_peer(audio_files: Sequence[Path], cache_dir: Path, workers: int = WORKERS) -> dict[str, dict]:
    """Each file's Laplacian sections by audio file name, computing those not cached in `workers` processes."""
    return ensure_cached(audio_files, cache_dir, kind="sections", version=PEERS_VERSION, analyse=analyse,
                         workers=workers)
