"""Where the networks run, decided once and said out loud: a GPU run never quietly becomes a CPU run.

madmom's networks (beats/downbeats, chord features, key) run through
onnxruntime, which can use a GPU only when its CUDA execution provider is
installed (the onnxruntime-gpu build). "auto" takes the GPU when that holds
and otherwise says why it chose the CPU; "cuda" without a usable provider is
an error, not a fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

from beatwatch.analysis.errors import AnalysisError

CUDA_PROVIDER = "CUDAExecutionProvider"


class DeviceError(AnalysisError):
    """The configured device cannot be used on this host."""

    permanent = True


@dataclass(frozen=True)
class Device:
    name: str  # "cpu" or "cuda", as the sidecar's analyzer.device says
    reason: str

    @property
    def providers(self) -> list[str]:
        return [CUDA_PROVIDER, "CPUExecutionProvider"] if self.name == "cuda" else ["CPUExecutionProvider"]


def resolve_device(requested: str, available: list[str] | None = None) -> Device:
    """requested: "auto", "cpu" or "cuda" (config inference.device); available: onnxruntime's providers.

    onnxruntime is imported here, not at the top: DeviceError and Device must stay cheap to import for
    processes that never run a network (the CLI, the supervisor).
    """
    if requested == "cpu":
        return Device("cpu", "inference.device = cpu")
    if available is None:
        import onnxruntime

        available = onnxruntime.get_available_providers()
    has_cuda = CUDA_PROVIDER in available
    if requested == "cuda":
        if not has_cuda:
            raise DeviceError("inference.device = cuda, but onnxruntime on this host has no CUDA provider "
                              f"(available: {', '.join(available)}); install onnxruntime-gpu or use auto/cpu")
        return Device("cuda", "inference.device = cuda")
    if has_cuda:
        return Device("cuda", "auto: onnxruntime's CUDA provider is available")
    return Device("cpu", f"auto: no GPU provider in onnxruntime ({', '.join(available)})")
