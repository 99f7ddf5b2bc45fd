"""ORM models for the schema that migrations.py builds.

They must agree with the migrated schema column for column (a test compares
the two); they never create tables themselves. The type map makes
`create_all` emit the same INTEGER/REAL/TEXT names the DDL uses (on
PostgreSQL, the names migrations.for_dialect rewrites them to), which is
what lets that test compare types too. The `tracks` view is plain SQL and
has no model. Each class is named for its table's row (`ChordRow`), so none
shares a name with the analysis's own Chord, Bar and KeySegment or with
store/jobs.py's Job.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (REAL, CheckConstraint, ForeignKey, Index, Integer, LargeBinary, Text, UniqueConstraint, column,
                        func, text)
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import ColumnElement


class Base(DeclarativeBase):
    # REAL is 4 bytes on PostgreSQL: epoch seconds in it would be off by minutes.
    type_annotation_map = {int: Integer, float: REAL().with_variant(DOUBLE_PRECISION(), "postgresql"), str: Text}


# Children live and die with their parent; passive_deletes leaves unloaded ones to ON DELETE CASCADE.
_CHILDREN = "all, delete-orphan"


def _analysis_fk() -> Mapped[int]:
    return mapped_column(ForeignKey("analyses.id", ondelete="CASCADE"), primary_key=True)


class FileRow(Base):
    __tablename__ = "files"

    id: Mapped[int] = mapped_column(primary_key=True)
    content_hash: Mapped[str] = mapped_column(unique=True)
    path: Mapped[str] = mapped_column(index=True)
    size: Mapped[int | None]
    mtime: Mapped[float | None]
    format: Mapped[str | None]
    first_seen: Mapped[str | None]
    last_seen: Mapped[str | None]
    artist: Mapped[str | None]
    title: Mapped[str | None]
    album: Mapped[str | None]
    year: Mapped[int | None]

    paths: Mapped[list[FilePathRow]] = relationship(back_populates="file", cascade=_CHILDREN, passive_deletes=True)
    analyses: Mapped[list[AnalysisRow]] = relationship(back_populates="file", cascade=_CHILDREN, passive_deletes=True)


class _NoBytes(ColumnElement[bytes]):
    """The empty blob, as each dialect spells it in DDL."""

    inherit_cache = True


@compiles(_NoBytes)
def _no_bytes_sqlite(element: _NoBytes, compiler: Any, **kw: Any) -> str:
    return "x''"


@compiles(_NoBytes, "postgresql")
def _no_bytes_postgresql(element: _NoBytes, compiler: Any, **kw: Any) -> str:
    return "'\\x'::bytea"


def _name_index(name: str, **kwargs) -> Index:
    """A name's identity: its printable path and, for names that are not UTF-8, its exact bytes (store/names.py)."""
    return Index(name, "path", func.coalesce(column("raw_path"), _NoBytes()), unique=True, **kwargs)


class ContentAliasRow(Base):
    """Another hash of a file's content: its bytes after `beatwatch tag` or the daemon wrote tags into it."""

    __tablename__ = "content_aliases"

    content_hash: Mapped[str] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[str | None]


class FilePathRow(Base):
    __tablename__ = "file_paths"
    __table_args__ = (_name_index("ux_file_paths_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    path: Mapped[str]
    raw_path: Mapped[bytes | None] = mapped_column(LargeBinary)
    seen_at: Mapped[str | None]
    missing_since: Mapped[str | None]

    file: Mapped[FileRow] = relationship(back_populates="paths")


class AnalysisRow(Base):
    __tablename__ = "analyses"
    __table_args__ = (UniqueConstraint("file_id", "analyzer_version"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    analyzer_version: Mapped[str]
    created_at: Mapped[str | None]
    duration: Mapped[float | None]
    sample_rate: Mapped[int | None]
    channels: Mapped[int | None]
    bpm: Mapped[float | None] = mapped_column(index=True)
    bpm_confidence: Mapped[float | None]
    meter: Mapped[int | None]
    key: Mapped[str | None] = mapped_column(index=True)
    key_confidence: Mapped[float | None]
    loudness_lufs: Mapped[float | None]
    loudness_range_lu: Mapped[float | None]
    danceability: Mapped[float | None]
    energy: Mapped[float | None]
    device: Mapped[str | None]
    wall_s: Mapped[float | None]
    realtime_factor: Mapped[float | None]
    sidecar_path: Mapped[str | None]
    key_camelot: Mapped[str | None] = mapped_column(index=True)
    key_open: Mapped[str | None]
    tuning_cents: Mapped[float | None]

    file: Mapped[FileRow] = relationship(back_populates="analyses")
    beats: Mapped[list[BeatRow]] = relationship(order_by="BeatRow.idx", cascade=_CHILDREN, passive_deletes=True)
    bars: Mapped[list[BarRow]] = relationship(order_by="BarRow.bar", cascade=_CHILDREN, passive_deletes=True)
    chords: Mapped[list[ChordRow]] = relationship(order_by="ChordRow.idx", cascade=_CHILDREN, passive_deletes=True)
    key_segments: Mapped[list[KeySegmentRow]] = relationship(
        order_by="KeySegmentRow.idx", cascade=_CHILDREN, passive_deletes=True
    )
    tags: Mapped[list[TagRow]] = relationship(cascade=_CHILDREN, passive_deletes=True)
    sections: Mapped[list[SectionRow]] = relationship(order_by="SectionRow.idx", cascade=_CHILDREN,
                                                      passive_deletes=True)


class BeatRow(Base):
    __tablename__ = "beats"
    __table_args__ = (Index("ix_beats_analysis_id_time", "analysis_id", "time"),)

    analysis_id: Mapped[int] = _analysis_fk()
    idx: Mapped[int] = mapped_column(primary_key=True)
    time: Mapped[float]
    bar: Mapped[int | None]
    position: Mapped[int | None]
    confidence: Mapped[float | None]
    transient_time: Mapped[float | None]
    transient_strength: Mapped[float | None]


class BarRow(Base):
    __tablename__ = "bars"

    analysis_id: Mapped[int] = _analysis_fk()
    bar: Mapped[int] = mapped_column(primary_key=True)
    time: Mapped[float]
    duration: Mapped[float | None]
    beats: Mapped[int | None]
    chord: Mapped[str | None]
    chord_confidence: Mapped[float | None]
    loudness: Mapped[float | None]
    chord_simple: Mapped[str | None]


class ChordRow(Base):
    __tablename__ = "chords"

    analysis_id: Mapped[int] = _analysis_fk()
    idx: Mapped[int] = mapped_column(primary_key=True)
    start: Mapped[float]
    end: Mapped[float]
    label: Mapped[str]
    confidence: Mapped[float | None]
    simple: Mapped[str | None]


class KeySegmentRow(Base):
    __tablename__ = "key_segments"

    analysis_id: Mapped[int] = _analysis_fk()
    idx: Mapped[int] = mapped_column(primary_key=True)
    start: Mapped[float]
    end: Mapped[float]
    key: Mapped[str | None]
    confidence: Mapped[float | None]


class TagRow(Base):
    __tablename__ = "tags"

    analysis_id: Mapped[int] = _analysis_fk()
    model: Mapped[str] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(primary_key=True)
    score: Mapped[float | None]


class SectionRow(Base):
    __tablename__ = "sections"

    analysis_id: Mapped[int] = _analysis_fk()
    idx: Mapped[int] = mapped_column(primary_key=True)
    start: Mapped[float]
    end: Mapped[float]
    bar: Mapped[int]
    bars: Mapped[int]
    label: Mapped[str] = mapped_column(index=True)
    letter: Mapped[str]
    confidence: Mapped[float | None]


_ACTIVE = "state IN ('queued', 'running', 'retry_wait')"


class JobRow(Base):
    """A file's turn in the queue; store/jobs.py reads and writes it with Core statements, not this class."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'retry_wait', 'done', 'failed')"),
        Index("ix_jobs_state_not_before", "state", "not_before"),
        Index("ix_jobs_path", "path"),
        Index("ix_jobs_analysis_id", "analysis_id"),
        _name_index("ux_jobs_active_name", sqlite_where=text(_ACTIVE), postgresql_where=text(_ACTIVE)),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str]
    raw_path: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str]
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    force: Mapped[int] = mapped_column(server_default=text("0"))
    lease_owner: Mapped[str | None]
    lease_expires: Mapped[float | None]
    not_before: Mapped[float | None]
    error: Mapped[str | None]
    stage: Mapped[str | None]
    progress: Mapped[float | None]
    size: Mapped[int | None]
    mtime: Mapped[float | None]
    content_hash: Mapped[str | None]
    analysis_id: Mapped[int | None] = mapped_column(ForeignKey("analyses.id", ondelete="SET NULL"))
    audio_duration: Mapped[float | None]
    wall_s: Mapped[float | None]
    outcome: Mapped[str | None]
    created_at: Mapped[float | None]
    updated_at: Mapped[float | None]
    started_at: Mapped[float | None]
    finished_at: Mapped[float | None]


class HostStatusRow(Base):
    __tablename__ = "host_status"

    host: Mapped[str] = mapped_column(primary_key=True)
    data: Mapped[str]
    updated_at: Mapped[float]
