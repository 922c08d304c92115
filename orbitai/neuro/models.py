"""The NMOSD-vs-MS classifiers OrbitAI knows (:data:`NEURO_MODELS`: paper 003's four) and their loader."""
from __future__ import annotations

from orbitai.bundle.models import TaskModels

#: Paper 003's classifiers; the default is its best family (two-view).
NEURO_MODELS = TaskModels("neuro_differential", "an NMOSD-vs-MS classifier",
                          bundled={"neuro_twoview18_demo": "Two-view ResNet-18",
                                   "neuro_twoview34_demo": "Two-view ResNet-34",
                                   "neuro_resnet3d18_demo": "3D ResNet-18",
                                   "neuro_resnet3d34_demo": "3D ResNet-34"},
                          default="neuro_twoview18_demo")

#: (bundle, network in eval mode on ``device``) of an NMOSD-vs-MS bundle (default: the two-view ResNet-18).
load_neuro_model = NEURO_MODELS.load

#: The white-matter lesion segmentation networks: the bundled one, then the user's fine-tuned ones by name.
LESION_MODELS = TaskModels("lesion_segmentation", "a white-matter lesion segmentation model",
                           bundled={"neuro_lesion_unet_demo": "Bundled lesion model"},
                           default="neuro_lesion_unet_demo")
