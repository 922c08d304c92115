"""Model prior for the annotation tools: the segmentation network's probability of a structure.

When a segmentation bundle for the image's modality is installed, SmartFill and AutoCorrection can add
the network's probability of the chosen structure to their unary terms (``prior=``, see
:mod:`orbitai.annotate.smartfill`), and SmartPencil / SmartFill can start from the network's mask
(:meth:`ModelPrior.start_mask`). The network runs once per image (:func:`compute_prior`: the same
sliding window as ``orbitai seg predict``); its class probabilities stay on the model grid and one
structure is mapped onto the image when asked for. A prior is keyed by a checksum of every voxel and the
geometry (:func:`image_key`) and refuses any other image: it is never used on a different image or grid.

The network's classes have no side; a structure named ``..._left`` / ``..._right`` keeps the
probability on its side of the patient's midline only: between the network's two eyeballs, or with one globe in
view beside it on the side its anatomy tells (`orbitai.orbit.rules.orbit_midline`).

Inside Slicer the network never runs on the application's main thread, nor in a Python thread there
(Slicer does not release the GIL while its main thread idles, so such a thread would freeze the GUI):
:meth:`orbitai.app.annotation.priors.PriorCache.request` starts ``orbitai seg prior`` on the warm worker / a
child process (``PriorRequest``), and the caller polls it from a timer; the child writes the prior with
:meth:`ModelPrior.save` and the caller reads it with :meth:`ModelPrior.load`. `ModelPrior`, `image_key` and
`PRIOR_FILE` live in `orbitai.orbit.prior_file`, which the callers import without this file's scan judge and engine.
"""
from __future__ import annotations

import time

from orbitai.bundle import BundleError
from orbitai.io import Volume
from orbitai.orbit.predict import PriorRun, SegOptions
# the prior as its callers hold and read it, in a light file of its own (the annotation panels import it as they are
# built); named here too, where the prior is made
from orbitai.orbit.prior_file import PRIOR_FILE, ModelPrior, PriorUnavailable, image_key, split_side
from orbitai.predictor import Case
from orbitai.scan import ScanFacts, scan_facts
from orbitai.scan.values import model_family

__all__ = ["PRIOR_FILE", "ModelPrior", "PriorUnavailable", "compute_prior", "image_key", "split_side"]


def compute_prior(image: Volume, bundle: str | None = None, device: str = "cpu", mirror: bool = True,
                  progress=None, key: str | None = None, facts: ScanFacts | None = None) -> ModelPrior:
    """Run the segmentation network on ``image`` (the bundle for its modality unless named; ``key``: its
    `image_key` when known; ``facts``: what the scan is, when the caller judged it) by the task's predictor
    (`orbitai.orbit.predictor.OrbitPredictor.run` asked for the prior, whose `PriorRun` the prior is made of). Raises
    :class:`PriorUnavailable` when no such bundle is installed."""
    from orbitai.orbit.predictor import OrbitPredictor   # torch: the Slicer side reads priors without it

    t0 = time.perf_counter()
    if bundle is None and facts is None:
        facts = scan_facts(image)       # judged once per prior, beside a network run that costs far more
    try:
        predictor = OrbitPredictor(bundle or model_family(facts, image), device)
        made = predictor.run(Case(image, facts), SegOptions(mirror=mirror, prior=True), predictor.device, progress)
    except BundleError as exc:
        raise PriorUnavailable(f"No model prior: {exc}; the strokes alone are used.") from None
    assert isinstance(made, PriorRun)
    return ModelPrior(key or image_key(image), made.bundle, made.structures, made.probs, made.grid, made.midline_x,
                      time.perf_counter() - t0)
