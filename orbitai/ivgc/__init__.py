"""IVGCResponse: predict the response to intravenous glucocorticoids from orbital T2 MRI (paper 001)."""
from orbitai.models import register_architectures

#: The task's networks, built by name for its bundles (`orbitai.models.build_model`).
register_architectures({
    "ivgc_resnet50": "orbitai.ivgc.nets",
    "ivgc_rdinet": "orbitai.ivgc.nets",
})
