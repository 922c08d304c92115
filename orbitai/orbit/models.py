"""The orbit segmentation models OrbitAI ships (:data:`SEG_MODELS`) and their loader.

The panel shows the bundle names themselves; without a name, the bundled model for the scan's
modality is used (aliases ``CT`` and ``MR``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from orbitai.bundle.models import TaskModels

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from orbitai.bundle.core import Bundle
    from orbitai.engine.inference import SegSpec

_BUNDLED = ("orbit_sequnet_ct_demo", "orbit_sunet_ct_demo", "orbit_svnet_ct_demo", "orbit_svnet_dr_demo",
            "orbit_svnet_mri_demo")
#: The bundled segmentation models (panel label = bundle name); by modality without a name.
SEG_MODELS = TaskModels("segmentation", "a segmentation model", bundled={n: n for n in _BUNDLED},
                        aliases={"CT": "orbit_svnet_ct_demo", "MR": "orbit_svnet_mri_demo"})


def load_seg_model(name: Optional[str], image_is_ct: bool,
                   device: "torch.device | str" = "cpu") -> "tuple[Bundle, torch.nn.Module, SegSpec]":
    """(bundle, model in eval mode on ``device``, input spec) of a segmentation bundle; without a
    name, the bundled default for the image's modality."""
    from orbitai.engine.inference import SegSpec

    b, model = SEG_MODELS.load(name or ("CT" if image_is_ct else "MR"), device)
    return b, model, SegSpec.from_metadata(b.metadata)
