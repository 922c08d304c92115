"""TAO activity (paper 000): active vs inactive thyroid-associated ophthalmopathy per eye on axial
orbital T2 MRI — preprocessing, Networks A/B training, prediction with occlusion and Grad-CAM maps.

Importing the task registers its bundle rule beyond the JSON Schema with the bundle layer (which imports
no task): the input block must be one this version's preprocessing can prepare (`orbitai.tao.spec`)."""
from __future__ import annotations

from typing import Any

from orbitai.bundle.schema import register_rule
from orbitai.models import register_architectures


def _check_input_block(meta: dict[str, Any]) -> None:
    from orbitai.tao.spec import TaoInputSpec  # numpy, SimpleITK: only when a TAO bundle is fully checked

    TaoInputSpec.from_metadata(meta)


register_rule("tao_activity", _check_input_block)


#: The task's networks, built by name for its bundles (`orbitai.models.build_model`).
register_architectures({
    "tao_network_a": "orbitai.tao.nets",
    "tao_network_b": "orbitai.tao.nets",
})
