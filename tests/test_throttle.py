"""Throttling: limits with hysteresis on injected samples, and the probe on the real machine."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest

from beatwatch.daemon.config import Resources
from beatwatch.daemon.cpus import cgroup_cpu_limit, usable_cpus
from beatwatch.daemon.throttle import MachineProbe, Sample, Throttle


def sample(cpu=10.0, mem=8000.0, temp=None, battery=None) -> Sample:
    return Sample(other_cpu_percent=cpu, available_mb=mem, temp_c=temp, on_battery=battery)


def test_cpu_pauses_above_the_limit_and_resumes_only_below_the_margin():
    throttle = Throttle(Resources(max_cpu_percent=80))
    assert throttle.update(sample(cpu=50))
    assert not throttle.update(sample(cpu=85))
    assert "CPU" in throttle.describe()
    assert not throttle.update(sample(cpu=75)), "inside the limit but not by the margin: still paused"
    assert throttle.update(sample(cpu=65))
    assert throttle.describe() == "running"


def test_memory_temperature_and_battery_each_pause():
    throttle = Throttle(Resources(min_available_mb=1000, max_temp_c=80, pause_on_battery=True))
    assert not throttle.update(sample(mem=500))
    assert not throttle.update(sample(mem=1100)), "needs the margin above the minimum"
    assert throttle.update(sample(mem=1400))
    assert not throttle.update(sample(temp=85.0))
    assert throttle.update(sample(temp=70.0))
    assert not throttle.update(sample(battery=True))
    assert throttle.update(sample(battery=False))


def test_missing_sensors_never_pause():
    throttle = Throttle(Resources(max_temp_c=1, pause_on_battery=True))
    assert throttle.update(sample(temp=None, battery=None))


def test_two_limits_must_both_clear():
    throttle = Throttle(Resources(max_cpu_percent=50, min_available_mb=1000))
    assert not throttle.update(sample(cpu=90, mem=100))
    assert not throttle.update(sample(cpu=10, mem=100))
    assert throttle.update(sample(cpu=10, mem=5000))


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_probe_does_not_count_our_own_busy_process_as_other_load():
    probe = MachineProbe()
    busy = mp.get_context("spawn").Process(target=_spin, args=(3.0,))
    busy.start()
    try:
        time.sleep(1.5)
        mine = probe.sample([busy.pid])
        time.sleep(1.0)
        mine = probe.sample([busy.pid])
        theirs = probe.sample([])
        time.sleep(1.0)
        theirs = probe.sample([])
    finally:
        busy.join()
    share = 100.0 / (probe._cpus)
    assert theirs.other_cpu_percent - mine.other_cpu_percent > 0.5 * share
    assert mine.available_mb > 0


def test_usable_cpus_reads_the_cgroup_quota(tmp_path):
    root = tmp_path / "cgroup"
    (root / "system.slice" / "beatwatch.service").mkdir(parents=True)
    (root / "system.slice" / "beatwatch.service" / "cpu.max").write_text("150000 100000\n")
    (root / "system.slice" / "cpu.max").write_text("max 100000\n")
    own = tmp_path / "self_cgroup"
    own.write_text("0::/system.slice/beatwatch.service\n")
    assert cgroup_cpu_limit(root, own) == pytest.approx(1.5)
    assert usable_cpus(root, own) == 1
    own.write_text("0::/\n")
    assert cgroup_cpu_limit(root, own) is None
