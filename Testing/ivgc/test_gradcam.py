"""Grad-CAM of the IVGC models, placed back on the T2's geometry."""
import numpy as np
import pytest
import torch
from torch import nn

from orbitai.cohort.manifest import read_manifest
from orbitai.errors import InputError
from orbitai.io import read_volume
from orbitai.ivgc.data import preprocess
from orbitai.ivgc.gradcam import grad_cam_on_mri, network_cam
from orbitai.ivgc.nets import RDINet, ResNet50Classifier
from orbitai.phantoms.cohort import write_cohort

MR_LR = "mrlr"


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    c = read_manifest(write_cohort("ivgc", 1, seed=5, out_dir=tmp_path_factory.mktemp("ivgc"), montage_cases=0))[0]
    image = read_volume(c.image)
    x, crop = preprocess(image, c.labels(), MR_LR)
    return image, x, crop


def _inside(crop, shape):
    box = np.zeros(shape, bool)
    box[crop.slices] = True
    return box


class Quadrant(nn.Module):
    """Keeps the first half of the rows and columns (all slices) of a network-grid feature map."""

    def forward(self, f):
        out = torch.zeros_like(f)
        out[:, :, :, :64, :64] = f[:, :, :, :64, :64]
        return out


class QuadrantNet(nn.Module):
    """Features (and so the class-1 evidence) exist only in one known quadrant of the network input:
    where Grad-CAM must put the map, and where mapping it back must land on the MRI."""

    input_names = ("image",)

    def __init__(self):
        super().__init__()
        self.cam_layer = nn.Sequential(nn.Conv3d(1, 2, 3, padding=1), nn.ReLU(), Quadrant())
        with torch.no_grad():
            self.cam_layer[0].weight.fill_(0.02)
            self.cam_layer[0].bias.fill_(0.1)

    def forward(self, image):
        r = self.cam_layer(image).mean((1, 2, 3, 4))
        return torch.stack([torch.zeros_like(r), r], 1)


def test_cam_lands_where_the_evidence_is_on_the_mri(case):
    image, x, crop = case
    cam = grad_cam_on_mri(QuadrantNet(), {"image": x}, crop, target=1)
    assert cam.same_geometry(image) and cam.array.dtype == np.float32
    # the network's first 64 of 128 rows/columns are the crop box's first half of rows/columns
    (k0, j0, i0), (k1, j1, i1) = crop.start, crop.stop
    expected = np.zeros(image.shape, bool)
    expected[k0:k1, j0:j0 + (j1 - j0 + 1) // 2 + 1, i0:i0 + (i1 - i0 + 1) // 2 + 1] = True
    assert cam.array.max() == pytest.approx(1.0, abs=0.02)
    assert cam.array[expected].sum() / cam.array.sum() > 0.97
    assert not cam.array[~_inside(crop, image.shape)].any()


@pytest.mark.parametrize("kind", ["resnet50", "rdinet_clinical"])
def test_cam_of_the_deep_models_on_the_mri(case, kind):
    image, x, crop = case
    torch.manual_seed(0)
    inputs = {"image": x}
    if kind == "resnet50":
        model = ResNet50Classifier(width=1 / 16)
    else:
        model = RDINet(6, 16, width=1 / 16)
        rng = np.random.default_rng(0)
        inputs.update(radiomics=rng.normal(size=6).astype(np.float32), clinical=rng.normal(size=16).astype(np.float32))
    maps = [network_cam(model, inputs, target=t) for t in (0, 1)]
    assert all(m.shape == crop.shape for m in maps) and max(m.max() for m in maps) == pytest.approx(1.0)
    target = int(np.argmax([m.max() for m in maps]))
    vol = grad_cam_on_mri(model, inputs, crop, target=target)
    assert vol.same_geometry(image)
    high = vol.array > 0.5
    assert high.any() and (high & _inside(crop, image.shape)).sum() == high.sum()
    assert model.training                  # the training flag is restored


def test_rdinet_cam_depends_on_its_medical_inputs(case):
    _, x, _ = case
    torch.manual_seed(0)
    model = RDINet(6, 0, width=1 / 16)
    rng = np.random.default_rng(1)
    a = network_cam(model, {"image": x, "radiomics": rng.normal(size=6).astype(np.float32)}, target=1)
    b = network_cam(model, {"image": x, "radiomics": 3 * rng.normal(size=6).astype(np.float32)}, target=1)
    assert not np.allclose(a, b)
    with pytest.raises(InputError, match="radiomics"):
        network_cam(model, {"image": x}, target=1)
