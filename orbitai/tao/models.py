"""The TAO activity networks OrbitAI ships (:data:`TAO_MODELS`: Networks A and B of paper 000) and their loader."""
from __future__ import annotations

from orbitai.bundle.models import TaskModels

#: The bundled networks by their paper names ("A", "B"); Network B is the default.
TAO_MODELS = TaskModels("tao_activity", "a TAO activity classifier",
                        bundled={"tao_network_a_demo": "Network A (VGG-like)",
                                 "tao_network_b_demo": "Network B (ResNet-like)"},
                        default="tao_network_b_demo",
                        aliases={"A": "tao_network_a_demo", "B": "tao_network_b_demo"})

#: (bundle, model in eval mode) of a TAO activity bundle: "A", "B", a panel label or a bundle name/folder.
load_tao_model = TAO_MODELS.load
