"""Compute device selection: ``auto`` picks CUDA, then Apple MPS, then CPU.

An explicit choice wins (and fails clearly if that device is absent). `run_with_fallback`
retries a computation on the CPU, with a warning, when CUDA runs out of memory.
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Callable, TypeVar

from orbitai.errors import DeviceError

if TYPE_CHECKING:  # torch is imported where it is used: the device list must import without it
    import torch

log = logging.getLogger(__name__)
T = TypeVar("T")
#: The one list of device choices (CLI, Slicer panels, parameter nodes).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def select_device(choice: str | torch.device | None = "auto") -> torch.device:
    """Resolve ``auto|cpu|cuda[:N]|mps`` (or a torch.device) to an available torch.device."""
    import torch

    if isinstance(choice, torch.device):
        choice = str(choice)
    choice = (choice or "auto").strip().lower()
    if choice == "gpu":
        choice = "cuda"
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was requested but no CUDA GPU is available; use --device cpu or auto.")
        dev = torch.device(choice)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"{choice} requested but only {torch.cuda.device_count()} CUDA device(s) exist.")
        return dev
    if choice == "mps":
        if not mps_available():
            raise DeviceError("Apple MPS was requested but is not available; use --device cpu or auto.")
        return torch.device("mps")
    raise DeviceError(f"Unknown device {choice!r}; choose one of {', '.join(DEVICE_CHOICES)}.")


def describe(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def is_oom(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or "out of memory" in str(exc).lower()


def run_with_fallback(fn: Callable[[torch.device], T], device: torch.device) -> T:
    """Run ``fn(device)``; if CUDA runs out of memory, warn and run ``fn(cpu)`` instead."""
    import torch

    try:
        return fn(device)
    except RuntimeError as exc:
        if device.type != "cuda" or not is_oom(exc):
            raise
        log.warning("CUDA out of memory on %s; retrying on the CPU (slower).", device)
        torch.cuda.empty_cache()
        return fn(torch.device("cpu"))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)
