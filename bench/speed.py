"""`make bench`: throughput of the daemon on a batch of 3-5 minute songs, the peers on the same files,
per-stage time, the daemon's peak memory on a 3-hour file, and what a daemon left idle on a laptop holds
once its workers exited (workers.idle_exit_s) and what the first job after that costs.

The daemon runs the full analysis, tags included (the models built into models/ by `make install`), once
with each inference mode (`in_worker`, `process`), and with `device = "cuda"` too where onnxruntime has a
GPU; the faster CPU mode is the one the ratio and the 3-hour file use.

Songs are rendered once into .bench/speed/ (and the 3-hour mix is joined from them), so reruns only measure.
The peers are madmom's and Essentia's own processors for the same analyses, run one after another in one
process on audio decoded once, with every model loaded before the clock starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnxruntime
import psutil

from beatwatch.analysis.audio.decode import probe

from .songs import _bars, benchmark_suite, ensure_suite

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".bench" / "speed"
BATCH = 8
MIX_S = 3 * 3600
MIN_REALTIME, MIN_RATIO, MAX_PEAK_MB = 40.0, 2.0, 2048.0
# The idle run lets workers exit after IDLE_EXIT_S (the default is minutes; the memory it leads to is the same).
IDLE_EXIT_S, MAX_IDLE_MB = 10.0, 150.0
BEATWATCH = str(Path(sys.executable).with_name("beatwatch"))


def batch_specs(n: int = BATCH) -> list:
    """n songs of 3-5 minutes drawn from the accuracy suite's variety."""
    rng = random.Random(7)
    specs = []
    for spec in benchmark_suite(n, seed=7, edges=False)[:n]:
        bars = _bars(rng.uniform(180, 300), spec.tempo, spec.meter)
        specs.append(dataclasses.replace(spec, name=f"long-{spec.name}", bars=bars,
                                         modulation=None, tempo=dataclasses.replace(spec.tempo, step_bar=min(
                                             spec.tempo.step_bar, bars - 1))))
    return specs


def three_hour_mix(songs: list[Path]) -> Path:
    """The batch's songs joined (through the concat filter, which takes mixed formats) and looped to MIX_S."""
    mix = OUT / "mix-3h.mp3"
    if mix.exists() and probe(mix).duration >= MIX_S - 1:
        return mix
    cycle = OUT / "mix-cycle.wav"
    inputs = [arg for song in songs for arg in ("-i", str(song))]
    joined = "".join(f"[{i}:a]aresample=44100,aformat=channel_layouts=stereo[a{i}];" for i in range(len(songs)))
    joined += "".join(f"[a{i}]" for i in range(len(songs))) + f"concat=n={len(songs)}:v=0:a=1[out]"
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", joined, "-map", "[out]", str(cycle)],
                   check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(cycle), "-t", str(MIX_S),
                    "-b:a", "128k", str(mix)], check=True)
    cycle.unlink()
    return mix


def run_daemon(files: list[Path], *, mode: str, device: str = "cpu", watch_memory: bool) -> dict:
    """Start `beatwatch run` on an inbox holding `files`; wait until every job ended; read the DB."""
    with tempfile.TemporaryDirectory(prefix="bw-bench-") as tmp:
        root = Path(tmp)
        inbox = root / "inbox"
        inbox.mkdir()
        config = root / "bench.toml"
        config.write_text(f"[watch]\nsettle_s = 0.5\n[jobs]\ntimeout_s = 7200\nmemory_mb = 4096\n"
                          f"[inference]\nmode = \"{mode}\"\ndevice = \"{device}\"\n"
                          f"[models]\ndir = \"{ROOT / 'models'}\"\n")
        daemon = subprocess.Popen([BEATWATCH, "run", "--config", str(config)], cwd=root,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_ready(root)
            for f in files:
                shutil.copyfile(f, inbox / f.name)
            peak = 0.0
            while not _drained(root, len(files)):
                if watch_memory:
                    peak = max(peak, _tree_rss_mb(daemon.pid))
                time.sleep(0.2)
            rows = _query(root, "SELECT audio_duration, wall_s, started_at, finished_at, state FROM jobs")
            stages: dict[str, float] = {}
            documents = [json.loads(sidecar.read_text()) for sidecar in inbox.glob("*.beatwatch.json")]
            for document in documents:
                for name, seconds in document["performance"]["stages"].items():
                    stages[name] = stages.get(name, 0.0) + seconds
            stages["writing"] = writing_s(documents, root / "rewrite")
            status = json.loads(_query(root, "SELECT data FROM host_status")[0][0])
            tags = sum(bool(json.loads(s.read_text())["summary"]["tags"]) for s in inbox.glob("*.beatwatch.json"))
        finally:
            daemon.terminate()
            daemon.wait(60)
    audio = sum(r[0] or 0 for r in rows)
    span = max(r[3] for r in rows) - min(r[2] for r in rows)
    return {"audio_s": audio, "wall_s": span, "realtime": audio / span, "failed": sum(r[4] != "done" for r in rows),
            "stages": stages, "peak_mb": peak, "workers": len(status["workers"]), "inference": status["inference"],
            "mode": mode, "device": device, "tagged": tags}


def run_idle(songs: list[Path], *, mode: str) -> dict:
    """The daemon tree's RSS with its workers loaded and idle, then after they exited (workers.idle_exit_s), and
    the first job after that: its latency from the file landing in the inbox to the job done, and how much more
    that is than a warm worker's (latency less the job's own analysis time, cold minus warm: the workers' start
    and model loading)."""
    with tempfile.TemporaryDirectory(prefix="bw-bench-idle-") as tmp:
        root = Path(tmp)
        inbox = root / "inbox"
        inbox.mkdir()
        config = root / "bench.toml"
        # No CPU throttle: on a shared machine it would hold the jobs, and a worker woken for a held job idles
        # out again, so the latency would measure the neighbours.
        config.write_text(f"[watch]\nsettle_s = 0.5\n[workers]\nidle_exit_s = {IDLE_EXIT_S}\n"
                          f"[resources]\nmax_cpu_percent = 100\n"
                          f"[inference]\nmode = \"{mode}\"\n[models]\ndir = \"{ROOT / 'models'}\"\n")
        daemon = subprocess.Popen([BEATWATCH, "run", "--config", str(config)], cwd=root,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_ready(root)
            loaded_mb = _tree_rss_mb(daemon.pid)
            warm_s = _latency(root, inbox, songs[0], expected=1)
            _wait_asleep(root)
            samples = []
            for _ in range(5):
                time.sleep(0.5)
                samples.append(_tree_rss_mb(daemon.pid))
            idle_mb = sorted(samples)[len(samples) // 2]
            processes = _tree_processes(daemon.pid)
            cold_s = _latency(root, inbox, songs[1], expected=2)
            walls = [row[0] or 0.0 for row in _query(root, "SELECT wall_s FROM jobs ORDER BY id")]
        finally:
            daemon.terminate()
            daemon.wait(60)
    return {"mode": mode, "loaded_mb": loaded_mb, "idle_mb": idle_mb, "processes": processes, "warm_s": warm_s,
            "cold_s": cold_s, "wake_s": (cold_s - walls[1]) - (warm_s - walls[0])}


def _latency(root: Path, inbox: Path, song: Path, *, expected: int) -> float:
    started = time.monotonic()
    shutil.copyfile(song, inbox / song.name)
    while not _drained(root, expected):
        time.sleep(0.1)
    return time.monotonic() - started


def _wait_asleep(root: Path) -> None:
    deadline = time.monotonic() + IDLE_EXIT_S + 120
    while time.monotonic() < deadline:
        rows = _query(root, "SELECT data FROM host_status")
        status = json.loads(rows[0][0]) if rows else {}
        if status.get("workers_asleep") and not status.get("workers"):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the idle workers did not exit within {IDLE_EXIT_S:g} s + 120 s")


def _tree_processes(pid: int) -> list[tuple[str, float]]:
    """(command line, RSS MB) of each process in the daemon's tree: what the idle memory is made of."""
    found = []
    try:
        parent = psutil.Process(pid)
        for proc in [parent, *parent.children(recursive=True)]:
            try:
                found.append((" ".join(proc.cmdline()[1:4])[:60], proc.memory_info().rss / 2**20))
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return found


def writing_s(documents: list[dict], folder: Path) -> float:
    """The supervisor's publishing path (`Publisher.publish_job`: lease check, atomic sidecar and rows in one
    transaction) run again on the batch's documents into a fresh database and folder: the daemon stores after
    the sidecar's own timings are taken. The jobs are queued and claimed before the clock starts."""
    from beatwatch.daemon.publish import Publisher
    from beatwatch.store import jobs
    from beatwatch.store.db import open_database, sqlite_url

    folder.mkdir()
    engine = open_database(sqlite_url(folder / "rewrite.db"))
    publisher = Publisher(engine, output_dir=folder)
    now = time.time()
    by_path = {document["file"]["path"]: document for document in documents}
    jobs.enqueue_many(engine, [(path, None, None) for path in by_path], now=now)
    claimed = [jobs.claim(engine, f"bench:{index}", lease_s=3600, now=now) for index in range(len(by_path))]
    started = time.perf_counter()
    for job in claimed:
        stored = publisher.publish_job(by_path[job.path], job.path, job_id=job.id, token=job.lease_owner,
                                       outcome=jobs.ANALYSED, now=now)
        assert stored is not None, f"{job.path}: the bench's own lease was lost"
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def _query(root: Path, sql: str) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(root / "beatwatch.db", timeout=30) as db:
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []


def _wait_ready(root: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        rows = _query(root, "SELECT data FROM host_status")
        if rows and all(w["ready"] for w in json.loads(rows[0][0])["workers"]):
            return
        time.sleep(0.5)
    raise RuntimeError("the daemon's workers did not load their models within 300 s")


def _drained(root: Path, expected: int) -> bool:
    states = dict(_query(root, "SELECT state, COUNT(*) FROM jobs GROUP BY state"))
    return sum(states.values()) >= expected and set(states) <= {"done", "failed"}


def _tree_rss_mb(pid: int) -> float:
    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def run_peers(files: list[Path]) -> dict:
    """madmom + Essentia processors one after another on each file (audio decoded once per library)."""
    import numpy as np
    # madmom's ONNX graphs declare 1-D outputs and warn on every call that the real ones are 2-D.
    onnxruntime.set_default_logger_severity(3)
    import essentia
    essentia.log.infoActive = essentia.log.warningActive = False
    import essentia.standard as es
    from madmom.audio.signal import Signal
    from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor
    from madmom.features.chords import CNNChordFeatureProcessor, CRFChordRecognitionProcessor
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor
    from madmom.features.key import CNNKeyRecognitionProcessor

    madmom_chain = [RNNBeatProcessor(), DBNBeatTrackingProcessor(fps=100), RNNDownBeatProcessor(),
                    DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100), CNNKeyRecognitionProcessor(),
                    CNNChordFeatureProcessor(), CRFChordRecognitionProcessor()]
    rhythm, key, loud = es.RhythmExtractor2013(method="multifeature"), es.KeyExtractor(profileType="edma"), \
        es.LoudnessEBUR128(sampleRate=44100)
    audio_s = wall = 0.0
    for path in files:
        t0 = time.perf_counter()
        signal = Signal(str(path), sample_rate=44100, num_channels=1)
        beat_act = madmom_chain[0](signal)
        madmom_chain[1](beat_act)
        madmom_chain[3](madmom_chain[2](signal))
        madmom_chain[4](signal)
        madmom_chain[6](madmom_chain[5](signal))
        stereo, *_ = es.AudioLoader(filename=str(path))()
        mono = np.ascontiguousarray(stereo.mean(axis=1), dtype=np.float32)
        rhythm(mono)
        key(mono)
        loud(stereo)
        wall += time.perf_counter() - t0
        audio_s += len(stereo) / 44100
    return {"audio_s": audio_s, "wall_s": wall, "realtime": audio_s / wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--songs", type=int, default=BATCH, help="songs in the batch")
    parser.add_argument("--no-mix", action="store_true", help="skip the 3-hour file")
    parser.add_argument("--no-peers", action="store_true", help="skip madmom and Essentia")
    parser.add_argument("--idle-only", metavar="MODE", choices=("in_worker", "process"),
                        help="only the idle daemon's memory and the first job after idling, in this inference mode")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    count = 2 if args.idle_only else args.songs
    print(f"rendering {count} songs of 3-5 minutes (cached in {OUT}) ...", flush=True)
    songs = [song.audio for song in ensure_suite(OUT, batch_specs(args.songs)[:count])]
    if args.idle_only:
        print_idle(run_idle(songs[:2], mode=args.idle_only))
        return 0
    batches = [run_daemon(songs, mode=mode, watch_memory=True) for mode in ("in_worker", "process")]
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        batches.append(run_daemon(songs, mode="process", device="cuda", watch_memory=True))
    batch = max(batches[:2], key=lambda run: run["realtime"])
    peers = None if args.no_peers else run_peers(songs)
    mix = None if args.no_mix else run_daemon([three_hour_mix(songs)], mode=batch["mode"], watch_memory=True)
    idle = run_idle(songs[:2], mode=batch["mode"])
    report = {"batches": batches, "batch": batch, "peers": peers, "mix": mix, "idle": idle,
              "cpus": psutil.cpu_count()}
    (OUT.parent / "speed.json").write_text(json.dumps(report, indent=1))
    print_table(report)
    print_idle(idle)
    return 0


def print_idle(idle: dict) -> None:
    rows = [(f"idle daemon tree, workers loaded, mode {idle['mode']} (MB)", idle["loaded_mb"], None, None),
            (f"  after workers.idle_exit_s ({IDLE_EXIT_S:g} s here) (MB)", idle["idle_mb"], MAX_IDLE_MB,
             idle["idle_mb"] < MAX_IDLE_MB),
            ("first job after idling: file in inbox to done (s)", idle["cold_s"], None, None),
            ("  the same with a warm worker (s)", idle["warm_s"], None, None),
            ("  cost of waking the workers (s)", idle["wake_s"], None, None)]
    print(f"\n{'idle daemon':<56}{'value':>10}  {'maximum':>8}  status")
    for name, value, bound, ok in rows:
        status = "" if ok is None else ("PASS" if ok else "FAIL")
        print(f"{name:<56}{value:>10.1f}  {'' if bound is None else f'{bound:g}':>8}  {status}")
    for command, mb in idle["processes"]:
        print(f"    {mb:8.1f} MB  {command}")


def print_table(report: dict) -> None:
    batch, peers, mix = report["batch"], report["peers"], report["mix"]
    gpu = any(run["device"] == "cuda" for run in report["batches"])
    print(f"\nmachine: {report['cpus']} CPUs, {'a CUDA GPU' if gpu else 'no GPU (cuda figures need a GPU host)'}")
    print(f"{'measure':<56}{'value':>10}  {'minimum':>8}  status")
    rows = []
    for run in report["batches"]:
        rows.append((f"beatwatch batch, mode {run['mode']} on {run['device']} (x realtime, {run['workers']} workers)",
                     run["realtime"], MIN_REALTIME if run is batch else None,
                     run["realtime"] >= MIN_REALTIME if run is batch else None))
        rows.append((f"  {run['audio_s'] / 60:.0f} min in {run['wall_s']:.1f} s; failed; with tags {run['tagged']}",
                     run["failed"], None, run["failed"] == 0))
    if peers:
        ratio = batch["realtime"] / peers["realtime"]
        rows.append(("madmom + Essentia one after another (x realtime)", peers["realtime"], None, None))
        rows.append(("ratio beatwatch / peers", ratio, MIN_RATIO, ratio >= MIN_RATIO))
    if mix:
        rows.append((f"3-hour file, mode {mix['mode']}: peak RSS of the daemon tree (MB)", mix["peak_mb"],
                     MAX_PEAK_MB, mix["peak_mb"] < MAX_PEAK_MB))
        rows.append((f"  file of {mix['audio_s'] / 3600:.2f} h: throughput (x realtime)", mix["realtime"], None, None))
    for name, value, minimum, ok in rows:
        status = "" if ok is None else ("PASS" if ok else "FAIL")
        bound = "" if minimum is None else f"{minimum:g}"
        print(f"{name:<56}{value:>10.1f}  {bound:>8}  {status}")
    total = sum(batch["stages"].values())
    print(f"\nper-stage time over the batch, mode {batch['mode']} (s, share of analysis time):")
    for name, seconds in sorted(batch["stages"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<14}{seconds:>8.2f}  {100 * seconds / total:5.1f} %")


if __name__ == "__main__":
    sys.exit(main())
