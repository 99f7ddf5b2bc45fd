"""Whether the machine has room for another job: CPU, memory, temperature and power, with hysteresis.

The CPU check counts only load from other processes: beatwatch's own share is
already bounded by the worker count and nice level, and counting it would
make a busy pool pause itself every time one job ends. A limit pauses when
crossed and resumes only once back inside by a margin, so the scheduler does
not flap around a threshold. Checks whose sensor does not exist are off.
"""

from __future__ import annotations

import logging
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
            log.warning("throttle: pausing new jobs: %s", why)
        elif name in self.reasons and back_inside:
            del self.reasons[name]
            log.warning("throttle: %s back inside limits, resuming%s", name,
                        "" if not self.reasons else " when " + ", ".join(self.reasons) + " clear")
        elif name in self.reasons:
            self.reasons[name] = why

    def describe(self) -> str:
        return "running" if not self.paused else "paused: " + "; ".join(self.reasons.values())


class MachineProbe:
    """Reads psutil; `own_pids` are subtracted from the CPU total."""

    def __init__(self) -> None:
        psutil.cpu_percent(interval=None)
        self._procs: dict[int, psutil.Process] = {}
        self._cpus = psutil.cpu_count() or 1

    def sample(self, own_pids: list[int]) -> Sample:
        total = psutil.cpu_percent(interval=None)
        own = sum(self._proc_cpu(pid) for pid in own_pids) / self._cpus
        return Sample(
            other_cpu_percent=max(total - own, 0.0),
            available_mb=psutil.virtual_memory().available / 2**20,
            temp_c=_max_temperature(),
            on_battery=_on_battery(),
        )

    def _proc_cpu(self, pid: int) -> float:
        proc = self._procs.get(pid)
        try:
            if proc is None:
                proc = self._procs[pid] = psutil.Process(pid)
                proc.cpu_percent(interval=None)
                return 0.0
            return proc.cpu_percent(interval=None)
        except psutil.Error:
            self._procs.pop(pid, None)
            return 0.0


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
