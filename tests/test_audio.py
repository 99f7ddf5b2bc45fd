"""Decoding real encoded files, and the one-line errors for files that are not usable audio."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from scipy.signal import correlate

from beatwatch.analysis.audio.decode import (MIN_DECODED_SHARE, SAMPLE_RATE, TRUNCATION_SLACK_S, content_hash, decode,
                                             probe)
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


@pytest.mark.parametrize("name,args", [
    ("adts.aac", ("-c:a", "aac", "-b:a", "128k")),
    ("cbr-no-header.mp3", ("-b:a", "192k", "-write_xing", "0")),
    ("vbr-no-header.mp3", ("-q:a", "2", "-write_xing", "0")),
])
def test_streams_without_a_header_decode_whole_and_on_time(source, media, name, args):
    """A raw AAC stream and an MP3 without a Xing/LAME header state neither their length (ffprobe guesses one
    from the bitrate) nor their encoder's delay: the file is decoded whole, not refused as truncated against
    the guess, and its clicks land where the WAV's do, not 23-25 ms late."""
    path = encode(source, media / name, *args)
    info = probe(path)
    assert info.duration_guessed and info.priming > 0
    audio = decode(info)
    assert abs(audio.duration - 6.0) < 0.05
    reference = decode(probe(source)).mono
    n = min(len(reference), len(audio.mono))
    correlation = correlate(audio.mono[:n], reference[:n], mode="full", method="fft")
    reach = SAMPLE_RATE // 20
    lag = int(np.argmax(correlation[n - 1 - reach:n + reach])) - reach
    assert abs(lag) <= SAMPLE_RATE // 1000, f"{1000 * lag / SAMPLE_RATE:.1f} ms off"


def test_a_vbr_mp3_without_a_header_that_opens_in_silence_is_not_called_truncated(media):
    """ffprobe sizes it by its first, silent frames' low bitrate: 1 s of silence and 6 s of noise "declare"
    about 12 s, against which the 7 s decoded would be refused as truncated."""
    noise = np.random.default_rng(7).uniform(-0.3, 0.3, 6 * SAMPLE_RATE).astype(np.float32)
    quiet_start = write_wav(media / "quiet-start.wav", np.concatenate([np.zeros(SAMPLE_RATE, np.float32), noise]))
    info = probe(encode(quiet_start, media / "quiet-start.mp3", "-q:a", "2", "-write_xing", "0"))
    assert MIN_DECODED_SHARE * info.duration - TRUNCATION_SLACK_S > 7.0
    assert abs(decode(info).duration - 7.0) < 0.05


def test_a_stream_with_a_gapless_header_keeps_ffmpegs_own_trim(source, media):
    info = probe(encode(source, media / "gapless.mp3", "-b:a", "192k"))
    assert not info.duration_guessed and info.priming == 0
