"""The `beatwatch` command. Errors print one sentence and map to exit codes 0 ok, 1 failure, 2 usage/config."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from beatwatch.analysis.audio.formats import AUDIO_EXTENSIONS
from beatwatch.analysis.nets.device import DeviceError
from beatwatch.store.db import NoDatabase

from . import config as config_mod
from .config_lookup import locate
from .logs import configure as configure_logging
from .logs import escape_controls

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("beatwatch")


class UsageError(Exception):
    """Bad arguments: exit code 2."""


class TrackError(Exception):
    """The named track cannot be found or read: exit code 1."""


class StoreError(Exception):
    """The database cannot be opened, not even for reading: exit code 1."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beatwatch", description="Beat-accurate timelines for a folder of music.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details and tracebacks to stderr")
    parser.add_argument("--version", action="version", version=f"beatwatch {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon in the foreground (systemd runs this)")
    run.add_argument("--config", type=Path, help="TOML config file (default: $BEATWATCH_CONFIG, ./beatwatch.toml, "
                     "~/.config/beatwatch/beatwatch.toml, /etc/beatwatch/beatwatch.toml, in that order)")

    status = sub.add_parser("status", help="queue counts, running jobs, throughput, throttle and worker state")
    status.add_argument("--watch", action="store_true", help="refresh every 2 seconds until Ctrl-C")
    status.add_argument("--json", action="store_true", help="the same facts as one JSON object")
    status.add_argument("--config", type=Path, help="TOML config file")

    jobs = sub.add_parser("jobs", help="the job queue, newest first: ids for `retry`, states, attempts, errors")
    jobs.add_argument("--failed", action="store_true", help="only failed jobs")
    jobs.add_argument("--running", action="store_true", help="only running jobs")
    jobs.add_argument("--limit", type=int, default=50, help="show at most this many (default 50; 0: all)")
    jobs.add_argument("--json", action="store_true", help="a JSON list with every column")
    jobs.add_argument("--config", type=Path, help="TOML config file")

    retry = sub.add_parser("retry", help="queue jobs again (failed ones, or the given job ids)")
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="job ids (done or failed)")
    retry.add_argument("--failed", action="store_true", help="every failed job")
    retry.add_argument("--config", type=Path, help="TOML config file")

    rescan = sub.add_parser("rescan", help="queue every complete file in the inbox that is not analysed yet")
    rescan.add_argument("--config", type=Path, help="TOML config file")

    prune = sub.add_parser("prune", help="remove the rows of analysed files that are gone from disk")
    prune.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    prune.add_argument("--config", type=Path, help="TOML config file")

    analyze = sub.add_parser("analyze", help="analyse files or folders once, without the daemon")
    analyze.add_argument("paths", nargs="+", type=Path, metavar="FILE", help="audio files, or folders to search")
    analyze.add_argument("--out", type=Path, help="write sidecars into this folder instead of next to the audio")
    analyze.add_argument("--json", action="store_true", help="print the sidecar document(s) on stdout")
    analyze.add_argument("--no-db", action="store_true", help="write sidecars only, no SQLite rows")
    analyze.add_argument("--config", type=Path, help="TOML config file")

    show = sub.add_parser("show", help="one analysed track's summary")
    show.add_argument("target", metavar="PATH|HASH")
    show.add_argument("--json", action="store_true", help="print the whole sidecar document")
    show.add_argument("--config", type=Path, help="TOML config file")

    plot = sub.add_parser("plot", help="draw one analysed track's timeline (png, svg, or an interactive html page "
                          "that plays the track)")
    plot.add_argument("target", metavar="PATH|HASH", help="audio path, content hash (prefix) or a sidecar file")
    plot.add_argument("--out", type=Path, help="output file (.png, .svg or .html); default <audio>.beatwatch.png "
                           "beside its sidecar (in output.dir when set), as the daemon's plots")
    plot.add_argument("--embed-audio", action="store_true",
                      help="with .html: put the audio inside the page instead of linking it relative to the page")
    plot.add_argument("--config", type=Path, help="TOML config file")

    click = sub.add_parser("click", help="the track's audio with a click on every beat, accented on bar starts")
    click.add_argument("target", metavar="PATH|HASH", help="audio path, content hash (prefix) or a sidecar file")
    click.add_argument("--out", type=Path, required=True, help="output WAV file")
    click.add_argument("--config", type=Path, help="TOML config file")

    export = sub.add_parser("export", help="analysed tracks for DJ software (rekordbox, Traktor) and MIR tools "
                            "(JAMS, label tracks, .lab chords)")
    export.add_argument("targets", nargs="*", metavar="PATH|HASH",
                        help="analysed tracks by audio path, hash or sidecar file")
    export.add_argument("--where", metavar="CLAUSE", help="also every track this SQL WHERE clause selects from the "
                        "tracks view, e.g. \"bpm BETWEEN 120 AND 128 AND key = 'A minor'\" (read-only)")
    export.add_argument("--format", required=True, choices=("rekordbox", "traktor", "jams", "labels", "lab"),
                        help="rekordbox XML, Traktor NML (one file); JAMS, label tracks, .lab (a folder)")
    export.add_argument("--out", type=Path, required=True, help="output file (rekordbox, traktor) or folder")
    export.add_argument("--config", type=Path, help="TOML config file")

    playlist = sub.add_parser("playlist", help="an M3U playlist of the tracks a WHERE clause selects")
    playlist.add_argument("where", metavar="CLAUSE", help="SQL WHERE clause on the tracks view, e.g. "
                          "\"bpm BETWEEN 120 AND 128 AND key IN ('A minor', 'C major')\" (read-only)")
    playlist.add_argument("--m3u", type=Path, required=True, metavar="FILE", help="the playlist to write; paths in "
                          "it are relative to its folder")
    playlist.add_argument("--harmonic", action="store_true", help="order for harmonic mixing: Camelot neighbours "
                          "within the tempo range, slowest first (default: by path)")
    playlist.add_argument("--tempo-range", type=float, default=6.0, metavar="PCT",
                          help="with --harmonic, the largest tempo step between neighbours in percent (default 6)")
    playlist.add_argument("--config", type=Path, help="TOML config file")

    tag = sub.add_parser("tag", help="write BPM and key (and ReplayGain) into analysed files' own tags")
    tag.add_argument("targets", nargs="+", metavar="FILE|HASH", help="analysed audio files, by path or hash")
    notation = tag.add_mutually_exclusive_group()
    notation.add_argument("--camelot", action="store_true", help="write the key as Camelot (8A), not Am")
    notation.add_argument("--open-key", action="store_true", help="write the key as Open Key (1m), not Am")
    tag.add_argument("--replaygain", action="store_true", help="also the ReplayGain track gain from the loudness")
    tag.add_argument("--config", type=Path, help="TOML config file")

    models = sub.add_parser("models", help="offline ML tag models")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    build = models_sub.add_parser("build", help="freeze the musicnn checkpoints into models.dir (offline)")
    build.add_argument("--force", action="store_true", help="rebuild even when the graphs are up to date")
    build.add_argument("--config", type=Path, help="TOML config file")
    listing = models_sub.add_parser("list", help="the classifiers in models.dir, as the analyser will load them")
    listing.add_argument("--config", type=Path, help="TOML config file")

    cfg = sub.add_parser("config", help="configuration tools")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = cfg_sub.add_parser("check", help="validate a config file and print the effective values")
    check.add_argument("file", type=Path, nargs="?", help="default: the file the other commands would read")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging(logging.DEBUG if args.verbose else logging.WARNING)
    handlers = {"run": cmd_run, "analyze": cmd_analyze, "show": cmd_show, "config": cmd_config_check,
                "status": cmd_status, "jobs": cmd_jobs, "retry": cmd_retry, "rescan": cmd_rescan, "plot": cmd_plot,
                "click": cmd_click, "prune": cmd_prune, "export": cmd_export,
                "tag": cmd_tag, "playlist": cmd_playlist,
                "models": cmd_models}
    try:
        return handlers[args.command](args)
    except (config_mod.ConfigError, UsageError, DeviceError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except (StoreError, NoDatabase) as exc:
        _error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED
    except BrokenPipeError:  # `beatwatch ... | head` closed the pipe: not an error
        sys.stdout = open("/dev/null", "w")
        return EXIT_OK


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from beatwatch.analysis import ANALYZER_VERSION

    try:
        return f"{version('beatwatch')} (analyzer {ANALYZER_VERSION})"
    except PackageNotFoundError:
        return f"(not installed) (analyzer {ANALYZER_VERSION})"


def _error(message: str) -> None:
    """One line on stderr: a file's name may hold a newline or an escape sequence, shown escaped, never obeyed."""
    print("beatwatch: " + escape_controls(message), file=sys.stderr)


def iter_audio(paths: list[Path]) -> Iterator[Path]:
    """Files as given; folders searched recursively for audio extensions, in sorted order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            yield path


def _one_line(doc: dict, sidecar: Path) -> str:
    s = doc["summary"]
    parts = [escape_controls(doc["file"]["path"]) + ":"]
    parts.append(f"{s['bpm']:.1f} BPM" if s["bpm"] is not None else "no tempo")
    if s["meter"]:
        parts.append(f"{s['meter']}/4")
    parts.append(f"{s['key']} ({s['key_camelot']})" if s["key"] and s.get("key_camelot") else s["key"] or "no key")
    if s["loudness_lufs"] is not None:
        parts.append(f"{s['loudness_lufs']:.1f} LUFS")
    parts.append(f"({doc['performance']['realtime_factor']}x realtime)")
    notes = "; ".join(doc.get("notes", []))
    return " ".join(parts) + (f" [{notes}]" if notes else "") + " -> " + escape_controls(str(sidecar))


def _open_store(settings: config_mod.Settings):
    from beatwatch.store.db import open_database
    return open_database(settings.store.url)


def _library(settings: config_mod.Settings):
    from .library_paths import Library

    return Library.of(settings.library.roots)


def _find(engine, target: str, library) -> dict | None:
    """find_analysis by this host's path (its stored name, library_paths.py) or hash; paths in the answer are
    this host's. Raises LookupError (AmbiguousHash) as find_analysis does."""
    from beatwatch.store.records import find_analysis

    found = find_analysis(engine, library.lookup_name(target))
    return library.localised(found) if found is not None else None


def _read_store(settings: config_mod.Settings):
    """The database for a command that only reads it: read-only when this user may not write it."""
    from sqlalchemy.exc import OperationalError

    from beatwatch.store.db import ReadOnlyOutdated, open_for_reading
    try:
        return open_for_reading(settings.store.url)
    except (OperationalError, ReadOnlyOutdated) as exc:
        reason = exc.orig if isinstance(exc, OperationalError) else exc
        raise StoreError(f"cannot read the database {settings.store.url}: {reason}") from None


def _analyze_all(files: list[Path], settings: config_mod.Settings, *, output_dir: Path | None,
                 engine, quiet: bool) -> tuple[list[dict], int]:
    """Analyse each file with one Analyzer; a failure is reported in one line and the rest go on."""
    from beatwatch.analysis.errors import AnalysisError
    from beatwatch.analysis.nets.networks import Networks
    from beatwatch.analysis.pipeline import Analyzer
    from .memory import release_free_memory
    from .progress import for_analyze
    from .publish import Publisher
    from .tag_models import tags_warning

    networks = Networks(device=settings.inference.device, models_dir=settings.models.dir)
    missing = tags_warning(settings.models.dir, networks.tag_models)
    if missing:
        _error("warning: " + missing)
    analysis = settings.analysis
    analyzer = Analyzer(networks, chunk_s=analysis.chunk_s, min_bpm=analysis.min_bpm, max_bpm=analysis.max_bpm,
                        after_chunk=release_free_memory)
    publisher = Publisher(engine, output_dir=output_dir, inbox=settings.inbox.path.absolute(),
                          library=_library(settings))
    display = for_analyze(sys.stdout, sys.stderr, json_output=quiet)
    documents, failed = [], 0
    for path in files:
        path = path.absolute()
        display.start(path.name)
        try:
            document = analyzer.analyze(path, max_duration_s=settings.jobs.max_duration_s, progress=display)
            sidecar = publisher.publish(document, path)
        except AnalysisError as exc:
            failed += 1
            display.finish()
            _error(str(exc))
            continue
        except Exception as exc:  # one bad file must not stop the others
            failed += 1
            display.finish()
            log.debug("analysis of %s failed", path, exc_info=True)
            _error(f"{path}: analysis failed ({type(exc).__name__}: {exc})")
            continue
        display.finish()
        documents.append(document)
        if not quiet:
            print(_one_line(document, sidecar), flush=True)
    return documents, failed


def cmd_analyze(args) -> int:
    settings = config_mod.load(args.config)
    files = list(iter_audio(args.paths))
    if not files:
        raise UsageError("no audio files found in " + ", ".join(str(p) for p in args.paths))
    output_dir = args.out.absolute() if args.out else settings.output.dir
    engine = None if args.no_db else _open_store(settings)
    documents, failed = _analyze_all(files, settings, output_dir=output_dir, engine=engine, quiet=args.json)
    if args.json:
        json.dump(documents[0] if len(files) == 1 and documents else documents, sys.stdout, ensure_ascii=False,
                  indent=1)
        print()
    return EXIT_FAILED if failed else EXIT_OK


def cmd_show(args) -> int:
    from beatwatch.store.records import form_line, sections_of

    settings = config_mod.load(args.config)
    engine = _read_store(settings)
    try:
        found = _find(engine, args.target, _library(settings))
    except LookupError as exc:
        _error(f"{args.target}: {exc}")
        return EXIT_FAILED
    if found is None:
        _error(f"{args.target}: no analysed track with this path or hash")
        return EXIT_FAILED
    if args.json:
        sidecar = found.get("sidecar_path")
        if not sidecar or not Path(sidecar).exists():
            _error(f"{args.target}: sidecar {sidecar} is missing")
            return EXIT_FAILED
        sys.stdout.write(Path(sidecar).read_text(encoding="utf-8") + "\n")
        return EXIT_OK
    found["form"] = form_line(sections_of(engine, found["analysis_id"]))
    width = max(len(k) for k in found)
    for key, value in found.items():
        print(f"{key:<{width}}  {escape_controls(str(value)) if value is not None else '-'}")
    if found["missing_since"]:
        print(f"missing: {escape_controls(found['path'])} is gone from disk since {found['missing_since']}; "
              "`beatwatch prune` removes its rows")
    return EXIT_OK


def _load_track(args) -> tuple[dict, Path, bool]:
    """The sidecar document named by a sidecar file, an audio path or a hash; where its audio is on this host (the
    database's path through this host's library mounts; for a sidecar file, library_paths.audio_of_sidecar);
    whether it is there."""
    target = Path(args.target)
    if target.name.endswith(".beatwatch.json") and target.is_file():
        sidecar, audio = target, None
    else:
        settings = config_mod.load(args.config)
        try:
            found = _find(_read_store(settings), args.target, _library(settings))
        except LookupError as exc:
            raise TrackError(f"{args.target}: {exc}") from None
        if found is None:
            raise TrackError(f"{args.target}: no analysed track with this path or hash")
        sidecar, audio = Path(found["sidecar_path"] or ""), Path(found["path"])
    try:
        document = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrackError(f"{args.target}: cannot read sidecar {sidecar} ({exc})") from None
    if audio is None:
        from .library_paths import audio_of_sidecar

        audio = audio_of_sidecar(sidecar, document["file"]["path"])
    return document, audio, audio.is_file()


def _decode(path: Path):
    from beatwatch.analysis.audio.decode import decode, probe

    return decode(probe(path))


def cmd_plot(args) -> int:
    from beatwatch.analysis.errors import AnalysisError
    from beatwatch.render.plot import render_plot
    from .publish import plot_path

    try:
        document, audio_path, present = _load_track(args)
        if args.embed_audio and not present:
            raise TrackError(f"{args.target}: the audio file {audio_path} is gone, nothing to embed")
        audio = _decode(audio_path) if present else None
    except (TrackError, AnalysisError) as exc:
        _error(str(exc))
        return EXIT_FAILED
    settings = config_mod.load(args.config)
    out = args.out or plot_path(audio_path, settings.output.dir, settings.inbox.path.absolute())
    try:
        written = render_plot(document, out, audio=audio, audio_path=audio_path if present else None,
                              embed_audio=args.embed_audio)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(escape_controls(str(written)))
    return EXIT_OK


def cmd_click(args) -> int:
    from beatwatch.render.click import render_click
    from beatwatch.analysis.errors import AnalysisError

    try:
        document, audio_path, present = _load_track(args)
        if not present:
            raise TrackError(f"{args.target}: the audio file {audio_path} is gone")
        audio = _decode(audio_path)
    except (TrackError, AnalysisError) as exc:
        _error(str(exc))
        return EXIT_FAILED
    try:
        written = render_click(audio, document["timeline"]["beats"], args.out)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(escape_controls(str(written)))
    return EXIT_OK


def cmd_export(args) -> int:
    from .export_cmd import ExportError, export, select_tracks

    if not args.targets and args.where is None:
        raise UsageError("export needs tracks (paths or hashes) or --where")
    settings = config_mod.load(args.config)
    engine = _read_store(settings)
    try:
        tracks = select_tracks(engine, args.targets, args.where, _library(settings))
        if not tracks:
            _error(f"no analysed track matches {args.where!r}; nothing written")
            return EXIT_FAILED
        written = export(tracks, args.format, args.out)
    except ExportError as exc:
        _error(str(exc))
        return EXIT_FAILED
    for path in written:
        print(escape_controls(str(path)))
    return EXIT_OK


def cmd_playlist(args) -> int:
    from .export_cmd import ExportError, write_playlist

    if args.tempo_range <= 0:
        raise UsageError(f"--tempo-range must be above 0, not {args.tempo_range}")
    settings = config_mod.load(args.config)
    engine = _read_store(settings)
    try:
        count = write_playlist(engine, args.where, args.m3u, harmonic=args.harmonic, tempo_percent=args.tempo_range,
                               library=_library(settings))
    except ExportError as exc:
        _error(str(exc))
        return EXIT_FAILED
    print(f"{count} track(s) -> {escape_controls(str(args.m3u))}")
    return EXIT_OK


def cmd_tag(args) -> int:
    from beatwatch.render.file_tags import KeyNotation, TagError

    from .tagging import tag_file

    settings = config_mod.load(args.config)
    engine, library = _open_store(settings), _library(settings)
    notation: KeyNotation = "camelot" if args.camelot else "open_key" if args.open_key else "standard"
    failed = 0
    for target in args.targets:
        try:
            found = _find(engine, target, library)
            if found is None:
                raise TagError(f"{target}: no analysed track with this path or hash")
            document = json.loads(Path(found["sidecar_path"] or "").read_text(encoding="utf-8"))
            values = tag_file(engine, found["path"], document, notation=notation, replaygain=args.replaygain,
                              stored_as=library.stored(found["path"]))
        except (TagError, LookupError) as exc:
            failed += 1
            _error(str(exc) if isinstance(exc, TagError) else f"{target}: {exc}")
            continue
        except (OSError, ValueError) as exc:
            failed += 1
            _error(f"{target}: cannot read its sidecar ({exc}); tags not written")
            continue
        written = [f"BPM {values.bpm:.2f}" if values.bpm else "", f"key {values.key}" if values.key else "",
                   f"gain {values.gain_db:+.2f} dB" if values.gain_db is not None else ""]
        print(escape_controls(found["path"]) + ": " + ", ".join(w for w in written if w))
    return EXIT_FAILED if failed else EXIT_OK


def cmd_models(args) -> int:
    from beatwatch.analysis.nets.models_build import BuildError, build_musicnn
    from beatwatch.analysis.nets.zoo import ModelFileError, list_models

    from .tag_models import tags_warning

    folder = config_mod.load(args.config).models.dir
    try:
        if args.models_command == "build":
            for path in build_musicnn(folder, force=args.force):
                print(path)
        infos = list_models(folder) if folder.is_dir() else []
    except (BuildError, ModelFileError) as exc:
        _error(str(exc))
        return EXIT_FAILED
    if args.models_command == "list":
        print(f"{len(infos)} model(s) in {folder}")
        for info in infos:
            print(f"  {info.summary()}")
    if not infos:
        _error(tags_warning(folder) or f"no tags: no model in {folder}")
        return EXIT_FAILED
    return EXIT_OK


def cmd_config_check(args) -> int:
    located = locate(args.file)
    settings = config_mod.load(located.path)
    warnings = config_mod.check_usable(settings, own_folder=None if located.path else located.base)
    print(f"# config: {located.describe()}")
    print("# valid; effective values (environment overrides applied)")
    for warning in warnings:
        print(f"# warning: {warning}")
    for section, values in config_mod.effective_values(settings).items():
        print(f"[{section}]")
        for key, value in values.items():
            print(f"{key} = {json.dumps('' if value is None else value)}")
        print()
    return EXIT_OK


def cmd_run(args) -> int:
    from .instance import AlreadyRunning
    from .supervisor import Supervisor

    located = locate(args.config)
    settings = config_mod.load(located.path)
    if located.path is None:
        located.base.mkdir(parents=True, exist_ok=True)  # the defaults' data folder is beatwatch's own
    warnings = config_mod.check_usable(settings)
    logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        supervisor = Supervisor(settings, config_path=args.config or config_mod.default_config_path())
    except AlreadyRunning as exc:
        _error(str(exc))
        return EXIT_FAILED
    for warning in warnings:  # once nothing refused the start: a refusal stays one line
        log.warning("%s", warning)
    return supervisor.run()


def cmd_status(args) -> int:
    import time

    from .status import DatabaseLocked, render_text, status_data

    located = locate(args.config)
    settings = config_mod.load(located.path)
    engine = _read_store(settings)
    while True:
        try:
            data = status_data(engine, now=time.time())
            if args.json and not args.watch:
                data["config"] = str(located.path) if located.path else None
                json.dump(data, sys.stdout, indent=1)
                print()
                return EXIT_OK
            text = f"config:  {located.describe()}\n" + render_text(data)
        except DatabaseLocked as exc:
            if not args.watch:
                print(f"beatwatch: {exc}", file=sys.stderr)
                return EXIT_FAILED
            text = str(exc)
        if args.watch:
            sys.stdout.write("\x1b[H\x1b[2J")
        print(text, flush=True)
        if not args.watch:
            return EXIT_OK
        time.sleep(2)


def cmd_retry(args) -> int:
    import time

    from beatwatch.store import jobs

    if not args.ids and not args.failed:
        raise UsageError("retry needs job ids or --failed")
    from .jobs_cmd import retry_refusals

    settings = config_mod.load(args.config)
    engine = _read_store(settings)
    requeued = jobs.retry(engine, ids=args.ids or None, failed_only=args.failed, now=time.time())
    refusals, notices = retry_refusals(engine, args.ids, requeued, failed_only=args.failed)
    for reason in refusals:
        _error(reason)
    print(f"requeued {len(requeued)} job(s)" + (": " + " ".join(map(str, requeued)) if requeued else ""))
    for notice in notices:
        print(notice)
    return EXIT_FAILED if refusals else EXIT_OK


def cmd_jobs(args) -> int:
    from beatwatch.store import jobs
    from .jobs_cmd import job_record, render_jobs

    states: list[jobs.State] = []
    if args.failed:
        states.append("failed")
    if args.running:
        states.append("running")
    engine = _read_store(config_mod.load(args.config))
    found = jobs.listing(engine, states=states or None, limit=args.limit or None)
    if args.json:
        json.dump([job_record(job) for job in found], sys.stdout, indent=1)
        print()
    else:
        print(render_jobs(found))
    return EXIT_OK


def cmd_rescan(args) -> int:
    import time

    from .library_paths import adopt_absolute_paths
    from .missing import check_paths
    from .reconcile import reconcile
    from .stability import other_writers_visible
    from .watcher import NameFilter

    settings = config_mod.load(args.config)
    names = NameFilter(settings.inbox.path, settings.watch.ignore, skip_result_folders=settings.inbox.after == "move",
                       follow_symlinks=settings.inbox.follow_symlinks)
    # A scan sees no writer's close: with writers out of sight, only the longer window says a file is complete.
    visible = other_writers_visible()
    settle_s = settings.watch.settle_s if visible else max(settings.watch.settle_s, settings.watch.unclosed_settle_s)
    engine = _open_store(settings)
    # Files still being written are left for the daemon to see settle.
    library = _library(settings)
    adopted = adopt_absolute_paths(engine, library)
    if adopted:
        print(f"{adopted} path(s) stored by absolute path now named by their library root")
    tally = reconcile(engine, names.scan(), settle_s=settle_s, writers_visible=visible, now=time.time(),
                      library=library)
    waiting = f" ({tally.recent} changed too recently or still being written)" if tally.recent else ""
    print(f"{tally.listed} file(s) in {settings.inbox.path}{waiting}; queued {tally.queued} new")
    gone, back = check_paths(engine, library)
    if gone or back:
        print(f"{gone} analysed file(s) newly missing, {back} back (`beatwatch prune` removes missing rows)")
    return EXIT_OK


def cmd_prune(args) -> int:
    from beatwatch.store.db import open_existing

    from .missing import prune

    settings = config_mod.load(args.config)
    engine = open_existing(settings.store.url)  # it deletes rows: never a read-only snapshot
    paths, contents = prune(engine, dry_run=args.dry_run, library=_library(settings))
    for path in paths:
        print(("would remove " if args.dry_run else "removed ") + escape_controls(path))
    if args.dry_run:
        print(f"{len(paths)} missing path(s); nothing removed (--dry-run)")
    else:
        print(f"removed {len(paths)} missing path(s) and {contents} track(s) left with no path")
    return EXIT_OK
