"""hooks.on_done / hooks.on_failed run by the real daemon: arguments and environment arrive intact, a file name
made of shell syntax stays a name, a hook past hooks.timeout_s is killed, and all of it is logged."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from beatwatch.daemon.config import Hooks
from beatwatch.daemon.hooks import JobEvent, command_for
from tests.daemon_harness import wait_for
from tests.helpers import click_track, write_wav

# Writes what it was given to <records>/<event>-<job id>.json; a failed-job call then sleeps past the timeout.
RECORDER = """
import json, os, sys, time
record = {"argv": sys.argv[1:], "cwd": os.getcwd(),
          "env": {k: v for k, v in os.environ.items() if k.startswith("BEATWATCH_") and k != "BEATWATCH_CONFIG"}}
path = os.path.join(os.environ["RECORDS"], os.environ["BEATWATCH_EVENT"] + "-" + os.environ["BEATWATCH_JOB_ID"])
with open(path + ".tmp", "w") as f:
    json.dump(record, f)
os.rename(path + ".tmp", path + ".json")
if os.environ["BEATWATCH_EVENT"] == "failed":
    time.sleep(60)
"""
SHELLY_SONG = "$(touch PWNED) `touch PWNED2`; touch PWNED3 #.wav"
SHELLY_BAD = "$(touch PWNED4) | touch PWNED5.mp3"


def test_the_command_is_the_configured_list_plus_the_facts_never_a_shell_string():
    settings = Hooks(on_done=["/bin/echo", "--tag"], on_failed=[])
    argv, env = command_for(settings, JobEvent("done", 7, "/in/$(x).wav", sidecar="/in/$(x).wav.beatwatch.json",
                                                     outcome="analysed", content_hash="ab" * 32))
    assert argv == ["/bin/echo", "--tag", "/in/$(x).wav.beatwatch.json", "/in/$(x).wav"]
    assert env["BEATWATCH_AUDIO"] == "/in/$(x).wav" and env["BEATWATCH_JOB_ID"] == "7"
    assert command_for(settings, JobEvent("failed", 8, "/in/a.mp3", error="bad")) is None


def test_a_hook_that_is_not_a_program_is_refused_on_load():
    with pytest.raises(ValueError):
        Hooks(on_done=[" "])


@pytest.mark.slow
def test_hooks_get_the_facts_and_a_shell_looking_name_runs_nothing(daemon, tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER)
    hook = json.dumps([sys.executable, str(script)])
    # A timeout a loaded machine's Python start-up cannot reach (a test run beside others took over 2 s).
    d = daemon(f"[hooks]\non_done = {hook}\non_failed = {hook}\ntimeout_s = 15\n", env={"RECORDS": str(records)})
    signal, _ = click_track(120, seconds=8.0)
    song = write_wav(tmp_path / "src.wav", signal).rename(d.inbox / SHELLY_SONG)
    bad = d.inbox / SHELLY_BAD
    bad.write_text("not music\n" * 50)
    wait_for(lambda: len(list(records.glob("*.json"))) == 2, 120, "both hooks to run")
    done = json.loads(next(records.glob("done-*.json")).read_text())
    failed = json.loads(next(records.glob("failed-*.json")).read_text())

    sidecar = str(song) + ".beatwatch.json"
    assert done["argv"] == [sidecar, str(song)]
    assert done["env"]["BEATWATCH_EVENT"] == "done" and done["env"]["BEATWATCH_AUDIO"] == str(song)
    assert done["env"]["BEATWATCH_SIDECAR"] == sidecar and done["env"]["BEATWATCH_OUTCOME"] == "analysed"
    assert done["env"]["BEATWATCH_CONTENT_HASH"] == json.loads(Path(sidecar).read_text())["file"]["content_hash"]
    job_id = d.query("SELECT id FROM jobs WHERE path = ?", str(song))[0][0]
    assert done["env"]["BEATWATCH_JOB_ID"] == str(job_id)
    assert failed["argv"][0] == str(bad) and "not an audio file" in failed["argv"][1]
    assert failed["env"]["BEATWATCH_ERROR"] == failed["argv"][1]

    def killed() -> str:
        text = (d.root / "daemon.log").read_text()
        return text if "killed after 15 s" in text else ""

    log = wait_for(killed, 60, "the slow hook to be killed")
    assert f"hooks.on_done for job {job_id}: {sys.executable} ran (exit 0)" in log
    assert "hooks.on_failed for job" in log and "killed after 15 s (hooks.timeout_s)" in log
    d.stop()
    for folder in {d.root, d.inbox, tmp_path, Path(done["cwd"]), Path(failed["cwd"])}:
        assert not list(folder.glob("PWNED*")), folder
