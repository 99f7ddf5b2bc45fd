"""Whether the machine has room for another job: CPU, memory, temperature and power, with hysteresis.

The CPU check counts only load from other processes: beatwatch's own share is
already bounded by the worker count and nice level, and counting it would
make a busy pool pause itself every time one job ends. A limit pauses when
crossed and resumes only once back inside by a margin, so the scheduler does
not flap around a threshold. Checks whose sensor does not exist are off.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import psutil

from .config import Resources

log = logging.getLogger(__name__)

CPU_MARGIN_PERCENT = 10.0
MEMORY_MARGIN_MB = 256
TEMP_MARGIN_C = 5.0


@dataclass(frozen=True)
class Sample:
    """One reading of the machine; None where the sensor does not exist."""

    other_cpu_percent: float
    available_mb: float
    temp_c: float | None
    on_battery: bool | None


@dataclass
class Throttle:
    limits: Resources
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def paused(self) -> bool:
        return bool(self.reasons)

    def update(self, sample: Sample) -> bool:
        """Feed one sample; returns True when new jobs may start. Logs every pause and resume."""
        limits = self.limits
        self._check("cpu", sample.other_cpu_percent > limits.max_cpu_percent,
                    sample.other_cpu_percent < limits.max_cpu_percent - CPU_MARGIN_PERCENT,
                    f"other processes use {sample.other_cpu_percent:.0f}% CPU (limit {limits.max_cpu_percent:g}%)")
        self._check("memory", sample.available_mb < limits.min_available_mb,
                    sample.available_mb > limits.min_available_mb + MEMORY_MARGIN_MB,
                    f"{sample.available_mb:.0f} MB available (limit {limits.min_available_mb} MB)")
        if sample.temp_c is not None:
            self._check("temperature", sample.temp_c > limits.max_temp_c,
                        sample.temp_c < limits.max_temp_c - TEMP_MARGIN_C,
                        f"CPU at {sample.temp_c:.0f} C (limit {limits.max_temp_c:g} C)")
        if sample.on_battery is not None:
            on_battery = limits.pause_on_battery and sample.on_battery
            self._check("battery", on_battery, not on_battery, "running on battery")
        return not self.paused

    def _check(self, name: str, over: bool, back_inside: bool, why: str) -> None:
        if name not in self.reasons and over:
            self.reasons[name] = why
            log.info("throttle: pausing new jobs: %s", why)
        elif name in self.reasons and back_inside:
            del self.reasons[name]
            log.info("throttle: %s back inside limits, resuming%s", name,
                        "" if not self.reasons else " when " + ", ".join(self.reasons) + " clear")
        elif name in self.reasons:
            self.reasons[name] = why

    def describe(self) -> str:
        return "running" if not self.paused else "paused: " + "; ".join(self.reasons.values())


class MachineProbe:
    """Reads psutil; the CPU time of `own_pids` (workers, decoders) is taken out of the machine's total.

    Both are measured as CPU-time deltas over the same interval, so a worker
    that started between two samples counts as ours from its first second.
    """

    def __init__(self) -> None:
        self._cpus = psutil.cpu_count() or 1
        self._last_total = psutil.cpu_times()
        self._last_wall = time.monotonic()
        self._own: dict[int, float] = {}

    def sample(self, own_pids: list[int]) -> Sample:
        total, wall = psutil.cpu_times(), time.monotonic()
        elapsed = max(wall - self._last_wall, 1e-3)
        busy = _busy(total) - _busy(self._last_total)
        own_now = {pid: used for pid in own_pids if (used := _cpu_seconds(pid)) is not None}
        own = sum(used - self._own.get(pid, 0.0) for pid, used in own_now.items())
        self._last_total, self._last_wall, self._own = total, wall, own_now
        other = 100.0 * max(busy - own, 0.0) / (elapsed * self._cpus)
        return Sample(
            other_cpu_percent=min(other, 100.0),
            available_mb=psutil.virtual_memory().available / 2**20,
            temp_c=_max_temperature(),
            on_battery=_on_battery(),
        )


def _busy(times) -> float:
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _cpu_seconds(pid: int) -> float | None:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def _max_temperature() -> float | None:
    reader = getattr(psutil, "sensors_temperatures", None)
    try:
        sensors = reader() if reader else {}
    except (OSError, RuntimeError):
        return None
    readings = [t.current for entries in sensors.values() for t in entries if t.current]
    return max(readings) if readings else None


def _on_battery() -> bool | None:
    reader = getattr(psutil, "sensors_battery", None)
    try:
        battery = reader() if reader else None
    except (OSError, RuntimeError):
        return None
    return None if battery is None or battery.power_plugged is None else not battery.power_plugged
