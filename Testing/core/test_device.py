"""orbitai.device: auto selection, explicit choices, CUDA OOM fallback."""
from __future__ import annotations

import pytest
import torch

from orbitai.device import DeviceError, run_with_fallback, select_device


def test_auto_and_cpu():
    assert select_device("cpu") == torch.device("cpu")
    dev = select_device("auto")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert dev.type == expected


def test_unknown_and_absent_devices():
    with pytest.raises(DeviceError, match="Unknown device"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            select_device("cuda")


def test_oom_falls_back_to_cpu(caplog):
    calls = []

    def fn(dev):
        calls.append(dev.type)
        if dev.type == "cuda":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "done"

    assert run_with_fallback(fn, torch.device("cuda")) == "done"
    assert calls == ["cuda", "cpu"]
    assert "retrying on the CPU" in caplog.text


def test_other_errors_are_not_swallowed():
    def fn(dev):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_with_fallback(fn, torch.device("cuda"))


@pytest.mark.gpu
def test_cuda_is_selected_when_present():
    assert select_device("auto").type == "cuda"
    x = torch.ones(4, device=select_device("cuda"))
    assert float(x.sum()) == 4.0
