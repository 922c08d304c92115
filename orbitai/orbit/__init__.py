"""The orbit segmentation task (``orbitai seg ...``), on top of the generic engine (:mod:`orbitai.engine.inference`);
shaped like the other task folders.

* :mod:`orbitai.orbit.cli`       the ``seg`` commands: predict, prior, evaluate, train, configs
* :mod:`orbitai.orbit.configs`   training configurations (SV-net, SU-net, SEQ-UNET; CT, MRI, synthetic)
* :mod:`orbitai.orbit.models`    the bundled segmentation models and defaults by modality (:data:`SEG_MODELS`)
* :mod:`orbitai.orbit.data`      manifests -> training patches; :mod:`orbitai.orbit.synth`: synthetic heads
* :mod:`orbitai.orbit.train`     training; :mod:`orbitai.orbit.evaluate`: metrics on a labelled manifest
* :mod:`orbitai.orbit.predict`   one scan -> ``result.json``, segmentation, volumes (:func:`predict`)
* :mod:`orbitai.orbit.prior`     the network's probabilities as a prior for the annotation tools (``seg prior``)
* :mod:`orbitai.orbit.result`    the ``result.json`` contract; :mod:`orbitai.orbit.figure`: figures
* :mod:`orbitai.orbit.rules`     label scheme <-> model classes, left/right split at the midline,
                                 the eyeball guard (:class:`OrbitNotFoundError`), structure volumes
* :mod:`orbitai.orbit.segment`   :func:`~orbitai.orbit.segment.segment`: a whole scan -> orbit labels
* :mod:`orbitai.orbit.anatomy`   normal-anatomy ranges used to flag implausible results
* :mod:`orbitai.orbit.nets`      the networks (SV-net, SU-net, V-Net, SEQ-UNET), registered below
"""
from orbitai.models import register_architectures

#: The task's networks, built by name for its bundles (`orbitai.models.build_model`).
register_architectures({
    "svnet": "orbitai.orbit.nets.svnet",
    "sunet": "orbitai.orbit.nets.svnet",
    "vnet": "orbitai.orbit.nets.svnet",
    "sequnet": "orbitai.orbit.nets.sequnet",
    "sunet_volume": "orbitai.orbit.nets.volume_wrappers",
    "sequnet_volume": "orbitai.orbit.nets.volume_wrappers",
})
