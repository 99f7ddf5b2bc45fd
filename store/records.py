"""Saving one sidecar document as rows, and finding a track again for `beatwatch show`.

All rows of one analysis commit in a single write transaction, so readers
see a whole analysis or none of it. Timeline rows go in as executemany
batches: a 3-hour mix has ~20,000 beats, and per-row ORM objects would
dominate the save.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (ColumnElement, Connection, CursorResult, Engine, and_, delete, insert, or_, select, text,
                        update)
from sqlalchemy.dialects import postgresql, sqlite

from beatwatch.analysis.document import SCHEMA, printable

from .names import name_key
from .models import (AnalysisRow, BarRow, Base, BeatRow, ChordRow, ContentAliasRow, FilePathRow, FileRow,
                     KeySegmentRow, SectionRow, TagRow)
from .transactions import lock_content, write_transaction

SUMMARY_COLUMNS = (
    "bpm", "bpm_confidence", "meter", "key", "key_confidence", "key_camelot", "key_open", "tuning_cents",
    "loudness_lufs", "loudness_range_lu", "danceability", "energy",
)

# (model, section of the document, list inside it). Document fields and
# columns share names, so the model's columns say what is copied.
CHILD_ROWS: tuple[tuple[type[Base], str, str], ...] = (
    (BeatRow, "timeline", "beats"),
    (BarRow, "timeline", "bars"),
    (ChordRow, "timeline", "chords"),
    (KeySegmentRow, "timeline", "keys"),
    (SectionRow, "timeline", "sections"),
    (TagRow, "", "tags"),  # top level: every score; summary.tags holds only the top ones
)

_HASH_PREFIX = re.compile(r"[0-9a-f]{8,64}")


# The `tracks` columns for one content rather than one path: `tracks` lists only paths that hold the content now,
# while `show HASH` must still find audio that was overwritten since, and a copy must give one row, not two.
_CONTENT_ROW = text("""
SELECT f.id AS file_id, a.id AS analysis_id, f.path AS path, f.content_hash AS content_hash, f.format AS format,
    f.size AS size, a.duration AS duration, a.bpm AS bpm, a.bpm_confidence AS bpm_confidence, a.meter AS meter,
    a.key AS key, a.key_confidence AS key_confidence, a.key_camelot AS key_camelot, a.key_open AS key_open,
    a.tuning_cents AS tuning_cents,
    a.loudness_lufs AS loudness_lufs,
    a.loudness_range_lu AS loudness_range_lu, a.danceability AS danceability, a.energy AS energy,
    a.analyzer_version AS analyzer_version, a.created_at AS analyzed_at, a.sidecar_path AS sidecar_path,
    f.artist AS artist, f.title AS title, f.album AS album, f.year AS year
FROM files AS f JOIN analyses AS a ON a.id = (SELECT max(id) FROM analyses WHERE file_id = f.id)
WHERE f.id = :id""")


class AmbiguousHash(LookupError):
    """A hash prefix matched several files; the user must type more of it."""


def save_timeline(engine: Engine, doc: dict[str, Any], *, sidecar_path: str | None,
                  mtime: float | None = None, path: str | None = None) -> int:
    """Store one analysis in a transaction of its own and return its id."""
    with write_transaction(engine) as conn:
        return save_timeline_in(conn, doc, sidecar_path=sidecar_path, mtime=mtime, path=path)


def save_timeline_in(conn: Connection, doc: dict[str, Any], *, sidecar_path: str | None,
                     mtime: float | None = None, path: str | None = None, linked: bool = False) -> int:
    """Store one analysis inside the caller's write transaction and return its id.

    It commits with the caller's other changes (a job marked done) or not at
    all. An earlier analysis of the same content by the same analyzer
    version is replaced, children and all, except for a linked copy
    (`linked`): it only adds its path to the stored analysis, which keeps its
    rows and its id, so jobs that name it keep naming it. path: the file's
    exact name as stored, when the caller has it (the document holds only
    its printable form, at the analysing host's path).
    """
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"cannot store a sidecar of schema {doc.get('schema')!r}; expected {SCHEMA!r}")
    now = datetime.now(UTC).isoformat(timespec="seconds")
    # Hosts saving the same content at once take turns: the second then finds the first's rows instead of
    # colliding with them on the unique content hash.
    lock_content(conn, doc["file"]["content_hash"])
    name = path if path is not None else doc["file"]["path"]
    file_id = _upsert_file(conn, doc["file"], printable(name), mtime, now)
    _record_path(conn, file_id, name, now)
    version = doc["analyzer"]["version"]
    if linked:
        kept = conn.scalar(select(AnalysisRow.id).where(AnalysisRow.file_id == file_id,
                                                        AnalysisRow.analyzer_version == version))
        if kept is not None:
            return kept
    conn.execute(delete(AnalysisRow).where(AnalysisRow.file_id == file_id, AnalysisRow.analyzer_version == version))
    analysis_id = _inserted_id(
        conn.execute(insert(AnalysisRow).values(_analysis_row(doc, file_id, sidecar_path, now))))
    for model, rows in _child_rows(doc, analysis_id):
        if rows:
            conn.execute(insert(model), rows)
    return analysis_id


def find_analysis(engine: Engine, path_or_hash: str) -> dict[str, Any] | None:
    """A content's summary row (the `tracks` columns) for a path or hash, plus the paths whose latest content it is.

    Paths are tried first, since a file may well be named like a hash. Found
    by path, `path` is that path, not the content's latest one: after a copy
    the original is still the file asked about.
    Raises AmbiguousHash when a hash prefix matches more than one file.
    """
    with engine.connect() as conn:
        file_id, asked = _file_by_path(conn, path_or_hash)
        if file_id is None:
            file_id = _file_by_hash(conn, path_or_hash)
        if file_id is None:
            return None
        row = conn.execute(_CONTENT_ROW, {"id": file_id}).mappings().first()
        if row is None:
            return None
        paths = conn.scalars(
            select(FilePathRow.path).where(FilePathRow.file_id == file_id)
            .order_by(FilePathRow.seen_at.desc(), FilePathRow.id)
        ).all()
        path = asked or row["path"]
        missing_since = conn.scalar(select(FilePathRow.missing_since).where(FilePathRow.path == path))
        return {**row, "path": path, "paths": list(paths), "missing_since": missing_since}


def sections_of(engine: Engine, analysis_id: int) -> list[dict[str, Any]]:
    """An analysis's sections in order, as the sidecar lists them: the form `beatwatch show` prints."""
    with engine.connect() as conn:
        rows = conn.execute(select(SectionRow).where(SectionRow.analysis_id == analysis_id).order_by(SectionRow.idx))
        return [dict(row) for row in rows.mappings()]


def form_line(sections: list[dict[str, Any]]) -> str:
    """"intro 4 · verse 8 · chorus 8 · …": each section's label and length in bars; "-" for none."""
    return " · ".join(f"{s['label']} {s['bars']}" for s in sections) or "-"


# The names a file's tags give (sidecar file.metadata). Tags are part of the bytes the content hash covers, so a
# document without them (an untagged file) has nothing to change in a row found by that hash.
METADATA_COLUMNS = ("artist", "title", "album", "year")


def _upsert_file(conn: Connection, info: dict[str, Any], path: str, mtime: float | None, now: str) -> int:
    """path: the name the caller stores the file under, which may differ from the document's (a library root's
    relative name, where the document has the analysing host's mount)."""
    metadata = info.get("metadata") or {}
    values = {"path": path, "size": info.get("size"), "format": info.get("format"), "last_seen": now,
              **{name: metadata[name] for name in METADATA_COLUMNS if name in metadata}}
    if mtime is not None:
        values["mtime"] = mtime
    file_id = conn.scalar(select(FileRow.id).where(FileRow.content_hash == info["content_hash"]))
    if file_id is None:
        inserted = insert(FileRow).values(content_hash=info["content_hash"], first_seen=now, **values)
        return _inserted_id(conn.execute(inserted))
    conn.execute(update(FileRow).where(FileRow.id == file_id).values(values))
    return file_id


def _inserted_id(result: CursorResult[Any]) -> int:
    """The new row's id; SQLAlchemy types the key Optional, which a one-row INSERT never leaves empty."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("an INSERT returned no primary key")
    return key[0]


def _record_path(conn: Connection, file_id: int, path: str, now: str) -> None:
    """A path belongs to the content last seen there, so an overwritten file's path moves to the new content."""
    text_path, raw = name_key(path)
    path_id = conn.scalar(select(FilePathRow.id).where(*_named(text_path, raw)))
    if path_id is None:
        conn.execute(insert(FilePathRow).values(file_id=file_id, path=text_path, raw_path=raw, seen_at=now))
    else:
        conn.execute(update(FilePathRow).where(FilePathRow.id == path_id).values(file_id=file_id, seen_at=now))


def _analysis_row(doc: dict[str, Any], file_id: int, sidecar_path: str | None, now: str) -> dict[str, Any]:
    info, analyzer = doc["file"], doc["analyzer"]
    summary, performance = doc.get("summary") or {}, doc.get("performance") or {}
    return {
        "file_id": file_id,
        "analyzer_version": analyzer["version"],
        "created_at": now,
        "duration": info.get("duration"),
        "sample_rate": info.get("sample_rate"),
        "channels": info.get("channels"),
        # Only the fields the document has: one written before a field existed (key_camelot came with schema
        # step 9) leaves the column NULL, and still saves into a database from before that column.
        **{name: summary[name] for name in SUMMARY_COLUMNS if name in summary},
        "device": analyzer.get("device"),
        "wall_s": performance.get("wall_s"),
        "realtime_factor": performance.get("realtime_factor"),
        "sidecar_path": printable(sidecar_path) if sidecar_path is not None else None,
    }


def _child_rows(doc: dict[str, Any], analysis_id: int) -> list[tuple[type[Base], list[dict[str, Any]]]]:
    """Rows per child table; `idx` numbers the items in document order where the table has it."""
    batches = []
    for model, section, name in CHILD_ROWS:
        container = doc if not section else (doc.get(section) or {})
        items = container.get(name) or ((doc.get("summary") or {}).get("tags") if model is TagRow else None) or []
        # Only the fields the items have, as for the summary: a document older than a column leaves it NULL.
        fields = [column.key for column in model.__table__.columns
                  if column.key not in ("analysis_id", "idx") and any(column.key in item for item in items)]
        numbered = "idx" in model.__table__.columns
        batches.append((model, [
            {"analysis_id": analysis_id, **({"idx": i} if numbered else {}), **{f: item.get(f) for f in fields}}
            for i, item in enumerate(items)
        ]))
    return batches


def _file_by_path(conn: Connection, path: str) -> tuple[int | None, str | None]:
    """The content a path held most recently (file_paths; files.path covers rows written elsewhere), and the
    stored form of that path."""
    keys = list(dict.fromkeys([name_key(path), name_key(os.path.abspath(path))]))
    found = conn.execute(
        select(FilePathRow.file_id, FilePathRow.path)
        .where(or_(*(and_(*_named(text_path, raw)) for text_path, raw in keys)))
        .order_by(FilePathRow.seen_at.desc()).limit(1)
    ).first()
    if found is None:
        found = conn.execute(
            select(FileRow.id, FileRow.path).where(FileRow.path.in_([text_path for text_path, _ in keys]))
            .order_by(FileRow.last_seen.desc()).limit(1)
        ).first()
    return (found[0], found[1]) if found is not None else (None, None)


def _named(text_path: str, raw: bytes | None) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The file_paths row of one name: printable path and exact bytes both (IS, so NULL matches NULL)."""
    return FilePathRow.path == text_path, FilePathRow.raw_path.is_(raw) if raw is None else FilePathRow.raw_path == raw


def _file_by_hash(conn: Connection, value: str) -> int | None:
    prefix = value.strip().lower()
    if not _HASH_PREFIX.fullmatch(prefix):
        return None
    ids = conn.scalars(select(FileRow.id).where(FileRow.content_hash.like(prefix + "%")).limit(2)).all()
    if not ids:
        ids = conn.scalars(select(ContentAliasRow.file_id)
                           .where(ContentAliasRow.content_hash.like(prefix + "%")).limit(2)).all()
    if len(ids) > 1:
        raise AmbiguousHash(f"hash prefix {prefix} matches more than one file; give more characters")
    return ids[0] if ids else None


@dataclass(frozen=True)
class ExistingAnalysis:
    """content_hash: the analysed content's own hash, which its sidecar names; the hash looked up may be an alias."""

    analysis_id: int
    sidecar_path: str | None
    content_hash: str


def existing_analysis(engine: Engine, content_hash: str, analyzer_version: str) -> ExistingAnalysis | None:
    """The analysis of this exact content by this analyzer version, if one is stored (dedupe of copies); a hash
    that beatwatch's own tag writing gave the content finds it too."""
    with engine.connect() as conn:
        file_id = _file_of_hash(conn, content_hash)
        row = conn.execute(
            select(AnalysisRow.id, AnalysisRow.sidecar_path, FileRow.content_hash)
            .join(FileRow, FileRow.id == AnalysisRow.file_id)
            .where(FileRow.id == file_id, AnalysisRow.analyzer_version == analyzer_version)
        ).first() if file_id is not None else None
    return ExistingAnalysis(row[0], row[1], row[2]) if row else None


def _file_of_hash(conn: Connection, content_hash: str) -> int | None:
    found = conn.scalar(select(FileRow.id).where(FileRow.content_hash == content_hash))
    if found is None:
        found = conn.scalar(select(ContentAliasRow.file_id).where(ContentAliasRow.content_hash == content_hash))
    return found


def content_hashes(engine: Engine, content_hash: str) -> set[str]:
    """Every hash the content behind this one has had: its own and those of its tagged versions."""
    with engine.connect() as conn:
        file_id = _file_of_hash(conn, content_hash)
        if file_id is None:
            return set()
        own = conn.scalar(select(FileRow.content_hash).where(FileRow.id == file_id))
        aliases = conn.scalars(select(ContentAliasRow.content_hash).where(ContentAliasRow.file_id == file_id))
        return {own, *aliases}


def add_alias(engine: Engine, content_hash: str, alias: str) -> None:
    """The content `content_hash` (or one of its aliases) now also lies on disk as bytes hashing to `alias`.

    Copies of one song tagged alike are the same bytes again, and two hosts may tag two copies at once (one
    links while the other, its analysis just stored, is still tagging): the second to insert the alias finds
    it there and keeps it, instead of failing on its key.
    """
    now = datetime.now(UTC).isoformat(timespec="seconds")
    with write_transaction(engine) as conn:
        file_id = _file_of_hash(conn, content_hash)
        if file_id is None or _file_of_hash(conn, alias) is not None:
            return
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(dialect_insert(ContentAliasRow).values(content_hash=alias, file_id=file_id, created_at=now)
                     .on_conflict_do_nothing())


def rename_path(engine: Engine, old: str, new: str, *, sidecar_path: str | None) -> None:
    """A file moved by beatwatch (inbox.after = "move"): its rows follow it, with the moved sidecar."""
    (old_text, old_raw), (new_text, new_raw) = name_key(old), name_key(new)
    with write_transaction(engine) as conn:
        file_id = conn.scalar(select(FilePathRow.file_id).where(*_named(old_text, old_raw)))
        if file_id is None:
            return
        now = datetime.now(UTC).isoformat(timespec="seconds")
        conn.execute(update(FilePathRow).where(*_named(old_text, old_raw))
                     .values(path=new_text, raw_path=new_raw, seen_at=now))
        conn.execute(update(FileRow).where(FileRow.id == file_id, FileRow.path == old_text).values(path=new_text))
        if sidecar_path is not None:
            conn.execute(update(AnalysisRow).where(AnalysisRow.file_id == file_id)
                         .values(sidecar_path=printable(sidecar_path)))


def known_paths(engine: Engine) -> list[tuple[str, str | None]]:
    """Every path with rows, and since when a rescan has found it gone (None: present at the last look)."""
    with engine.connect() as conn:
        return [(path, since) for path, since in conn.execute(select(FilePathRow.path, FilePathRow.missing_since))]


def known_path_batches(engine: Engine, size: int = 5000) -> Iterator[list[tuple[str, str | None]]]:
    """known_paths a batch at a time, each read in its own short transaction and walked by the primary key, so a
    library of a million paths is never one list and writes between batches are not held up."""
    after = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(select(FilePathRow.id, FilePathRow.path, FilePathRow.missing_since)
                                .where(FilePathRow.id > after).order_by(FilePathRow.id).limit(size)).all()
        if not rows:
            return
        after = rows[-1].id
        yield [(path, since) for _, path, since in rows]


def mark_missing(engine: Engine, *, gone: list[str], back: list[str], now: str) -> None:
    """Record which paths a rescan found gone, and which came back; rows stay until `remove_paths`."""
    with write_transaction(engine) as conn:
        for part in _chunks(gone):
            conn.execute(update(FilePathRow).where(FilePathRow.path.in_(part), FilePathRow.missing_since.is_(None))
                         .values(missing_since=now))
        for part in _chunks(back):
            conn.execute(update(FilePathRow).where(FilePathRow.path.in_(part)).values(missing_since=None))


def _chunks(paths: list[str], size: int = 500) -> list[list[str]]:
    """Few enough bound parameters per statement for any SQLite build."""
    return [paths[i:i + size] for i in range(0, len(paths), size)]


def remove_paths(engine: Engine, paths: list[str]) -> int:
    """Forget these paths; a content left with no path goes too, with its analyses (ON DELETE CASCADE), and
    one that keeps another path is listed under it. Returns how many contents went."""
    if not paths:
        return 0
    with write_transaction(engine) as conn:
        file_ids: set[int] = set()
        for part in _chunks(paths):
            file_ids.update(conn.scalars(select(FilePathRow.file_id).where(FilePathRow.path.in_(part))))
            conn.execute(delete(FilePathRow).where(FilePathRow.path.in_(part)))
        removed = 0
        for file_id in file_ids:
            left = conn.scalar(select(FilePathRow.path).where(FilePathRow.file_id == file_id)
                               .order_by(FilePathRow.seen_at.desc()).limit(1))
            if left is None:
                conn.execute(delete(FileRow).where(FileRow.id == file_id))
                removed += 1
            else:
                conn.execute(update(FileRow).where(FileRow.id == file_id, FileRow.path.not_in(
                    select(FilePathRow.path).where(FilePathRow.file_id == file_id))).values(path=left))
        return removed


class BadFilter(ValueError):
    """A user's WHERE clause that the database refused (a syntax error, an unknown column)."""


def tracks_where(engine: Engine, where: str) -> list[dict[str, Any]]:
    """The `tracks` rows a user's WHERE clause selects, ordered by path; the clause can only read.

    It goes to the driver as written (no bind-parameter parsing, so `key = 'A:min'` keeps its colon) inside
    a read-only connection: SQLite's query_only, any other database's READ ONLY transaction. sqlite3 runs
    one statement per call; psycopg runs a string of several (`1; COMMIT; DELETE ...`) when it has no
    parameters, so there the query gets one, which makes it a single statement: the clause cannot end the
    read-only transaction and write after it.
    """
    from sqlalchemy.exc import DBAPIError

    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA query_only = ON" if sqlite else "SET TRANSACTION READ ONLY")
        try:
            if sqlite:
                result = conn.exec_driver_sql(f"SELECT * FROM tracks WHERE {where} ORDER BY path")
            else:  # the clause's own % doubled: psycopg reads %% as a literal %, a lone one as a placeholder
                result = conn.exec_driver_sql(
                    f"SELECT * FROM tracks WHERE ({where.replace('%', '%%')}) AND %(one_statement)s ORDER BY path",
                    {"one_statement": True})
            return [dict(row) for row in result.mappings()]
        except DBAPIError as exc:
            raise BadFilter(f"the filter {where!r} is not a valid WHERE clause on tracks ({exc.orig})") from None
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA query_only = OFF")
            conn.rollback()
