"""The store against a real SQLite file and a real PostgreSQL database: migrations, saving, the tracks view,
lookups; and SQLite's own concerns (pragmas, its write lock, in-place upgrades of older files)."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from beatwatch.analysis.document import printable
from beatwatch.store.db import is_locked, open_database, sqlite_url, write_lock_held
from beatwatch.store.migrations import STEPS, SchemaTooNew, Step, current_version, migrate
from beatwatch.store.models import Base, FileRow
from beatwatch.store.records import AmbiguousHash, find_analysis, form_line, save_timeline, sections_of

HASH_A = "a" * 64
HASH_B = "b" * 64


@pytest.fixture
def engine(any_engine):
    """Each backend in turn; tests about SQLite alone use `sqlite_engine`."""
    return any_engine


@pytest.fixture
def sqlite_engine(tmp_path):
    engine = open_database(sqlite_url(tmp_path / "beatwatch.db"))
    yield engine
    engine.dispose()


def make_doc(*, path: str = "/music/song.mp3", content_hash: str = HASH_A, version: str = "0.1.0",
             bpm: float | None = 120.0, key: str | None = "A minor", beats: int = 8) -> dict:
    beat_rows = [
        {"time": 0.5 * i, "bar": i // 4 + 1, "position": i % 4 + 1, "confidence": 0.9,
         "transient_time": None if i == 0 else 0.5 * i - 0.01, "transient_strength": 0.8}
        for i in range(beats)
    ]
    bar_rows = [
        {"bar": b + 1, "time": 2.0 * b, "duration": 2.0, "beats": 4, "chord": "C:maj",
         "chord_confidence": 0.9, "loudness": -12.0, "section": min(b // 4, 1)}
        for b in range(beats // 4)
    ]
    # An intro of the first 4 bars (or fewer), a chorus of the rest.
    intro = min(4, len(bar_rows))
    sections = [{"start": 0.0, "end": 2.0 * intro, "bar": 1, "bars": intro, "label": "intro", "letter": "A",
                 "confidence": 0.7}]
    if len(bar_rows) > intro:
        sections.append({"start": 2.0 * intro, "end": 2.0 * len(bar_rows), "bar": intro + 1,
                         "bars": len(bar_rows) - intro, "label": "chorus", "letter": "B", "confidence": 0.8})
    return {
        "schema": "beatwatch.timeline/1",
        "file": {"path": path, "content_hash": content_hash, "size": 123, "format": "mp3",
                 "duration": 180.0, "sample_rate": 44100, "channels": 2},
        "analyzer": {"version": version, "device": "cpu", "analyses": {"beats": "test"}},
        "performance": {"wall_s": 3.2, "realtime_factor": 56.0, "stages": {"decode": 0.2}},
        "summary": {"bpm": bpm, "bpm_confidence": 0.9, "meter": 4, "key": key, "key_confidence": 0.8,
                    "loudness_lufs": -14.0, "loudness_range_lu": 5.0, "danceability": 0.6, "energy": 0.7,
                    "tags": [{"label": "rock", "score": 0.5, "model": "msd-musicnn"},
                             {"label": "pop", "score": 0.25, "model": "msd-musicnn"}]},
        "notes": [],
        "timeline": {
            "beats": beat_rows,
            "bars": bar_rows,
            "chords": [{"start": 0.0, "end": 2.0, "label": "C:maj", "confidence": 0.9},
                       {"start": 2.0, "end": 4.0, "label": "N", "confidence": None}],
            "tempo": [{"time": 0.5, "bpm": 120.0}],
            "keys": [{"start": 0.0, "end": 180.0, "key": key, "confidence": 0.8}],
            "energy": {"hop_s": 0.5, "values": [0.1, 0.2]},
            "sections": sections,
        },
    }


def doc_before_sections(**fields) -> dict:
    """A sidecar as releases before schema step 7 wrote it: no sections."""
    doc = make_doc(**fields)
    del doc["timeline"]["sections"]
    return doc


def silent_doc(path: str, content_hash: str) -> dict:
    doc = make_doc(path=path, content_hash=content_hash, bpm=None, key=None, beats=0)
    doc["summary"] = {name: None for name in doc["summary"]} | {"tags": []}
    doc["timeline"] |= {"chords": [], "keys": [], "tempo": [], "sections": []}
    return doc


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.scalar(text(f"SELECT count(*) FROM {table}"))


def test_open_database_creates_the_folder_and_sets_pragmas(tmp_path):
    db_file = tmp_path / "not" / "yet" / "there.db"
    engine = open_database(sqlite_url(db_file))
    try:
        assert db_file.is_file()
        with engine.connect() as conn:
            values = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                      for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")}
        assert values == {"journal_mode": "wal", "busy_timeout": 10000, "foreign_keys": 1, "synchronous": 1}
    finally:
        engine.dispose()


def test_sqlite_url_is_absolute_and_survives_odd_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = sqlite_url("data/odd?name#1%.db")
    assert make_url(url).database == str(tmp_path / "data" / "odd?name#1%.db")


def test_migrate_twice_keeps_version_and_data(tmp_path):
    url = sqlite_url(tmp_path / "beatwatch.db")
    engine = open_database(url)
    analysis_id = save_timeline(engine, make_doc(), sidecar_path=None)
    assert migrate(engine) == len(STEPS) == current_version(engine)
    engine.dispose()

    engine = open_database(url)
    try:
        assert current_version(engine) == len(STEPS)
        assert count(engine, "schema_version") == len(STEPS)
        assert find_analysis(engine, HASH_A)["analysis_id"] == analysis_id
        assert count(engine, "beats") == 8
    finally:
        engine.dispose()


def test_an_appended_step_applies_alone_and_keeps_data(engine):
    def backfill(conn):
        conn.exec_driver_sql("UPDATE files SET note = 'from step 2'")

    steps = [*STEPS, Step(len(STEPS) + 1, "a note per file", ["ALTER TABLE files ADD COLUMN note TEXT", backfill])]
    save_timeline(engine, make_doc(), sidecar_path=None)

    assert migrate(engine, steps) == len(steps)
    assert migrate(engine, steps) == len(steps)
    assert current_version(engine) == len(steps)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT note FROM files")) == "from step 2"
    assert count(engine, "beats") == 8
    with pytest.raises(SchemaTooNew):
        migrate(engine)


def test_a_failing_step_leaves_nothing_behind(engine):
    steps = [*STEPS, Step(len(STEPS) + 1, "half a step",
                          ["CREATE TABLE extra (x INTEGER)", "CREATE TABLE files (x INTEGER)"])]
    with pytest.raises(DBAPIError):
        migrate(engine, steps)
    assert current_version(engine) == len(STEPS)
    assert not inspect(engine).has_table("extra")


def test_steps_must_be_numbered_one_by_one(engine):
    with pytest.raises(ValueError):
        migrate(engine, [STEPS[0], Step(3, "skips 2", ["CREATE TABLE extra (x INTEGER)"])])


def test_models_agree_with_the_migrated_schema(engine, request, tmp_path):
    """On each backend, the schema the models would create is the one the steps built there."""
    if engine.dialect.name == "sqlite":
        from_models = create_engine(sqlite_url(tmp_path / "models.db"))
    else:
        from_models = create_engine(request.getfixturevalue("postgres").new_database())
    Base.metadata.create_all(from_models)
    try:
        migrated, modelled = inspect(engine), inspect(from_models)
        tables = set(modelled.get_table_names())
        assert set(migrated.get_table_names()) - {"schema_version", "sqlite_sequence"} == tables
        for table in sorted(tables):
            assert [c["name"] for c in migrated.get_columns(table)] == [c["name"] for c in modelled.get_columns(table)]
            assert _shape(migrated, table) == _shape(modelled, table), table
        # The inspector skips expression indexes: compare that one's SQL as the database keeps it.
        index_sql = text("SELECT sql FROM sqlite_master WHERE name = 'ux_jobs_active_name'"
                         if engine.dialect.name == "sqlite" else
                         "SELECT indexdef FROM pg_indexes WHERE indexname = 'ux_jobs_active_name'")
        with engine.connect() as old, from_models.connect() as new:
            assert old.scalar(index_sql) == new.scalar(index_sql) is not None
    finally:
        from_models.dispose()


def test_the_orm_reads_what_save_timeline_wrote(engine):
    save_timeline(engine, make_doc(path="/m/one.mp3"), sidecar_path=None)
    save_timeline(engine, make_doc(path="/m/two.mp3"), sidecar_path=None)
    with Session(engine) as session:
        file = session.scalars(select(FileRow)).one()
        assert sorted(p.path for p in file.paths) == ["/m/one.mp3", "/m/two.mp3"]
        (analysis,) = file.analyses
        assert [beat.idx for beat in analysis.beats] == list(range(8))
        assert [(chord.label, chord.end) for chord in analysis.chords] == [("C:maj", 2.0), ("N", 4.0)]
        assert {tag.label for tag in analysis.tags} == {"rock", "pop"}
        session.delete(file)
        session.commit()
    for table in ("files", "file_paths", "analyses", "beats", "bars", "chords", "key_segments", "tags", "sections"):
        assert count(engine, table) == 0, table


def _shape(inspector, table: str) -> dict:
    return {
        "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
        "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
        "foreign_keys": sorted(
            (tuple(fk["constrained_columns"]), fk["referred_table"], fk["options"].get("ondelete"))
            for fk in inspector.get_foreign_keys(table)
        ),
        "indexes": sorted((ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                          for ix in inspector.get_indexes(table)),
        "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
    }


def test_save_stores_every_part_of_the_document(engine):
    analysis_id = save_timeline(engine, make_doc(), sidecar_path="/music/song.mp3.beatwatch.json", mtime=1700.5)
    with engine.connect() as conn:
        analysis = conn.execute(text("SELECT * FROM analyses WHERE id = :id"), {"id": analysis_id}).mappings().one()
        file = conn.execute(text("SELECT * FROM files")).mappings().one()
        first_beat = conn.execute(text("SELECT * FROM beats WHERE idx = 0")).mappings().one()
        chords = conn.execute(text('SELECT idx, start, "end", label FROM chords ORDER BY idx')).all()
        tags = conn.execute(text("SELECT model, label, score FROM tags ORDER BY score")).all()
    assert (analysis["bpm"], analysis["key"], analysis["meter"], analysis["device"]) == (120.0, "A minor", 4, "cpu")
    assert (analysis["realtime_factor"], analysis["sample_rate"]) == (56.0, 44100)
    assert analysis["sidecar_path"] == "/music/song.mp3.beatwatch.json"
    assert (file["content_hash"], file["path"], file["size"], file["mtime"]) == (HASH_A, "/music/song.mp3", 123, 1700.5)
    assert first_beat["transient_time"] is None and first_beat["time"] == 0.0
    assert chords == [(0, 0.0, 2.0, "C:maj"), (1, 2.0, 4.0, "N")]
    assert tags == [("msd-musicnn", "pop", 0.25), ("msd-musicnn", "rock", 0.5)]
    assert [count(engine, t) for t in ("beats", "bars", "key_segments")] == [8, 2, 1]


def test_sections_are_stored_with_their_bars_and_answer_a_form_query(engine):
    save_timeline(engine, make_doc(beats=48), sidecar_path=None)
    with engine.connect() as conn:
        sections = conn.execute(text('SELECT idx, bar, bars, start, "end", label, letter FROM sections')).all()
        chorus_chords = conn.execute(text(
            "SELECT b.bar FROM sections AS s JOIN bars AS b ON b.analysis_id = s.analysis_id"
            " AND b.bar >= s.bar AND b.bar < s.bar + s.bars WHERE s.label = 'chorus' ORDER BY b.bar")).scalars().all()
    assert sections == [(0, 1, 4, 0.0, 8.0, "intro", "A"), (1, 5, 8, 8.0, 24.0, "chorus", "B")]
    assert chorus_chords == list(range(5, 13))
    assert form_line(sections_of(engine, find_analysis(engine, HASH_A)["analysis_id"])) == "intro 4 · chorus 8"
    assert form_line([]) == "-"


def test_resaving_the_same_version_replaces_rows(engine):
    first = save_timeline(engine, make_doc(beats=8), sidecar_path=None)
    second = save_timeline(engine, make_doc(beats=12), sidecar_path=None)
    assert second != first
    assert count(engine, "analyses") == 1
    assert count(engine, "files") == 1
    assert count(engine, "file_paths") == 1
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM beats WHERE analysis_id = :id"), {"id": second}) == 12
    assert count(engine, "beats") == 12
    assert count(engine, "tags") == 2


def test_a_new_analyzer_version_keeps_the_old_and_tracks_shows_the_newest(engine):
    save_timeline(engine, make_doc(version="0.1.0", bpm=100.0), sidecar_path=None)
    newest = save_timeline(engine, make_doc(version="0.2.0", bpm=101.0), sidecar_path=None)
    assert count(engine, "analyses") == 2
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT analysis_id, analyzer_version, bpm FROM tracks")).all()
    assert rows == [(newest, "0.2.0", 101.0)]


def test_a_copy_at_another_path_is_one_file_with_two_paths(engine):
    save_timeline(engine, make_doc(path="/inbox/song.mp3"), sidecar_path=None)
    save_timeline(engine, make_doc(path="/inbox/copy of song.mp3"), sidecar_path=None)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT path FROM files")).scalars().all() == ["/inbox/copy of song.mp3"]
        paths = conn.execute(text("SELECT path FROM file_paths ORDER BY path")).scalars().all()
    assert paths == ["/inbox/copy of song.mp3", "/inbox/song.mp3"]
    assert count(engine, "analyses") == 1


def test_a_path_overwritten_with_new_audio_points_to_the_new_content(engine):
    save_timeline(engine, make_doc(path="/inbox/song.mp3", content_hash=HASH_A, bpm=90.0), sidecar_path=None)
    save_timeline(engine, make_doc(path="/inbox/song.mp3", content_hash=HASH_B, bpm=150.0), sidecar_path=None)
    assert count(engine, "file_paths") == 1
    assert find_analysis(engine, "/inbox/song.mp3")["content_hash"] == HASH_B
    assert find_analysis(engine, HASH_A)["bpm"] == 90.0


def test_tracks_answers_the_query_from_the_spec(engine):
    songs = [("/m/a.mp3", 120.0, "A minor"), ("/m/b.mp3", 128.0, "A minor"), ("/m/c.mp3", 124.0, "C major"),
             ("/m/d.mp3", 119.9, "A minor"), ("/m/e.mp3", 128.1, "A minor")]
    for n, (path, bpm, key) in enumerate(songs):
        save_timeline(engine, make_doc(path=path, content_hash=f"{n:064x}", bpm=bpm, key=key), sidecar_path=None)
    # Matched by an older analysis only: the tracks row must show the newest one.
    save_timeline(engine, make_doc(path="/m/f.mp3", content_hash=HASH_A, bpm=125.0), sidecar_path=None)
    save_timeline(engine, make_doc(path="/m/f.mp3", content_hash=HASH_A, bpm=140.0, version="0.2.0"), sidecar_path=None)
    save_timeline(engine, silent_doc("/m/silence.wav", HASH_B), sidecar_path=None)

    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT path, bpm, key FROM tracks WHERE bpm BETWEEN 120 AND 128 AND key = 'A minor'")
        ).all()
        assert conn.scalar(text("SELECT count(*) FROM tracks")) == 7
    assert sorted(rows) == [("/m/a.mp3", 120.0, "A minor"), ("/m/b.mp3", 128.0, "A minor")]


def test_tracks_has_one_row_per_current_path(engine):
    save_timeline(engine, make_doc(path="/inbox/mix.wav", content_hash=HASH_A, bpm=90.0), sidecar_path=None)
    save_timeline(engine, make_doc(path="/inbox/mix.wav", content_hash=HASH_B, bpm=150.0), sidecar_path=None)
    save_timeline(engine, make_doc(path="/inbox/copy of mix.wav", content_hash=HASH_B, bpm=150.0), sidecar_path=None)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT path, content_hash, bpm FROM tracks ORDER BY path")).all()
    assert rows == [("/inbox/copy of mix.wav", HASH_B, 150.0), ("/inbox/mix.wav", HASH_B, 150.0)]
    overwritten = find_analysis(engine, HASH_A)
    assert (overwritten["bpm"], overwritten["paths"]) == (90.0, [])
    assert sorted(find_analysis(engine, HASH_B)["paths"]) == ["/inbox/copy of mix.wav", "/inbox/mix.wav"]


def test_a_database_at_schema_3_upgrades_to_one_tracks_row_per_path(tmp_path):
    url = sqlite_url(tmp_path / "old.db")
    old = create_engine(url)
    try:
        assert migrate(old, STEPS[:3]) == 3
        # What that schema's code stored for mix.wav analysed, then overwritten with other audio and analysed again.
        with old.begin() as conn:
            for file_id, content, bpm in ((1, HASH_A, 90.0), (2, HASH_B, 150.0)):
                conn.execute(text("INSERT INTO files (id, content_hash, path) VALUES (:id, :h, '/inbox/mix.wav')"),
                             {"id": file_id, "h": content})
                conn.execute(text("INSERT INTO analyses (file_id, analyzer_version, bpm) VALUES (:id, '0.1.0', :b)"),
                             {"id": file_id, "b": bpm})
            conn.execute(text("INSERT INTO file_paths (file_id, path) VALUES (2, '/inbox/mix.wav')"))
        with old.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM tracks WHERE path = '/inbox/mix.wav'")) == 2
    finally:
        old.dispose()
    engine = open_database(url)
    try:
        assert current_version(engine) == len(STEPS) >= 4
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT path, raw_path, content_hash, bpm FROM tracks")).all()
        assert rows == [("/inbox/mix.wav", None, HASH_B, 150.0)]
        assert count(engine, "analyses") == 2
    finally:
        engine.dispose()


def test_a_database_at_schema_6_gains_an_empty_sections_table_and_keeps_its_analyses(tmp_path):
    url = sqlite_url(tmp_path / "old.db")
    old = create_engine(url)
    try:
        assert migrate(old, STEPS[:6]) == 6
        kept = save_timeline(old, doc_before_sections(path="/inbox/old.wav", content_hash=HASH_A), sidecar_path=None)
        assert not inspect(old).has_table("sections")
    finally:
        old.dispose()
    engine = open_database(url)
    try:
        assert current_version(engine) == len(STEPS) >= 7
        assert find_analysis(engine, "/inbox/old.wav")["analysis_id"] == kept
        assert (count(engine, "sections"), count(engine, "beats")) == (0, 8)
        save_timeline(engine, make_doc(path="/inbox/new.wav", content_hash=HASH_B, beats=40), sidecar_path=None)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT label, bar, bars FROM sections ORDER BY idx")).all()
        assert rows == [("intro", 1, 4), ("chorus", 5, 6)]
    finally:
        engine.dispose()


def test_a_database_at_schema_8_keeps_its_rows_and_reports_per_host(tmp_path):
    """The previous release's file: its analyses and jobs stay; the one-daemon report gives way to one per host."""
    url = sqlite_url(tmp_path / "old.db")
    old = create_engine(url)
    try:
        assert migrate(old, STEPS[:8]) == 8
        kept = save_timeline(old, make_doc(path="/inbox/old.wav", content_hash=HASH_A), sidecar_path=None)
        with old.begin() as conn:
            conn.execute(text("INSERT INTO daemon_status VALUES (1, '{}', 1.0)"))
            conn.execute(text("INSERT INTO jobs (path, state) VALUES ('/inbox/old.wav', 'done')"))
    finally:
        old.dispose()
    engine = open_database(url)
    try:
        assert current_version(engine) == len(STEPS) >= 9
        assert find_analysis(engine, "/inbox/old.wav")["analysis_id"] == kept
        assert (count(engine, "beats"), count(engine, "jobs"), count(engine, "host_status")) == (8, 1, 0)
        assert not inspect(engine).has_table("daemon_status")
    finally:
        engine.dispose()


def test_a_write_lock_held_elsewhere_is_seen_and_named(sqlite_engine, tmp_path):
    engine = sqlite_engine
    assert not write_lock_held(engine, wait_s=0.1)
    locker = sqlite3.connect(tmp_path / "beatwatch.db", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        assert write_lock_held(engine, wait_s=0.1)
        with pytest.raises(OperationalError) as raised, engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA busy_timeout=100")
            conn.exec_driver_sql("INSERT INTO schema_version VALUES (99, 'x', 'y')")
        assert is_locked(raised.value)
        locker.execute("ROLLBACK")
        assert not write_lock_held(engine, wait_s=0.1)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    finally:
        locker.close()
    with pytest.raises(OperationalError) as raised, engine.connect() as conn:
        conn.exec_driver_sql("SELECT * FROM no_such_table")
    assert not is_locked(raised.value)


def test_a_silent_clip_stores_an_analysis_without_timeline_rows(engine):
    save_timeline(engine, silent_doc("/m/silence.wav", HASH_B), sidecar_path=None)
    track = find_analysis(engine, "/m/silence.wav")
    assert track["bpm"] is None and track["key"] is None and track["duration"] == 180.0
    assert [count(engine, t) for t in ("beats", "bars", "chords", "key_segments", "tags", "sections")] == [0] * 6


def test_an_invalid_row_stores_nothing_from_the_document(engine):
    doc = make_doc()
    doc["timeline"]["beats"][1]["time"] = None
    with pytest.raises(IntegrityError):
        save_timeline(engine, doc, sidecar_path=None)
    for table in ("files", "file_paths", "analyses", "beats", "bars", "chords", "key_segments", "tags", "sections"):
        assert count(engine, table) == 0, table


def test_a_failed_resave_keeps_the_previous_analysis(engine):
    kept = save_timeline(engine, make_doc(beats=8), sidecar_path=None)
    doc = make_doc(path="/elsewhere/song.mp3", beats=12)
    doc["timeline"]["beats"][1]["time"] = None
    with pytest.raises(IntegrityError):
        save_timeline(engine, doc, sidecar_path=None)
    track = find_analysis(engine, HASH_A)
    assert (track["analysis_id"], track["path"], track["paths"]) == (kept, "/music/song.mp3", ["/music/song.mp3"])
    assert count(engine, "beats") == 8


def test_an_unknown_schema_is_refused(engine):
    doc = make_doc() | {"schema": "beatwatch.timeline/2"}
    with pytest.raises(ValueError, match="timeline/2"):
        save_timeline(engine, doc, sidecar_path=None)
    assert count(engine, "files") == 0


def test_a_three_hour_mix_saves_and_resaves(engine):
    doc = make_doc(beats=20_000)
    save_timeline(engine, doc, sidecar_path=None)
    save_timeline(engine, doc, sidecar_path=None)
    assert count(engine, "beats") == 20_000
    assert count(engine, "bars") == 5_000


def test_find_analysis_by_path_known_path_hash_and_prefix(engine, tmp_path, monkeypatch):
    song = str(tmp_path / "song.mp3")
    save_timeline(engine, make_doc(path="/inbox/song.mp3", content_hash=HASH_A), sidecar_path="/out/x.json")
    analysis_id = save_timeline(engine, make_doc(path=song, content_hash=HASH_A), sidecar_path="/out/x.json")
    save_timeline(engine, make_doc(path="/inbox/other.mp3", content_hash="ab" + "0" * 62), sidecar_path=None)

    by_path = find_analysis(engine, song)
    assert by_path["analysis_id"] == analysis_id
    assert by_path["sidecar_path"] == "/out/x.json"
    assert sorted(by_path["paths"]) == sorted(["/inbox/song.mp3", song])
    assert find_analysis(engine, "/inbox/song.mp3")["analysis_id"] == analysis_id
    monkeypatch.chdir(tmp_path)
    assert find_analysis(engine, "song.mp3")["analysis_id"] == analysis_id
    assert find_analysis(engine, HASH_A)["analysis_id"] == analysis_id
    assert find_analysis(engine, HASH_A[:8].upper())["analysis_id"] == analysis_id
    assert find_analysis(engine, HASH_A[:7]) is None
    assert find_analysis(engine, "c" * 64) is None
    assert find_analysis(engine, "/nowhere.mp3") is None


def test_an_ambiguous_hash_prefix_is_an_error(engine):
    save_timeline(engine, make_doc(path="/m/1.mp3", content_hash="12345678" + "a" * 56), sidecar_path=None)
    save_timeline(engine, make_doc(path="/m/2.mp3", content_hash="12345678" + "b" * 56), sidecar_path=None)
    with pytest.raises(AmbiguousHash):
        find_analysis(engine, "12345678")
    assert find_analysis(engine, "12345678a")["path"] == "/m/1.mp3"


def test_processes_opening_and_saving_at_once_do_not_collide(tmp_path):
    """Separate engines stand in for the daemon, workers and CLI starting together on a new file."""
    url = sqlite_url(tmp_path / "shared.db")
    threads, per_thread = 4, 5
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            start.wait()
            engine = open_database(url)
            try:
                for i in range(per_thread):
                    save_timeline(engine, make_doc(path=f"/inbox/{n}-{i}.mp3"), sidecar_path=None)
            finally:
                engine.dispose()
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert errors == []
    engine = open_database(url)
    try:
        assert count(engine, "schema_version") == len(STEPS)
        assert (count(engine, "files"), count(engine, "analyses")) == (1, 1)
        assert count(engine, "file_paths") == threads * per_thread
    finally:
        engine.dispose()


def test_names_that_differ_only_in_bytes_that_are_not_utf8_keep_a_row_each(engine):
    """Both print as "/in/x\uFFFD.wav"; each keeps its own file_paths and tracks row, found by its exact name."""
    ff, fe = os.fsdecode(b"/in/x\xff.wav"), os.fsdecode(b"/in/x\xfe.wav")
    save_timeline(engine, make_doc(path=printable(ff), content_hash=HASH_A, bpm=90.0), sidecar_path=None, path=ff)
    save_timeline(engine, make_doc(path=printable(fe), content_hash=HASH_B, bpm=150.0), sidecar_path=None, path=fe)
    save_timeline(engine, make_doc(path=printable(ff), content_hash=HASH_A, bpm=90.0), sidecar_path=None, path=ff)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT path, raw_path, content_hash FROM tracks ORDER BY raw_path")).all()
    assert rows == [("/in/x\uFFFD.wav", b"/in/x\xfe.wav", HASH_B), ("/in/x\uFFFD.wav", b"/in/x\xff.wav", HASH_A)]
    assert find_analysis(engine, ff)["content_hash"] == HASH_A
    assert find_analysis(engine, fe)["content_hash"] == HASH_B


def test_two_hosts_saving_one_content_at_once_both_succeed(postgres):
    """Copies of one song finished on two hosts in the same moment: one file row, one analysis, both paths."""
    url = postgres.new_database()
    engines = [open_database(url) for _ in range(2)]
    errors: list[BaseException] = []
    try:
        for n in range(20):
            start = threading.Barrier(2)

            def save(engine: Engine, path: str, content_hash: str = f"{n:02x}" * 32,
                     start: threading.Barrier = start) -> None:
                start.wait()
                try:
                    save_timeline(engine, make_doc(path=path, content_hash=content_hash), sidecar_path=None)
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=save, args=(engine, f"/library/{host}/{n}.mp3"))
                       for host, engine in zip("ab", engines)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
        assert errors == []
        assert (count(engines[0], "files"), count(engines[0], "analyses"), count(engines[0], "file_paths")) == (
            20, 20, 40)
    finally:
        for engine in engines:
            engine.dispose()


README_QUERIES = re.findall(r"```sql\n(.*?)```", (Path(__file__).parents[1] / "README.md").read_text(), re.S)


def _with_chords(doc: dict, labels: list[str], simple_labels: list[str], camelot: str, open_key: str) -> dict:
    doc["summary"] |= {"key_camelot": camelot, "key_open": open_key}
    doc["timeline"]["chords"] = [{"start": 2.0 * i, "end": 2.0 * i + 2.0, "label": label, "simple": simple,
                                  "confidence": 0.9} for i, (label, simple) in enumerate(zip(labels, simple_labels))]
    for bar, label, simple in zip(doc["timeline"]["bars"], labels, simple_labels):
        bar |= {"chord": label, "chord_simple": simple}
    return doc


def test_full_and_simple_chords_and_key_notations_round_trip_and_answer_the_readme_queries(engine):
    jazz = _with_chords(make_doc(path="/m/jazz.mp3", content_hash=HASH_A, key="C major"),
                        ["E:min7", "A:7/3", "D:min7", "G:7", "C:maj7/3"],
                        ["E:min", "A:maj", "D:min", "G:maj", "C:maj"], "8B", "1d")
    pop = _with_chords(make_doc(path="/m/pop.mp3", content_hash=HASH_B, key="F# minor"),
                       ["F#:min7", "B:sus4", "E:maj"], ["F#:min", "B:maj", "E:maj"], "11A", "4m")
    for doc in (jazz, pop):
        save_timeline(engine, doc, sidecar_path=None)
    with engine.connect() as conn:
        chords = conn.execute(text("SELECT label, simple FROM chords ORDER BY analysis_id, idx")).all()
        bars = conn.execute(text("SELECT chord, chord_simple FROM bars ORDER BY analysis_id, bar")).all()
        keys = conn.execute(text("SELECT path, key_camelot, key_open FROM tracks ORDER BY path")).all()
        mixes = conn.execute(text(README_QUERIES[9])).all()
        two_five_ones = conn.execute(text(README_QUERIES[10])).all()
    assert chords == [(c["label"], c["simple"]) for d in (jazz, pop) for c in d["timeline"]["chords"]]
    assert bars == [(b["chord"], b["chord_simple"]) for d in (jazz, pop) for b in d["timeline"]["bars"]]
    assert keys == [("/m/jazz.mp3", "8B", "1d"), ("/m/pop.mp3", "11A", "4m")]
    assert [row[0] for row in mixes] == ["/m/jazz.mp3"]  # 8B is 8A's relative; 11A is three steps away
    assert [tuple(row) for row in two_five_ones] == [("/m/jazz.mp3", 4.0, "D:min7", "G:7", "C:maj7/3")]
    assert find_analysis(engine, "/m/pop.mp3")["key_camelot"] == "11A"


def test_the_tuning_reaches_analyses_tracks_and_show_and_older_analyses_keep_null(tmp_path):
    url = sqlite_url(tmp_path / "old.db")
    old = create_engine(url)
    try:
        assert migrate(old, STEPS[:11]) == 11
        save_timeline(old, make_doc(path="/inbox/old.wav", content_hash=HASH_A), sidecar_path=None)
    finally:
        old.dispose()
    engine = open_database(url)
    try:
        detuned = make_doc(path="/inbox/detuned.wav", content_hash=HASH_B)
        detuned["summary"] |= {"tuning_cents": -23.5, "tuning_hz": 434.06}
        save_timeline(engine, detuned, sidecar_path=None)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT path, tuning_cents FROM tracks ORDER BY path")).all()
            off = conn.execute(text("SELECT path FROM tracks WHERE abs(tuning_cents) > 10")).scalars().all()
        assert rows == [("/inbox/detuned.wav", -23.5), ("/inbox/old.wav", None)]
        assert off == ["/inbox/detuned.wav"]
        assert find_analysis(engine, "/inbox/detuned.wav")["tuning_cents"] == -23.5
    finally:
        engine.dispose()
