"""The log formatter: a file's name can neither forge a log line nor drive the reader's terminal."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from beatwatch.daemon.logs import FORMAT, EscapingFormatter, escape_controls


def test_control_characters_are_escaped_and_letters_of_any_script_kept():
    assert escape_controls("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert escape_controls("\x1b[31mred\x07\x00\x7f\x85\x9b") == "\\x1b[31mred\\x07\\x00\\x7f\\x85\\x9b"
    assert escape_controls("line\u2028para\u2029") == "line\\u2028para\\u2029"
    assert escape_controls("Café Ærø 東京 🎵 ünïcödé") == "Café Ærø 東京 🎵 ünïcödé"


def test_an_undecodable_byte_of_a_name_shows_as_that_byte():
    name = os.fsdecode(b"caf\xe9\xff.wav")
    assert escape_controls(name) == "caf\\xe9\\xff.wav"


def _record(message: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("beatwatch.test", logging.WARNING, __file__, 1, message, args, exc_info)


def test_a_name_in_the_arguments_stays_on_the_records_line():
    line = EscapingFormatter(FORMAT).format(_record("job %d done: %s", 7, "/in/a\nFAKE ERROR x\x1b[2J.wav"))
    assert "\n" not in line and "\x1b" not in line
    assert line.endswith("WARNING beatwatch.test: job 7 done: /in/a\\nFAKE ERROR x\\x1b[2J.wav")


def test_a_traceback_keeps_its_lines_but_none_of_them_starts_at_the_margin():
    try:
        raise ValueError("/in/b\nFAKE CRITICAL forged\x07")
    except ValueError:
        text = EscapingFormatter(FORMAT).format(_record("storing %s failed", "b", exc_info=sys.exc_info()))
    first, *rest = text.split("\n")
    assert first.endswith("storing b failed")
    assert rest[0] == "  Traceback (most recent call last):"
    assert rest[-2:] == ["  ValueError: /in/b", "  FAKE CRITICAL forged\\x07"]
    assert all(line.startswith("  ") for line in rest)


def test_status_shows_a_running_jobs_name_on_its_own_line(engine):
    from beatwatch.daemon.status import render_status
    from beatwatch.store import jobs

    jobs.enqueue(engine, "/in/a\nFAKE running\x1b[2J.wav", size=1, mtime=1.0, now=1.0)
    assert jobs.claim(engine, "w1", lease_s=60, now=2.0) is not None
    lines = render_status(engine, now=3.0).split("\n")
    assert lines[-1].endswith("/in/a\\nFAKE running\\x1b[2J.wav")
    assert not [line for line in lines if line.startswith("FAKE")]


def test_syslog_priorities_follow_the_level():
    from beatwatch.daemon.logs import JOURNAL_FORMAT

    formatter = EscapingFormatter(JOURNAL_FORMAT)
    lines = [formatter.format(logging.LogRecord("beatwatch", level, __file__, 1, "m", (), None))
             for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)]
    assert lines == ["<7>DEBUG beatwatch: m", "<6>INFO beatwatch: m", "<4>WARNING beatwatch: m",
                     "<3>ERROR beatwatch: m", "<2>CRITICAL beatwatch: m"]


def test_throttle_pause_and_resume_are_info_not_warnings(caplog):
    from beatwatch.daemon.config import Resources
    from beatwatch.daemon.throttle import Sample, Throttle

    throttle = Throttle(Resources(max_cpu_percent=80))
    with caplog.at_level(logging.DEBUG, logger="beatwatch"):
        throttle.update(Sample(other_cpu_percent=95, available_mb=10_000, temp_c=None, on_battery=None))
        throttle.update(Sample(other_cpu_percent=10, available_mb=10_000, temp_c=None, on_battery=None))
    throttle_records = [r for r in caplog.records if r.getMessage().startswith("throttle:")]
    assert [r.levelname for r in throttle_records] == ["INFO", "INFO"]
    assert "pausing" in throttle_records[0].getMessage() and "resuming" in throttle_records[1].getMessage()


@pytest.mark.slow
def test_under_journald_lines_carry_a_priority_and_no_timestamp_of_their_own(daemon, tmp_path):
    import re
    import signal

    log_file = tmp_path / "daemon.log"
    log_file.touch()
    st = log_file.stat()
    d = daemon(env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert d.stop(signal.SIGTERM) == 0
    lines = [line for line in log_file.read_text().splitlines() if line and not line.startswith(" ")]
    assert lines and all(re.match(r"<[2-7]>(DEBUG|INFO|WARNING|ERROR|CRITICAL) ", line) for line in lines), lines
    assert not any(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line) for line in lines)
    assert any(line.startswith("<6>INFO beatwatch.daemon.supervisor: stopping") for line in lines), lines
    assert "<6>INFO beatwatch.daemon.supervisor: stopped" in lines
