"""Decoding real encoded files, and the one-line errors for files that are not usable audio."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from beatwatch.analysis.audio.decode import SAMPLE_RATE, content_hash, decode, probe
from beatwatch.analysis.errors import InputError
from tests.helpers import click_track, encode, lying_wav, write_wav


@pytest.fixture(scope="module")
def source(media):
    signal, _ = click_track(120, seconds=6.0)
    return write_wav(media / "source.wav", signal)


@pytest.mark.parametrize("ext,args", [
    ("wav", ()), ("flac", ()), ("mp3", ("-b:a", "192k")), ("ogg", ("-c:a", "libvorbis")), ("m4a", ("-c:a", "aac")),
])
def test_every_format_decodes_to_the_same_length(source, media, ext, args):
    path = encode(source, media / f"fmt.{ext}", *args)
    info = probe(path)
    audio = decode(info)
    assert info.format == ext
    assert audio.sample_rate == SAMPLE_RATE
    assert audio.samples.shape[1] == 1 == info.channels
    assert abs(audio.duration - 6.0) < 0.1


@pytest.mark.parametrize("rate,channels", [(22050, 1), (48000, 2), (32000, 2)])
def test_other_rates_and_stereo_are_resampled(source, media, rate, channels):
    path = encode(source, media / f"r{rate}c{channels}.flac", "-ar", str(rate), "-ac", str(channels))
    audio = decode(probe(path))
    assert audio.info.sample_rate == rate
    assert audio.samples.shape == (pytest.approx(6.0 * SAMPLE_RATE, abs=SAMPLE_RATE * 0.05), channels)
    peak = int(np.argmax(np.abs(audio.mono[: SAMPLE_RATE])))
    assert abs(peak / SAMPLE_RATE - 0.5) < 0.01, "first click must stay at 0.5 s after resampling"


def test_content_hash_ignores_the_name(source, media):
    copy = media / "copy with spaces.wav"
    copy.write_bytes(source.read_bytes())
    assert content_hash(copy) == content_hash(source)
    assert len(content_hash(source)) == 64


def test_missing_file(media):
    with pytest.raises(InputError, match="no such file"):
        probe(media / "nope.mp3")


def test_empty_file(media):
    path = media / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        probe(path)


def test_text_named_mp3(media):
    path = media / "notes.mp3"
    path.write_text("these are my shopping notes, not music\n" * 20)
    with pytest.raises(InputError, match="not an audio file"):
        probe(path)


def test_the_reason_is_ffmpegs_message_without_the_name_even_a_name_with_a_newline(media):
    path = media / "notes\nFAKE reason\x07.mp3"
    path.write_text("these are my shopping notes, not music\n" * 20)
    with pytest.raises(InputError) as refused:
        probe(path)
    name, reason = str(refused.value).split(": not an audio file (")
    assert name == str(path)
    assert "FAKE" not in reason and "notes" not in reason and reason.endswith(")") and len(reason) > 1


def test_truncated_mp3_is_refused(source, media):
    full = encode(source, media / "full.mp3", "-b:a", "192k")
    cut = media / "cut.mp3"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    with pytest.raises(InputError, match="truncated"):
        decode(probe(cut))


def test_a_wav_header_claiming_ten_hours_over_one_second_is_refused(media):
    """ffprobe sizes a WAV by its bytes and says 1 s: only the header shows the lie."""
    path = lying_wav(media / "lying.wav", 1.0, 10 * 3600)
    with pytest.raises(InputError, match=r"truncated or corrupt \(1\.0 s of audio, 36000\.0 s declared\)"):
        probe(path)


def test_the_analyzer_fails_a_lying_wav_instead_of_calling_it_too_short(media, analyzer):
    with pytest.raises(InputError, match="truncated"):
        analyzer.analyze(lying_wav(media / "lying-short.wav", 1.0, 10 * 3600))


def test_a_one_second_clip_and_a_wav_of_unknown_length_still_pass(media):
    clip, _ = click_track(120, seconds=1.0, lead_in=0.1)
    assert probe(write_wav(media / "clip1s.wav", clip)).duration == pytest.approx(1.0)
    piped = media / "piped.wav"  # written to a pipe, ffmpeg cannot go back to fill in the sizes
    piped.write_bytes(subprocess.run(["ffmpeg", "-v", "error", "-i", str(media / "clip1s.wav"), "-f", "wav", "-"],
                                     capture_output=True, check=True).stdout)
    assert piped.read_bytes()[4:8] == b"\xff\xff\xff\xff"
    assert decode(probe(piped)).duration == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("ext,args", [
    ("wav", ()), ("wav", ("-rf64", "always")), ("flac", ()), ("mp3", ("-b:a", "192k")),
    ("m4a", ("-c:a", "aac", "-movflags", "+faststart")), ("aiff", ()),
])
def test_every_container_that_declares_a_length_fails_when_cut_to_a_third(source, media, ext, args):
    full = encode(source, media / f"whole{len(args)}.{ext}", *args)
    cut = media / f"third{len(args)}.{ext}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    with pytest.raises(InputError, match="truncated"):
        decode(probe(cut))
