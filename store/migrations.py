"""Versioned schema steps; a database only ever moves forward.

Each step's DDL is frozen text rather than generated from models.py: the
models describe the newest schema, while a step must keep meaning what it
meant when databases were created with it, so later steps can ALTER them.
Steps add and reshape, never drop user data. A new schema change is one
more `Step` appended to `STEPS`, with the next version number.

The text is SQLite's, and SQLite runs it as written. PostgreSQL runs the
same steps through `for_dialect`, a handful of frozen word-for-word
rewrites (REAL is 4 bytes there, BLOB is BYTEA, a row id is an identity
column), so one list of steps stays the single source of both schemas; a
rewrite may never change, for the same reason the step text may not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import Connection, Engine, inspect, text

from .transactions import write_transaction

Action = str | Callable[[Connection], None]


class Step(NamedTuple):
    version: int
    description: str
    actions: Sequence[Action]


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer beatwatch; running older code on it could corrupt it."""


_FILES = """
CREATE TABLE files (
    id INTEGER NOT NULL PRIMARY KEY,
    content_hash TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    size INTEGER,
    mtime REAL,
    format TEXT,
    first_seen TEXT,
    last_seen TEXT
)"""

_FILE_PATHS = """
CREATE TABLE file_paths (
    id INTEGER NOT NULL PRIMARY KEY,
    file_id INTEGER NOT NULL,
    path TEXT NOT NULL UNIQUE,
    seen_at TEXT,
    FOREIGN KEY (file_id) REFERENCES files (id) ON DELETE CASCADE
)"""

# AUTOINCREMENT: a re-saved analysis must get a new id, never its deleted predecessor's.
_ANALYSES = """
CREATE TABLE analyses (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL,
    analyzer_version TEXT NOT NULL,
    created_at TEXT,
    duration REAL,
    sample_rate INTEGER,
    channels INTEGER,
    bpm REAL,
    bpm_confidence REAL,
    meter INTEGER,
    key TEXT,
    key_confidence REAL,
    loudness_lufs REAL,
    loudness_range_lu REAL,
    danceability REAL,
    energy REAL,
    device TEXT,
    wall_s REAL,
    realtime_factor REAL,
    sidecar_path TEXT,
    UNIQUE (file_id, analyzer_version),
    FOREIGN KEY (file_id) REFERENCES files (id) ON DELETE CASCADE
)"""

_BEATS = """
CREATE TABLE beats (
    analysis_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    time REAL NOT NULL,
    bar INTEGER,
    position INTEGER,
    confidence REAL,
    transient_time REAL,
    transient_strength REAL,
    PRIMARY KEY (analysis_id, idx),
    FOREIGN KEY (analysis_id) REFERENCES analyses (id) ON DELETE CASCADE
)"""

_BARS = """
CREATE TABLE bars (
    analysis_id INTEGER NOT NULL,
    bar INTEGER NOT NULL,
    time REAL NOT NULL,
    duration REAL,
    beats INTEGER,
    chord TEXT,
    chord_confidence REAL,
    loudness REAL,
    PRIMARY KEY (analysis_id, bar),
    FOREIGN KEY (analysis_id) REFERENCES analyses (id) ON DELETE CASCADE
)"""

_CHORDS = """
CREATE TABLE chords (
    analysis_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    label TEXT NOT NULL,
    confidence REAL,
    PRIMARY KEY (analysis_id, idx),
    FOREIGN KEY (analysis_id) REFERENCES analyses (id) ON DELETE CASCADE
)"""

_KEY_SEGMENTS = """
CREATE TABLE key_segments (
    analysis_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    key TEXT,
    confidence REAL,
    PRIMARY KEY (analysis_id, idx),
    FOREIGN KEY (analysis_id) REFERENCES analyses (id) ON DELETE CASCADE
)"""

_TAGS = """
CREATE TABLE tags (
    analysis_id INTEGER NOT NULL,
    model TEXT NOT NULL,
    label TEXT NOT NULL,
    score REAL,
    PRIMARY KEY (analysis_id, model, label),
    FOREIGN KEY (analysis_id) REFERENCES analyses (id) ON DELETE CASCADE
)"""

_TRACKS = """
CREATE VIEW tracks AS
SELECT
    f.id AS file_id,
    a.id AS analysis_id,
    f.path AS path,
    f.content_hash AS content_hash,
    f.format AS format,
    f.size AS size,
    a.duration AS duration,
    a.bpm AS bpm,
    a.bpm_confidence AS bpm_confidence,
    a.meter AS meter,
    a.key AS key,
    a.key_confidence AS key_confidence,
    a.loudness_lufs AS loudness_lufs,
    a.loudness_range_lu AS loudness_range_lu,
    a.danceability AS danceability,
    a.energy AS energy,
    a.analyzer_version AS analyzer_version,
    a.created_at AS analyzed_at,
    a.sidecar_path AS sidecar_path
FROM files AS f
JOIN analyses AS a ON a.id = (SELECT max(id) FROM analyses WHERE file_id = f.id)"""

# AUTOINCREMENT: a stale worker's job id must never come to name a newer job.
# Times are epoch seconds (REAL): leases and backoff are compared across processes and restarts.
_JOBS = """
CREATE TABLE jobs (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    raw_path BLOB,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    force INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires REAL,
    not_before REAL,
    error TEXT,
    stage TEXT,
    progress REAL,
    size INTEGER,
    mtime REAL,
    content_hash TEXT,
    analysis_id INTEGER,
    audio_duration REAL,
    wall_s REAL,
    outcome TEXT,
    created_at REAL,
    updated_at REAL,
    started_at REAL,
    finished_at REAL,
    CHECK (state IN ('queued', 'running', 'retry_wait', 'done', 'failed')),
    FOREIGN KEY (analysis_id) REFERENCES analyses (id) ON DELETE SET NULL
)"""


def _tracks_view(columns: tuple[str, ...]) -> str:
    """The tracks view over file_paths with these columns ("expression AS name"). Each step's column list below
    is frozen once shipped, as all DDL here is; a later one is its predecessor plus what its step adds."""
    return ("\nCREATE VIEW tracks AS\nSELECT\n    " + ",\n    ".join(columns)
            + "\nFROM file_paths AS p\nJOIN files AS f ON f.id = p.file_id\n"
            "JOIN analyses AS a ON a.id = (SELECT max(id) FROM analyses WHERE file_id = f.id)")


def _inserted(columns: tuple[str, ...], after: str, new: tuple[str, ...]) -> tuple[str, ...]:
    """`columns` with `new` after the column named `after`, where a view shows related columns together."""
    at = next(i for i, column in enumerate(columns) if column.endswith(f" AS {after}")) + 1
    return columns[:at] + new + columns[at:]


# One row per path a file is at now, with the newest analysis of the content last seen there. Step 1's view
# had a row per content, at the content's latest path: a file overwritten in place with other audio was listed
# twice under one path (old and new content), and a copy's row hid the original's path.
_PER_PATH_COLUMNS = (
    "f.id AS file_id",
    "a.id AS analysis_id",
    "p.path AS path",
    "f.content_hash AS content_hash",
    "f.format AS format",
    "f.size AS size",
    "a.duration AS duration",
    "a.bpm AS bpm",
    "a.bpm_confidence AS bpm_confidence",
    "a.meter AS meter",
    "a.key AS key",
    "a.key_confidence AS key_confidence",
    "a.loudness_lufs AS loudness_lufs",
    "a.loudness_range_lu AS loudness_range_lu",
    "a.danceability AS danceability",
    "a.energy AS energy",
    "a.analyzer_version AS analyzer_version",
    "a.created_at AS analyzed_at",
    "a.sidecar_path AS sidecar_path",
)
_TRACKS_PER_PATH = _tracks_view(_PER_PATH_COLUMNS)

# Step 6: `path UNIQUE` made two names that differ only in bytes that are not UTF-8 one row (both print the same),
# so each analysis of one took the other's row. SQLite cannot drop a column's UNIQUE, hence a new table.
_FILE_PATHS_BY_NAME = """
CREATE TABLE file_paths_by_name (
    id INTEGER NOT NULL PRIMARY KEY,
    file_id INTEGER NOT NULL,
    path TEXT NOT NULL,
    raw_path BLOB,
    seen_at TEXT,
    FOREIGN KEY (file_id) REFERENCES files (id) ON DELETE CASCADE
)"""

# tracks as in step 4, with the exact bytes of names that are not UTF-8.
_BY_NAME_COLUMNS = _PER_PATH_COLUMNS + ("p.raw_path AS raw_path",)
_TRACKS_BY_NAME = _tracks_view(_BY_NAME_COLUMNS)

# tracks as _TRACKS_BY_NAME, plus whether the path was found gone by the last rescan (and since when).
_MISSING_COLUMNS = _BY_NAME_COLUMNS + ("p.missing_since IS NOT NULL AS missing", "p.missing_since AS missing_since")
_TRACKS_WITH_MISSING = _tracks_view(_MISSING_COLUMNS)

# tracks as _TRACKS_WITH_MISSING, plus the artist, title, album and year the file's tags name.
_NAMES_COLUMNS = _MISSING_COLUMNS + ("f.artist AS artist", "f.title AS title", "f.album AS album", "f.year AS year")
_TRACKS_WITH_NAMES = _tracks_view(_NAMES_COLUMNS)

# Other hashes of a file's content: its bytes after beatwatch wrote tags into it. The audio is the same, so the
# daemon links such a file to the analysis instead of analysing it again.
_CONTENT_ALIASES = """
CREATE TABLE content_aliases (
    content_hash TEXT NOT NULL PRIMARY KEY,
    file_id INTEGER NOT NULL,
    created_at TEXT,
    FOREIGN KEY (file_id) REFERENCES files (id) ON DELETE CASCADE
)"""

# tracks as _TRACKS_WITH_NAMES, plus the key in the notations DJs sort by (Camelot 8A, Open Key 1m).
_NOTATION_COLUMNS = _inserted(_NAMES_COLUMNS, "key_confidence",
                              ("a.key_camelot AS key_camelot", "a.key_open AS key_open"))
_TRACKS_WITH_NOTATIONS = _tracks_view(_NOTATION_COLUMNS)

# tracks as _TRACKS_WITH_NOTATIONS, plus the recording's tuning (cents from A=440).
_TUNING_COLUMNS = _inserted(_NOTATION_COLUMNS, "key_open", ("a.tuning_cents AS tuning_cents",))
_TRACKS_WITH_TUNING = _tracks_view(_TUNING_COLUMNS)

# One row per section of an analysis's form; `bar` is its first bar as the bars table numbers them, `bars` how many.
_SECTIONS = """
CREATE TABLE sections (
    analysis_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    bar INTEGER NOT NULL,
    bars INTEGER NOT NULL,
    label TEXT NOT NULL,
    letter TEXT NOT NULL,
    confidence REAL,
    PRIMARY KEY (analysis_id, idx),
    FOREIGN KEY (analysis_id) REFERENCES analyses (id) ON DELETE CASCADE
)"""

# tracks as _TRACKS_WITH_TUNING, plus the library root a path is stored under. A file under a root is stored as
# "name:path below the root" (daemon/library_paths.py), one text that stays the path's key everywhere; a path under
# no root is absolute and has none. The name is allowed only letters, digits and . _ -, so the first ':' ends it.
_LIBRARY_COLUMNS = _inserted(_TUNING_COLUMNS, "path", (
    "CASE WHEN substr(p.path, 1, 1) <> '/' AND instr(p.path, ':') > 1"
    " THEN substr(p.path, 1, instr(p.path, ':') - 1) END AS library",))
_TRACKS_WITH_LIBRARY = _tracks_view(_LIBRARY_COLUMNS)

STEPS: list[Step] = [
    Step(1, "files, their paths, analyses with beats, bars, chords, keys and tags; the tracks view", [
        _FILES,
        "CREATE INDEX ix_files_path ON files (path)",
        _FILE_PATHS,
        "CREATE INDEX ix_file_paths_file_id ON file_paths (file_id)",
        _ANALYSES,
        "CREATE INDEX ix_analyses_bpm ON analyses (bpm)",
        "CREATE INDEX ix_analyses_key ON analyses (key)",
        _BEATS,
        "CREATE INDEX ix_beats_analysis_id_time ON beats (analysis_id, time)",
        _BARS,
        _CHORDS,
        _KEY_SEGMENTS,
        _TAGS,
        _TRACKS,
    ]),
    Step(2, "the job queue: one row per file to analyse, at most one active per path", [
        _JOBS,
        "CREATE INDEX ix_jobs_state_not_before ON jobs (state, not_before)",
        "CREATE INDEX ix_jobs_path ON jobs (path)",
        # Without it every deleted analysis (each re-save) scans all jobs to apply SET NULL.
        "CREATE INDEX ix_jobs_analysis_id ON jobs (analysis_id)",
        "CREATE UNIQUE INDEX ux_jobs_active_path ON jobs (path) WHERE state IN ('queued', 'running', 'retry_wait')",
    ]),
    Step(3, "what the running daemon reports for `beatwatch status`", [
        """CREATE TABLE daemon_status (
    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    data TEXT NOT NULL,
    updated_at REAL NOT NULL
)""",
    ]),
    Step(4, "tracks: one row per current path, with the newest analysis of the content last seen there", [
        "DROP VIEW tracks",
        _TRACKS_PER_PATH,
    ]),
    # Two names that differ only in bytes that are not UTF-8 share `path` (U+FFFD) but not `raw_path`; NULL
    # raw_path (every valid name) must still be one key, so it is coalesced to an empty blob.
    Step(5, "at most one active job per name, a name being its printable path and its exact bytes", [
        "DROP INDEX ux_jobs_active_path",
        "CREATE UNIQUE INDEX ux_jobs_active_name ON jobs (path, coalesce(raw_path, x''))"
        " WHERE state IN ('queued', 'running', 'retry_wait')",
    ]),
    Step(6, "file_paths: a name is its printable path and its exact bytes, as in the queue; tracks shows both", [
        "DROP VIEW tracks",
        _FILE_PATHS_BY_NAME,
        "INSERT INTO file_paths_by_name (id, file_id, path, raw_path, seen_at)"
        " SELECT id, file_id, path, NULL, seen_at FROM file_paths",
        "DROP TABLE file_paths",
        "ALTER TABLE file_paths_by_name RENAME TO file_paths",
        "CREATE INDEX ix_file_paths_file_id ON file_paths (file_id)",
        "CREATE UNIQUE INDEX ux_file_paths_name ON file_paths (path, coalesce(raw_path, x''))",
        _TRACKS_BY_NAME,
    ]),
    # Analyses stored before this step have no sections until their files are analysed again.
    Step(7, "sections: the form of each analysis, one row per section on its bar grid", [
        _SECTIONS,
        "CREATE INDEX ix_sections_label ON sections (label)",
    ]),
    Step(8, "file_paths.missing_since: a path a rescan found gone; tracks shows missing", [
        "ALTER TABLE file_paths ADD COLUMN missing_since TEXT",
        "DROP VIEW tracks",
        _TRACKS_WITH_MISSING,
    ]),
    # Files analysed before this step have no names until they are analysed again.
    Step(9, "files: artist, title, album, year from the tags; content_aliases: hashes of tagged files", [
        "ALTER TABLE files ADD COLUMN artist TEXT",
        "ALTER TABLE files ADD COLUMN title TEXT",
        "ALTER TABLE files ADD COLUMN album TEXT",
        "ALTER TABLE files ADD COLUMN year INTEGER",
        _CONTENT_ALIASES,
        "CREATE INDEX ix_content_aliases_file_id ON content_aliases (file_id)",
        "DROP VIEW tracks",
        _TRACKS_WITH_NAMES,
    ]),
    # daemon_status held one daemon's self-report, rewritten every few seconds: nothing to keep.
    Step(10, "host_status: each daemon's self-report, one row per host sharing the database", [
        "DROP TABLE daemon_status",
        """CREATE TABLE host_status (
    host TEXT NOT NULL PRIMARY KEY,
    data TEXT NOT NULL,
    updated_at REAL NOT NULL
)""",
    ]),
    # Analyses stored before this step keep NULL in the new columns until their files are analysed again
    # (the analyzer version changed with them, so a rescan does that).
    Step(11, "chords with sevenths, suspensions and bass notes beside their majmin `simple` form; "
            "the key as Camelot and Open Key", [
        "ALTER TABLE chords ADD COLUMN simple TEXT",
        "ALTER TABLE bars ADD COLUMN chord_simple TEXT",
        "ALTER TABLE analyses ADD COLUMN key_camelot TEXT",
        "ALTER TABLE analyses ADD COLUMN key_open TEXT",
        "CREATE INDEX ix_analyses_key_camelot ON analyses (key_camelot)",
        "DROP VIEW tracks",
        _TRACKS_WITH_NOTATIONS,
    ]),
    # Analyses stored before this step keep NULL until their files are analysed again (the analyzer version
    # changed with it, so a rescan does that).
    Step(12, "analyses.tuning_cents: how far the recording sits from A=440; tracks shows it", [
        "ALTER TABLE analyses ADD COLUMN tuning_cents REAL",
        "DROP VIEW tracks",
        _TRACKS_WITH_TUNING,
    ]),
    # Nothing stored changes: paths written before this step are absolute, and show no library.
    Step(13, "tracks.library: the named library root a path is stored relative to, for hosts that mount the "
            "shared library at different paths", [
        "DROP VIEW tracks",
        _TRACKS_WITH_LIBRARY,
    ]),
]

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""


_IDENTITY = "INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
# Word-for-word, in this order: the AUTOINCREMENT form must be rewritten before the plain key it contains.
_POSTGRESQL_REWRITES = (
    (re.compile(r"\bINTEGER NOT NULL PRIMARY KEY AUTOINCREMENT\b"), _IDENTITY),
    (re.compile(r"\bINTEGER NOT NULL PRIMARY KEY\b(?! CHECK)"), _IDENTITY),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\bx''"), "'\\x'::bytea"),
    (re.compile(r"\binstr\("), "strpos("),  # same arguments, same 1-based answer, 0 when absent
)

# Taken by each migrating transaction on PostgreSQL, whose DDL does not wait for another host's as SQLite's lock does.
_MIGRATION_LOCK = 0x62656174


def for_dialect(sql: str, dialect: str) -> str:
    """A step's SQLite text as `dialect` must read it to build the same schema."""
    if dialect == "postgresql":
        for pattern, replacement in _POSTGRESQL_REWRITES:
            sql = pattern.sub(replacement.replace("\\", "\\\\"), sql)  # a replacement's backslash is literal
    return sql


def current_version(engine: Engine) -> int:
    """0 for a database no step has touched."""
    with engine.connect() as conn:
        return _version(conn)


def migrate(engine: Engine, steps: Sequence[Step] = STEPS) -> int:
    """Apply the missing steps in order, each in its own transaction; return the version reached.

    Several processes may start at once; each step re-reads the version under
    the write lock, so a step another process just applied is skipped.
    """
    target = _target(steps)
    if _checked(current_version(engine), target) == target:
        return target
    for step in steps:
        with write_transaction(engine) as conn:
            dialect = conn.dialect.name
            if dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            conn.exec_driver_sql(_VERSION_TABLE)
            if _checked(_version(conn), target) >= step.version:
                continue
            for action in step.actions:
                if isinstance(action, str):
                    conn.exec_driver_sql(for_dialect(action, dialect))
                else:
                    action(conn)
            conn.execute(
                text("INSERT INTO schema_version (version, description, applied_at) VALUES (:v, :d, :t)"),
                {"v": step.version, "d": step.description, "t": datetime.now(UTC).isoformat(timespec="seconds")},
            )
    return target


def _version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    return conn.scalar(text("SELECT coalesce(max(version), 0) FROM schema_version"))


def _target(steps: Sequence[Step]) -> int:
    """Versions must run 1, 2, 3...: a gap or a reordering would let a database skip a step."""
    versions = [step.version for step in steps]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1, 2, 3, ... in order, got {versions}")
    return len(versions)


def _checked(version: int, target: int) -> int:
    if version > target:
        raise SchemaTooNew(
            f"the database is at schema version {version}, newer than this beatwatch knows ({target}); "
            "upgrade beatwatch to use it"
        )
    return version
