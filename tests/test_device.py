"""The device choice is explicit: auto says why, cuda without a GPU provider is refused, not downgraded."""

from __future__ import annotations

import pytest

from beatwatch.analysis.nets.device import DeviceError, resolve_device


def test_auto_on_this_host_is_the_cpu_with_its_reason():
    device = resolve_device("auto")
    assert device.name == "cpu" and "auto" in device.reason and "CPUExecutionProvider" in device.reason
    assert device.providers == ["CPUExecutionProvider"]


def test_auto_takes_the_gpu_when_the_provider_exists():
    device = resolve_device("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert device.name == "cuda" and device.providers[0] == "CUDAExecutionProvider"


def test_cuda_without_a_provider_is_an_error_naming_the_key():
    with pytest.raises(DeviceError, match="inference.device = cuda"):
        resolve_device("cuda", ["CPUExecutionProvider"])


def test_the_sidecar_names_the_device(analyzer, media):
    from tests.helpers import click_track, write_wav

    signal, _ = click_track(100, seconds=6.0)
    doc = analyzer.analyze(write_wav(media / "device.wav", signal))
    assert doc["analyzer"]["device"] == "cpu"
    assert "auto" in doc["analyzer"]["device_reason"]
