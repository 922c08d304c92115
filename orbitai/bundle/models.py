"""Task model loaders: pick a bundle (by name, folder, or the task's default), check its task,
load verified weights. Shared by the command line, evaluation and other tasks (TAO uses the
segmentation loader to find the orbits)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from orbitai.bundle.core import Bundle, find_bundle
from orbitai.errors import BundleError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from orbitai.seg.engine import SegSpec

#: Bundled segmentation model chosen when none is given, by the image's modality.
DEFAULT_SEG_MODELS = {"CT": "orbit_svnet_ct_demo", "MR": "orbit_svnet_mri_demo"}
#: Bundled TAO activity networks by their paper names.
DEFAULT_TAO_MODELS = {"A": "tao_network_a_demo", "B": "tao_network_b_demo"}
#: Bundled IVGC-response models by kind (paper 001's Table 2), the radiomics SVM first (the default).
DEFAULT_IVGC_MODELS = {"svm": "ivgc_svm_demo", "resnet50": "ivgc_resnet50_demo", "rdinet": "ivgc_rdinet_demo",
                       "rdinet_clinical": "ivgc_rdinet_clinical_demo"}

#: Bundled NMOSD-vs-MS classifier chosen when none is given (paper 003's best family: two-view).
DEFAULT_NEURO_MODEL = "neuro_twoview18_demo"


def find_task_bundle(name: str, task: str, what: str) -> Bundle:
    """The bundle ``name`` (name or folder), refused with a clear error unless it is a ``task`` model."""
    bundle = find_bundle(name)
    if bundle.metadata.get("task") != task:
        raise BundleError(f"Bundle '{bundle.name}' is a {bundle.metadata.get('task')} model, not {what}.")
    return bundle


def load_seg_model(name: Optional[str], image_is_ct: bool,
                   device: "torch.device | str" = "cpu") -> "tuple[Bundle, torch.nn.Module, SegSpec]":
    """(bundle, model in eval mode on ``device``, input spec) of a segmentation bundle; without a
    name, the bundled default for the image's modality."""
    from orbitai.seg.engine import SegSpec

    b = find_task_bundle(name or DEFAULT_SEG_MODELS["CT" if image_is_ct else "MR"], "segmentation",
                         "a segmentation model")
    return b, b.load_model(device), SegSpec.from_metadata(b.metadata)


def load_tao_model(name_or_network: str, device: "torch.device | str" = "cpu") -> "tuple[Bundle, torch.nn.Module]":
    """(bundle, model in eval mode) of a TAO activity bundle: "A", "B" or a bundle name/folder."""
    name = DEFAULT_TAO_MODELS.get(name_or_network.upper(), name_or_network)
    bundle = find_task_bundle(name, "tao_activity", "a TAO activity classifier")
    return bundle, bundle.load_model(device).eval()


def load_ivgc_model(name: Optional[str] = None, device: "torch.device | str" = "cpu") -> "tuple[Bundle, object]":
    """(bundle, model) of an IVGC-response bundle: a kind of :data:`DEFAULT_IVGC_MODELS`, a bundle name or
    folder (default ``ivgc_svm_demo``). The model is the scikit-learn pipeline of a radiomics bundle
    (skops, checksum-verified) or the network of a deep one, in eval mode on ``device``."""
    key = name or DEFAULT_IVGC_MODELS["svm"]
    bundle = find_task_bundle(DEFAULT_IVGC_MODELS.get(key, key), "ivgc_response", "an IVGC response model")
    if bundle.architecture:
        return bundle, bundle.load_model(device).eval()
    return bundle, bundle.load_file("classifier")


def load_neuro_model(name: Optional[str] = None, device: "torch.device | str" = "cpu") -> "tuple[Bundle, torch.nn.Module]":
    """(bundle, network in eval mode on ``device``) of an NMOSD-vs-MS bundle (default :data:`DEFAULT_NEURO_MODEL`)."""
    bundle = find_task_bundle(name or DEFAULT_NEURO_MODEL, "neuro_differential", "an NMOSD-vs-MS classifier")
    return bundle, bundle.load_model(device).eval()
