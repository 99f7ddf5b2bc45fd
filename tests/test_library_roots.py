"""One library mounted at a different path on each host: rows name files by library root, every host reads them
through its own mount (issue 14, paths across hosts).

"Two hosts" are two configs naming the same root at different paths. Where a test must prove that host B
reads through its own mount and not through the path host A stored, the share is renamed from A's mount point
to B's after A is done, so A's path no longer exists anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from beatwatch.daemon import config as config_mod
from beatwatch.daemon.cli import main
from beatwatch.daemon.library_paths import Library, NotMounted, adopt_absolute_paths, library_of
from beatwatch.daemon.missing import check_paths
from beatwatch.daemon.protocol import Task
from beatwatch.daemon.publish import Publisher
from beatwatch.daemon.reconcile import reconcile
from beatwatch.daemon.worker import run_task
from beatwatch.store import jobs
from beatwatch.store.db import open_database
from beatwatch.store.migrations import STEPS, current_version, migrate
from beatwatch.store.records import save_timeline
from tests.daemon_harness import BEATWATCH, Daemon, wait_for
from tests.helpers import click_track, write_wav
from tests.test_store import HASH_A, make_doc

HASH_B = "b" * 64


def host_config(folder: Path, url: str, roots: dict[str, Path], extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    table = ", ".join(f'{name} = "{root}"' for name, root in roots.items())
    config = folder / "beatwatch.toml"
    config.write_text(f'[store]\nurl = "{url}"\n[library]\nroots = {{ {table} }}\n{extra}')
    return config


def tracks(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text("SELECT path, library FROM tracks ORDER BY path"))]


def test_a_path_below_a_root_is_stored_by_name_and_found_at_each_hosts_mount(tmp_path):
    share = tmp_path / "share"
    (share / "album").mkdir(parents=True)
    linked_mount = tmp_path / "mnt-b"
    linked_mount.symlink_to(share)
    a, b = Library.of({"catalogue": share}), Library.of({"catalogue": linked_mount})
    stored = a.stored(share / "album" / "song.wav")
    assert stored == "catalogue:album/song.wav" and library_of(stored) == "catalogue"
    assert b.local(stored) == str(linked_mount / "album" / "song.wav")
    assert b.stored(linked_mount / "album" / "song.wav") == stored
    assert b.stored(share / "album" / "song.wav") == stored  # the mount's real path names the same file
    outside = str(tmp_path / "elsewhere" / "solo.wav")
    assert a.stored(outside) == outside and library_of(outside) is None and a.local(outside) == outside
    assert Library().stored(share / "x.wav") == str(share / "x.wav")  # no roots: as given, as before
    with pytest.raises(NotMounted, match=r"'stems' has no root on this host; add `stems = "):
        a.local("stems:kick.wav")


def test_roots_are_resolved_validated_and_an_inbox_outside_them_is_a_warning(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("BEATWATCH_"):
            monkeypatch.delenv(name)
    config = tmp_path / "beatwatch.toml"
    config.write_text('[library]\nroots = { catalogue = "music" }\n[inbox]\npath = "/srv/inbox"\n')
    settings = config_mod.load(config)
    assert settings.library.roots == {"catalogue": (tmp_path / "music").resolve()}
    assert any("lies under no library.roots entry" in w for w in config_mod.check_usable(settings))
    config.write_text('[library]\nroots = { catalogue = "/mnt/c", stems = "/mnt/c/stems" }\n')
    with pytest.raises(config_mod.ConfigError, match="'stems' .* lies inside 'catalogue'"):
        config_mod.load(config)
    config.write_text('[library]\nroots = { "cat:a" = "/mnt/c" }\n')
    with pytest.raises(config_mod.ConfigError, match=r"library\.roots .* is not a root name"):
        config_mod.load(config)


def test_analysed_on_one_host_shown_plotted_exported_and_linked_on_another(store_url, analyzer, tmp_path,
                                                                            capsys):
    mount_a, mount_b = tmp_path / "host-a" / "catalogue", tmp_path / "host-b" / "music"
    (mount_a / "album").mkdir(parents=True)
    mount_b.parent.mkdir()
    (tmp_path / "elsewhere").mkdir()
    song = write_wav(mount_a / "album" / "song.wav", click_track(120, seconds=8.0)[0])
    solo = write_wav(tmp_path / "elsewhere" / "solo.wav", click_track(100, seconds=6.0)[0])
    config_a = host_config(tmp_path / "host-a", store_url, {"catalogue": mount_a})
    config_b = host_config(tmp_path / "host-b", store_url, {"catalogue": mount_b})
    engine = open_database(store_url)
    try:
        on_a = Publisher(engine, library=Library.of(config_mod.load(config_a).library.roots))
        for audio in (song, solo):
            on_a.publish(analyzer.analyze(audio), audio)
        assert tracks(engine) == [(str(solo), None), ("catalogue:album/song.wav", "catalogue")]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT sidecar_path FROM analyses ORDER BY sidecar_path")).scalars().all() == [
                str(solo) + ".beatwatch.json", "catalogue:album/song.wav.beatwatch.json"]

        os.rename(mount_a, mount_b)  # the share, as host B mounts it; host A's path exists no more
        here = mount_b / "album" / "song.wav"
        assert main(["show", str(here), "--config", str(config_b)]) == 0
        shown = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines() if "  " in line)
        assert shown["path"] == str(here) and shown["sidecar_path"] == str(here) + ".beatwatch.json"
        assert main(["show", str(here), "--json", "--config", str(config_b)]) == 0
        assert json.loads(capsys.readouterr().out)["summary"]["bpm"] == pytest.approx(120, abs=1)
        assert main(["plot", str(here), "--config", str(config_b)]) == 0
        assert capsys.readouterr().out.strip() == str(here) + ".beatwatch.png"
        assert (here.parent / "song.wav.beatwatch.png").stat().st_size > 0
        xml = tmp_path / "rekordbox.xml"
        assert main(["export", "--where", "library = 'catalogue'", "--format", "rekordbox", "--out", str(xml),
                     "--config", str(config_b)]) == 0
        exported = xml.read_text()
        assert f'Location="file://localhost{here}"' in exported and "host-a" not in exported
        # A sidecar file itself records host A's path: host B finds the audio beside it, on its own mount.
        (here.parent / "song.wav.beatwatch.png").unlink()
        capsys.readouterr()
        assert main(["plot", str(here) + ".beatwatch.json", "--config", str(config_b)]) == 0
        assert capsys.readouterr().out.strip() == str(here) + ".beatwatch.png"
        assert main(["export", str(here) + ".beatwatch.json", "--format", "rekordbox", "--out", str(xml),
                     "--config", str(config_b)]) == 0
        assert f'Location="file://localhost{here}"' in xml.read_text()

        copy = mount_b / "later" / "copy.wav"
        copy.parent.mkdir()
        copy.write_bytes(here.read_bytes())
        library_b = Library.of(config_mod.load(config_b).library.roots)
        outcome = run_task(analyzer, engine, Task(job_id=1, token="b:w0", path=str(copy), max_duration_s=600.0),
                           progress=lambda stage, fraction: None, library=library_b)
        assert outcome.kind == "linked", outcome.error  # read from the sidecar through host B's mount
        assert outcome.document["file"]["path"] == str(copy)
        Publisher(engine, library=library_b).publish(outcome.document, copy)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*), count(DISTINCT file_id) FROM tracks"
                                     " WHERE library = 'catalogue'")).one() == (2, 1)
    finally:
        engine.dispose()


def test_missing_files_are_judged_through_this_hosts_mount_and_never_in_an_unmounted_library(any_engine,
                                                                                            tmp_path):
    mount = tmp_path / "music"
    (mount / "album").mkdir(parents=True)
    (mount / "album" / "here.mp3").write_bytes(b"here")
    for n, name in enumerate(("catalogue:album/here.mp3", "catalogue:album/gone.mp3", "stems:kick.mp3")):
        save_timeline(any_engine, make_doc(path=name, content_hash=str(n) * 64), sidecar_path=None)
    gone, back = check_paths(any_engine, Library.of({"catalogue": mount}))
    assert (gone, back) == (1, 0)
    with any_engine.connect() as conn:
        assert conn.execute(text("SELECT path FROM tracks WHERE missing")).scalars().all() == [
            "catalogue:album/gone.mp3"]


def test_a_step_12_database_upgrades_with_its_absolute_paths_kept(store_url):
    old = create_engine(store_url)
    try:
        assert migrate(old, STEPS[:12]) == 12
        save_timeline(old, make_doc(path="/music/old.mp3", content_hash=HASH_A), sidecar_path="/music/old.json")
    finally:
        old.dispose()
    engine = open_database(store_url)
    try:
        assert current_version(engine) == len(STEPS) >= 13
        with engine.connect() as conn:
            assert conn.execute(text("SELECT path, library, bpm, sidecar_path FROM tracks")).all() == [
                ("/music/old.mp3", None, 120.0, "/music/old.json")]
        save_timeline(engine, make_doc(path="/elsewhere/new.mp3", content_hash=HASH_B), sidecar_path=None,
                      path="catalogue:new.mp3")
        assert tracks(engine) == [("/music/old.mp3", None), ("catalogue:new.mp3", "catalogue")]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT path FROM files ORDER BY id")).scalars().all() == [
                "/music/old.mp3", "catalogue:new.mp3"]
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_file_queued_by_one_host_is_analysed_moved_and_linked_by_another(tmp_path):
    """Host A queues (its `beatwatch rescan`), host B's daemon analyses through a mount of its own (a symlink to the
    share), moves the file to done/ on the share with its sidecar, and links a later copy to that analysis."""
    share = tmp_path / "share"
    (share / "inbox").mkdir(parents=True)
    mount_b = tmp_path / "mnt-b"
    mount_b.symlink_to(share)
    root_b = tmp_path / "host-b"
    root_b.mkdir()
    url = f"sqlite:///{root_b / 'beatwatch.db'}"
    config_a = host_config(tmp_path / "host-a", url, {"catalogue": share},
                           f'[inbox]\npath = "{share / "inbox"}"\n[watch]\nsettle_s = 0\nunclosed_settle_s = 0\n')
    song = write_wav(share / "inbox" / "song.wav", click_track(120, seconds=6.0)[0])
    os.utime(song, (time.time() - 60, time.time() - 60))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEATWATCH_")}
    queued = subprocess.run([BEATWATCH, "rescan", "--config", str(config_a)], env=env, capture_output=True,
                            text=True, timeout=120)
    assert queued.returncode == 0 and "queued 1 new" in queued.stdout, queued.stderr

    b = Daemon(root_b, config=f'[library]\nroots = {{ catalogue = "{mount_b}" }}\n'
                              f'[inbox]\npath = "{mount_b / "inbox"}"\nafter = "move"\n')
    try:
        b.start()
        wait_for(lambda: b.drained(1), 120, "host B to finish host A's job")
        assert b.query("SELECT path, state, outcome FROM jobs") == [("catalogue:inbox/song.wav", "done", "analysed")]
        moved = [("catalogue:inbox/done/song.wav", "catalogue", "catalogue:inbox/done/song.wav.beatwatch.json")]
        # The job is done when its rows commit; the move to done/ and the rows following it come just after.
        wait_for(lambda: b.query("SELECT path, library, sidecar_path FROM tracks") == moved, 30, "the move to done/")
        done = share / "inbox" / "done" / "song.wav"
        assert done.is_file() and Path(str(done) + ".beatwatch.json").is_file()

        (mount_b / "inbox" / "copy.wav").write_bytes(done.read_bytes())
        wait_for(lambda: b.drained(2), 120, "the copy's job")
        assert b.query("SELECT path, outcome FROM jobs ORDER BY id")[1] == ("catalogue:inbox/copy.wav", "linked")
        assert b.query("SELECT count(*), count(DISTINCT file_id) FROM tracks") == [(2, 1)]
        assert b.query("SELECT count(*) FROM tracks WHERE path LIKE '/%'") == [(0,)]
        assert b.stop() == 0
    finally:
        b.close()


def test_a_host_that_names_its_root_later_renames_its_absolute_rows_and_queues_nothing_again(any_engine, tmp_path):
    mount = tmp_path / "catalogue"
    (mount / "album").mkdir(parents=True)
    song, twice = mount / "album" / "song.wav", mount / "album" / "twice.wav"
    for n, audio in enumerate((song, twice)):
        audio.write_bytes(b"x" * (n + 1))
        os.utime(audio, (1000.0, 1000.0))
        jobs.enqueue(any_engine, str(audio), size=n + 1, mtime=1000.0, now=time.time())
        claimed = jobs.claim(any_engine, "a:1:w0", lease_s=60, now=time.time())
        jobs.complete(any_engine, claimed.id, "a:1:w0", now=time.time(), write=lambda conn: None,
                      outcome="analysed")
        save_timeline(any_engine, make_doc(path=str(audio), content_hash=str(n) * 64),
                      sidecar_path=f"{audio}.beatwatch.json")
    save_timeline(any_engine, make_doc(path="/else/solo.mp3", content_hash=HASH_B), sidecar_path=None)
    # Seen again under its root's name before the rename: the newer name stays, the absolute row goes.
    save_timeline(any_engine, make_doc(path=str(twice), content_hash="1" * 64), sidecar_path=None,
                  path="catalogue:album/twice.wav")
    library = Library.of({"catalogue": mount})

    assert adopt_absolute_paths(any_engine, library) == 1
    assert tracks(any_engine) == [("/else/solo.mp3", None), ("catalogue:album/song.wav", "catalogue"),
                                  ("catalogue:album/twice.wav", "catalogue")]
    with any_engine.connect() as conn:
        assert conn.execute(text("SELECT path FROM jobs ORDER BY id")).scalars().all() == [
            "catalogue:album/song.wav", "catalogue:album/twice.wav"]
        assert conn.execute(text("SELECT sidecar_path FROM tracks WHERE path = 'catalogue:album/song.wav'")
                            ).scalar() == "catalogue:album/song.wav.beatwatch.json"
    assert reconcile(any_engine, [str(song), str(twice)], settle_s=0, writers_visible=False, now=time.time(),
                     library=library).queued == 0
    assert adopt_absolute_paths(any_engine, library) == 0


@pytest.mark.slow
def test_two_daemons_mounting_one_share_at_different_paths_queue_each_file_once(postgres, tmp_path):
    """Both hosts watch the shared inbox, each through its own mount: every file has one name, one job, one
    analysis, whichever host ran it, and `show` on either host answers with its own path."""
    from tests.test_many_hosts import HostDaemon, beatwatch

    url = postgres.new_database()
    share = tmp_path / "share"
    (share / "inbox").mkdir(parents=True)
    (tmp_path / "mnt-b").symlink_to(share)
    mounts = {"a": share, "b": tmp_path / "mnt-b"}
    hosts = [HostDaemon(tmp_path / name, url=url, host=name, inbox=mounts[name] / "inbox",
                        config=f'[library]\nroots = {{ catalogue = "{mounts[name]}" }}\n') for name in mounts]
    try:
        for d in hosts:
            d.start()
        for n in range(6):
            wav = write_wav(tmp_path / f"song{n}.wav", click_track(90 + 10 * n, seconds=4.0)[0])
            os.rename(wav, share / "inbox" / wav.name)
        a, b = hosts
        wait_for(lambda: a.drained(6), 180, "every file done")
        assert a.query("SELECT path, state FROM jobs ORDER BY path") == [
            (f"catalogue:inbox/song{n}.wav", "done") for n in range(6)]
        assert a.query("SELECT count(*), count(DISTINCT file_id), count(DISTINCT library) FROM tracks") == [(6, 6, 1)]
        for name, d in zip(mounts, hosts):
            shown = beatwatch(d.config, "show", str(mounts[name] / "inbox" / "song3.wav"))
            assert shown.returncode == 0, shown.stderr
            assert f"{mounts[name] / 'inbox' / 'song3.wav'}.beatwatch.json" in shown.stdout
    finally:
        for d in hosts:
            d.close()


@pytest.mark.slow
def test_a_job_in_a_library_this_host_does_not_mount_is_left_to_the_hosts_that_do(tmp_path):
    """Not analysed, not failed for good: the attempt fails saying which root to add, and the job waits for its
    backoff, when any host (this one once its config names the root) may claim it again."""
    d = Daemon(tmp_path, config=f'[library]\nroots = {{ catalogue = "{tmp_path / "inbox"}" }}\n')
    try:
        d.start()
        engine = open_database(f"sqlite:///{d.db_path}")
        try:
            job_id = jobs.enqueue(engine, "stems:kick.wav", size=1, mtime=1.0, now=time.time())
        finally:
            engine.dispose()
        wait_for(lambda: d.query("SELECT state FROM jobs WHERE id = ?", job_id) == [("retry_wait",)], 60,
                 "the attempt to fail")
        [(attempts, error)] = d.query("SELECT attempts, error FROM jobs WHERE id = ?", job_id)
        assert attempts == 1
        assert error == ("stems:kick.wav: the library 'stems' has no root on this host; "
                         'add `stems = "<its mount here>"` to [library] roots')
        assert d.proc.poll() is None and d.stop() == 0
    finally:
        d.close()
