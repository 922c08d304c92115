"""The checks of a network's weights as loaded (`orbitai.bundle.core.Bundle.load_state_dict`): light to import (no
torch until a check runs)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["non_finite"]


#: The floating-point tensor types NumPy has too (`non_finite` checks those with NumPy).
_NUMPY_FLOATS = ("torch.float16", "torch.float32", "torch.float64", "torch.complex64", "torch.complex128")


def non_finite(state: dict[str, "torch.Tensor"]) -> list[str]:
    """The names of ``state``'s floating-point tensors holding a NaN or an infinity (float16 ones too). Checked with
    NumPy where it has the type (one parallel torch call per tensor waited ~3 ms each on 2 busy cores: 0.4 s for a
    150-tensor network), with torch otherwise (bfloat16)."""
    import torch

    def finite(v: "torch.Tensor") -> bool:
        if v.device.type == "cpu" and str(v.dtype) in _NUMPY_FLOATS:
            return bool(np.isfinite(v.detach().numpy()).all())
        return bool(torch.isfinite(v).all())

    return [k for k, v in state.items() if (v.is_floating_point() or v.is_complex()) and v.numel() and not finite(v)]
