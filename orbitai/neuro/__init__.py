"""NeuroDifferential (paper 003): white-matter lesions on brain FLAIR and NMOSD vs multiple sclerosis."""
from orbitai.models import register_architectures

#: The task's networks, built by name for its bundles (`orbitai.models.build_model`).
register_architectures({
    "neuro_twoview": "orbitai.neuro.nets",
    "neuro_resnet3d": "orbitai.neuro.nets",
    "neuro_lesion_unet25d": "orbitai.neuro.lesion_net",
    "mindgrab_meshnet": "orbitai.neuro.mindgrab",
})
