"""Issue 18, cases 1, 4, 5, 6 and the permission part of 10, and issue 17's window between check and open: the
real daemon decodes only the file it checked, only as what its bytes say it is, only up to its limits, and
writes its plots only into files it created.

One daemon serves the module (each test drops its own file and waits for that file's job); the unit tests
pin each rule on the decoder and the worker's open.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from beatwatch.analysis.audio.decode import probe, sniff
from beatwatch.analysis.errors import InputError
from beatwatch.daemon.admission import Refused, open_admitted
from tests.daemon_harness import Daemon, wait_for
from tests.helpers import click_track, encode, write_wav

MAX_DURATION_S = 20


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    daemon = Daemon(tmp_path_factory.mktemp("hostile-decoding"),
                    config=f'[output]\nplots = true\n[jobs]\nmax_duration_s = {MAX_DURATION_S}\n'
                           '[inbox]\nfollow_symlinks = "all"\n')
    yield daemon.start()
    daemon.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile-media")


def finished(d: Daemon, path: Path) -> tuple[str, int, str | None, str | None]:
    """(state, attempts, error, content_hash) of path's job once it is done or failed."""
    def ended():
        rows = d.query("SELECT state, attempts, error, content_hash FROM jobs WHERE path = ?"
                       " AND state IN ('done', 'failed')", str(path))
        return rows[0] if rows else None
    return wait_for(ended, 120, f"the job of {path.name} to end")


@pytest.mark.slow
def test_a_symlink_planted_at_the_old_plot_temp_names_is_not_written_through(d, media):
    """The worker's plot temp name was `.{name}.beatwatch.png.{pid}.tmp.png`: links planted there for every
    worker pid must leave their target alone."""
    victim = media / "victim.db"
    victim.write_bytes(b"precious")
    name = "planted.wav"
    for pid in d.worker_pids():
        (d.inbox / f".{name}.beatwatch.png.{pid}.tmp.png").symlink_to(victim)
    write_wav(d.inbox / name, click_track(120, seconds=8.0)[0])
    assert finished(d, d.inbox / name)[0] == "done"
    assert victim.read_bytes() == b"precious"
    plot = d.inbox / f"{name}.beatwatch.png"
    assert not plot.is_symlink() and plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_half_a_wav_fails_as_truncated(d, media):
    """ffprobe sizes a WAV by its bytes, so half of one passed as a song of half the length."""
    whole = write_wav(media / "whole.wav", click_track(120, seconds=16.0)[0]).read_bytes()
    (d.inbox / "half.wav").write_bytes(whole[: len(whole) // 2])
    state, attempts, error, _ = finished(d, d.inbox / "half.wav")
    assert (state, attempts) == ("failed", 1)
    assert error == f"{d.inbox / 'half.wav'}: truncated or corrupt (8.0 s of audio, 16.0 s declared)"


def understated_flac(path: Path, seconds_held: float, seconds_claimed: float) -> Path:
    """A real FLAC whose STREAMINFO total-samples field claims seconds_claimed over seconds_held of audio."""
    source = write_wav(path.with_suffix(".src.wav"), click_track(100, seconds=seconds_held)[0])
    data = bytearray(encode(source, path.with_suffix(".src.flac")).read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO first; total samples: the low 36 bits at 18..26
    word = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1) | int(seconds_claimed * 44100)
    data[18:26] = word.to_bytes(8, "big")
    path.write_bytes(bytes(data))
    return path


@pytest.mark.slow
def test_a_flac_whose_header_understates_its_length_stops_at_max_duration(d, media):
    flac = understated_flac(media / "lying.flac", 3 * MAX_DURATION_S, 5.0)
    assert probe(flac).duration == pytest.approx(5.0)
    (d.inbox / "lying.flac").write_bytes(flac.read_bytes())
    state, attempts, error, _ = finished(d, d.inbox / "lying.flac")
    assert (state, attempts) == ("failed", 1)
    assert error == (f"{d.inbox / 'lying.flac'}: longer than jobs.max_duration_s = {MAX_DURATION_S} s "
                     "(decoding stopped there), though its header declares 5 s")


@pytest.mark.slow
def test_an_hls_playlist_named_wav_fails_without_reading_what_it_lists(d, media):
    outside = encode(write_wav(media / "outside.wav", click_track(100, seconds=10.0)[0]), media / "outside.mp3")
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n{outside}\n#EXT-X-ENDLIST\n"
    (d.inbox / "hls_file.wav").write_text(playlist)
    state, attempts, error, _ = finished(d, d.inbox / "hls_file.wav")
    assert (state, attempts) == ("failed", 1)
    assert error == f"{d.inbox / 'hls_file.wav'}: not an audio file (no audio container starts it)"
    assert d.query("SELECT count(*) FROM analyses WHERE duration BETWEEN 9 AND 11") == [(0,)]


@pytest.mark.slow
def test_a_file_the_daemon_may_not_read_fails_at_once(d):
    """Even root may not read /proc/sys/vm/drop_caches (mode 0200): a PermissionError, which retrying never
    mends, so it is no transient error."""
    (d.inbox / "unreadable.wav").symlink_to("/proc/sys/vm/drop_caches")
    state, attempts, error, _ = finished(d, d.inbox / "unreadable.wav")
    assert (state, attempts) == ("failed", 1)
    assert error is not None and "permission denied" in error and "unreadable.wav" in error


def test_the_decoder_names_the_container_from_the_bytes(media):
    song = write_wav(media / "sniffed.wav", click_track(120, seconds=2.0)[0])
    expected = {"wav": "wav", "flac": "flac", "mp3": "mp3", "ogg": "ogg", "m4a": "mov", "aiff": "aiff"}
    for ext, demuxer in expected.items():
        path = song if ext == "wav" else encode(song, media / f"sniffed.{ext}")
        assert sniff(path.read_bytes()[:64]) == demuxer
        assert probe(path).demuxer == demuxer
    assert sniff(b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n") is None
    assert sniff(b"ffconcat version 1.0\nfile /etc/passwd\n") is None


def test_what_is_decoded_is_the_file_opened_not_what_the_name_holds_later(media, tmp_path):
    """Issue 17: the worker checked the name, then hashed, probed and decoded it by name, three more opens, so a
    swap in between read another file. Now one checked open file is read throughout."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    name = inbox / "song.wav"
    write_wav(name, click_track(120, seconds=6.0)[0])
    fd = open_admitted(name, inbox, "inside")
    try:
        name.unlink()
        name.symlink_to(write_wav(media / "other.wav", click_track(90, seconds=3.0)[0]))
        assert probe(name, fd=fd).duration == pytest.approx(6.0, abs=0.01)
    finally:
        os.close(fd)
    with pytest.raises(Refused, match="outside the inbox"):
        open_admitted(name, inbox, "inside")
    os.mkfifo(inbox / "pipe.wav")
    with pytest.raises(Refused, match="not a regular file"):
        open_admitted(inbox / "pipe.wav", inbox, "all")


def test_a_fifo_handed_to_probe_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.wav")
    with pytest.raises(InputError, match="not a regular file"):
        probe(tmp_path / "pipe.wav")

