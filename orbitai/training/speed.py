"""How a training step uses the CPU (issue 77): memory layout, mixed precision and compilation, chosen in one place.

Measured on the shipped networks (``benchmarks/bench_training_speed.py``): the SV-net's thin 3D layers (6-24
channels) run oneDNN's direct convolution several times faster in the channels-last layout (``N, D, H, W, C``)
than in ``N, C, D, H, W``, and a CPU with native bfloat16 dot products (AVX512-BF16, AMX) runs them about 1.6 times
as fast again under autocast. Both are torch's own mechanisms (``torch.channels_last_3d``, ``torch.autocast``);
nothing here is a kernel of our own.

:class:`StepSpeed` is the choice. The default (``auto``) is the channels-last layout in float32: bit-identical to
itself, so a run stopped and resumed ends with the weights of one run. ``bf16`` adds bfloat16 autocast where the
device multiplies bfloat16 natively (a CPU without it keeps float32: emulated bfloat16 is slower): oneDNN's
bfloat16 kernels are not bit-reproducible from run to run (weights differ by ~1e-3 after two steps, measured), so a
resumed bf16 run matches one run only within a tolerance (``benchmarks/results/training_speed.json``). Mixed
precision follows the usual contract: weights, optimiser state and loss stay float32. ``plain`` is the layout and
precision of earlier releases (the benchmark's baseline; an escape hatch should a machine's oneDNN misbehave).
``compiled`` is ``bf16`` with the training step's network compiled by ``torch.compile`` (inductor fuses the batch
norms, activations and casts that the thin layers spend most of a bfloat16 step on: 0.41 -> 0.27 s a step of the MRI
SV-net, measured; a first run compiles for about a minute, later runs read inductor's cache); where no C++ compiler is
found it steps as ``bf16`` does. The choice comes from ``ORBITAI_TRAIN_SPEED`` or a command's ``--speed``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from typing import Any, Iterator

import torch

from orbitai.arguments import SPEED_CHOICES   # the choices, kept with the command line's (torch-free) options
from orbitai.errors import ConfigError

log = logging.getLogger(__name__)

#: Environment switch: one of `SPEED_CHOICES` (``auto`` the default; see the module docstring).
SPEED_ENV = "ORBITAI_TRAIN_SPEED"


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 natively (CUDA with bf16 support; a CPU with AVX512-BF16 or AMX)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):      # a torch build without the query: assume not
        return False


def model_dims(model: torch.nn.Module) -> int:
    """The spatial dimensions of ``model``'s first convolution (2 or 3; 0 without one)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.conv._ConvNd):
            return len(m.kernel_size)
    return 0


def can_compile(device: torch.device) -> bool:
    """Whether ``torch.compile`` can build kernels for ``device`` here: inductor's CPU kernels need a C++ compiler."""
    if device.type != "cpu":
        return device.type == "cuda"
    if shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++"):
        return True
    log.warning("no C++ compiler found (g++ or $CXX): training steps run uncompiled")
    return False


class _Compiled(torch.nn.Module):
    """``net`` compiled by ``torch.compile``, called with dynamo's ``suppress_errors`` on for the call alone: a graph
    the compiler cannot take runs eagerly, and the rest of the process (Slicer's, a notebook's compiled code) keeps
    its own setting."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.compiled = torch.compile(net)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        import torch._dynamo

        with torch._dynamo.config.patch(suppress_errors=True):
            return self.compiled(*args, **kwargs)


@dataclass(frozen=True)
class StepSpeed:
    """How training steps run: ``channels_last`` layout of activations and weights, ``bf16`` autocast of the
    forward pass, ``compile`` of the step's network with ``torch.compile`` (the ``compiled`` choice: about a minute
    of compiling on 2 cores the first time, then 1.2-1.5x the bf16 step of the SV-nets)."""

    channels_last: bool = False
    bf16: bool = False
    compile: bool = False

    @classmethod
    def auto(cls, device: str | torch.device = "cpu", mode: str | None = None, compile: bool = False) -> StepSpeed:
        """The choice ``mode`` (None: ``$ORBITAI_TRAIN_SPEED``, else ``auto``) on ``device``."""
        device = torch.device(device)
        mode = (mode if mode is not None else os.environ.get(SPEED_ENV, "")).strip().lower() or "auto"
        if mode not in SPEED_CHOICES:
            raise ConfigError(f"training speed {mode!r}: use one of {', '.join(SPEED_CHOICES)} ({SPEED_ENV} or --speed).")
        if mode == "plain":
            return cls(compile=compile)
        if mode == "compiled":
            compile = can_compile(device)
        return cls(channels_last=True, bf16=mode in ("bf16", "compiled") and native_bf16(device), compile=compile)

    def describe(self) -> dict[str, Any]:
        """For a bundle's or a checkpoint's provenance."""
        return {**asdict(self), "precision": "bfloat16 autocast, float32 weights" if self.bf16 else "float32"}

    def _format(self, ndim: int) -> torch.memory_format | None:
        if not self.channels_last:
            return None
        return {4: torch.channels_last, 5: torch.channels_last_3d}.get(ndim)

    def model(self, model: torch.nn.Module, spatial_dims: int) -> torch.nn.Module:
        """``model`` in the chosen layout (in place: the same parameters, so optimisers and state dicts are
        unchanged); returns it (what a step calls, compiled when chosen, is :meth:`stepping`)."""
        fmt = self._format(spatial_dims + 2)
        if fmt is not None:
            model.to(memory_format=fmt)     # type: ignore[call-overload]
        return model

    def stepping(self, net: torch.nn.Module) -> torch.nn.Module:
        """What a training step calls: ``net`` itself, or compiled when chosen (the same parameters; a graph the
        compiler cannot take runs eagerly, as dynamo's ``suppress_errors`` does, during this network's calls only)."""
        return _Compiled(net) if self.compile else net

    @staticmethod
    def release(model: torch.nn.Module) -> None:
        """``model``'s weights back in the usual layout (in place), as a bundle stores them."""
        model.to(memory_format=torch.contiguous_format)     # type: ignore[call-overload]

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """A batch in the chosen layout (values unchanged)."""
        fmt = self._format(x.ndim)
        return x.contiguous(memory_format=fmt) if fmt is not None else x

    @contextlib.contextmanager
    def autocast(self, device: str | torch.device = "cpu") -> Iterator[None]:
        """The forward pass under bfloat16 autocast when chosen; the caller computes the loss on ``.float()``."""
        device = torch.device(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16):
            yield
