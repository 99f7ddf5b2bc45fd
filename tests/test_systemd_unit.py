"""The shipped unit keeps its hardening: a directive dropped by an edit would widen what a compromised worker
(one that a hostile file took over) may do."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "beatwatch.service"


def directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.mark.parametrize("key,value", [
    ("RestrictAddressFamilies", "AF_UNIX"),
    ("IPAddressDeny", "any"),
    ("SystemCallFilter", "@system-service"),
    ("CapabilityBoundingSet", ""),
    ("ProtectClock", "yes"),
    ("ProtectHostname", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectProc", "invisible"),
    ("UMask", "0027"),
    ("NoNewPrivileges", "yes"),
    ("ProtectSystem", "strict"),
])
def test_the_unit_sets_each_hardening_directive(key, value):
    assert directives().get(key) == [value]


def test_the_unit_does_not_wait_for_a_network_it_does_not_use():
    units = directives()
    assert "network-online.target" not in " ".join(units.get("Wants", []) + units.get("After", []))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_rates_the_unit_ok():
    report = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(UNIT)], capture_output=True,
                            text=True, check=True).stdout
    exposure = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", report).group(1))
    assert exposure <= 2.0, report
