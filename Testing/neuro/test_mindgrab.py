"""MindGrab brain extraction (issue 65): the bundle, the PyTorch port, brainchop's preprocessing, a real raw FLAIR."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from scipy import ndimage as ndi

from orbitai.errors import BundleError, InputError
from orbitai.io import Volume, read_volume
from orbitai.neuro.mindgrab import (
    BUNDLE,
    CONFORM_SIZE,
    DILATIONS,
    LIA_DIRECTION,
    MeshNet,
    check_brain_mask,
    conform,
    load_mindgrab,
    mindgrab_brain_mask,
    mindgrab_bundle,
)

RAW = Path(__file__).resolve().parents[3] / "shared" / "data" / "ms_flair_raw_lesjak"


def test_bundle_loads_with_its_checksum_and_licence():
    b = mindgrab_bundle()
    assert b.name == BUNDLE and b.metadata["task"] == "brain_extraction"
    assert "MIT License" in (b.path / "LICENSE").read_text()
    model = b.load_model()
    assert isinstance(model, MeshNet) and not model.training
    assert [c.dilation[0] for c in model.convs] == list(DILATIONS)
    assert sum(p.numel() for p in model.parameters()) == b.metadata["parameters"]


def test_a_changed_weights_file_is_refused(tmp_path):
    src = mindgrab_bundle().path
    dst = tmp_path / BUNDLE
    shutil.copytree(src, dst)
    data = bytearray((dst / "model.pt").read_bytes())
    data[-100] ^= 0xFF
    (dst / "model.pt").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch"):
        load_mindgrab(str(dst))


def test_port_output_shape_dtype_and_per_channel_normalisation():
    model = load_mindgrab()
    x = torch.rand(1, 1, 20, 22, 18)
    with torch.no_grad():
        y = model(x)
        h = torch.nn.functional.instance_norm(model.convs[0](x), eps=1e-5)
    assert y.shape == (1, 2, 20, 22, 18) and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    # brainchop's LayerNormInPlace: each channel has mean 0 and variance 1 over the volume
    assert torch.allclose(h.mean((2, 3, 4)), torch.zeros(1, 15), atol=1e-4)
    assert torch.allclose(h.var((2, 3, 4), unbiased=False), torch.ones(1, 15), atol=1e-2)


def test_conform_is_brainchops_256_cube_at_1mm_lia_in_uint8():
    a = np.full((30, 40, 50), 100.0, np.float32)
    a[:, :, 25:] = 1000.0
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((0.9, 0.8, 4.0))
    c = conform(img)
    assert c.GetSize() == (CONFORM_SIZE,) * 3 and c.GetSpacing() == (1.0, 1.0, 1.0)
    assert np.allclose(c.GetDirection(), LIA_DIRECTION)
    assert c.GetPixelID() == sitk.sitkUInt8
    centre_in = img.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in img.GetSize()])
    centre_out = c.TransformContinuousIndexToPhysicalPoint([(CONFORM_SIZE - 1) / 2] * 3)
    assert np.allclose(centre_in, centre_out, atol=1e-3)
    v = sitk.GetArrayViewFromImage(c)
    assert v.max() == 255 and v.min() == 0      # the minimum -> 0 (also outside the image), the top -> 255


def test_a_constant_or_non_finite_image_is_refused_in_one_line():
    model = load_mindgrab()
    flat = Volume(np.ones((20, 64, 64), np.float32), (1.0, 1.0, 1.0))
    with pytest.raises(InputError, match="constant"):
        mindgrab_brain_mask(flat, model)
    bad = np.zeros((20, 64, 64), np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="finite"):
        mindgrab_brain_mask(Volume(bad, (1.0, 1.0, 1.0)), model)


def test_check_warns_only_when_the_two_masks_disagree_grossly():
    a = np.zeros((40, 40, 40), np.uint8)
    a[5:35, 5:35, 5:35] = 1
    brain = Volume(a, (1.0, 1.0, 1.0))
    close = a.copy()
    close[5:7] = 0                                 # a slab less: Dice 0.97
    assert check_brain_mask(brain, brain.with_array(close)) is None
    far = np.zeros_like(a)
    far[20:40, 20:40, 20:40] = 1                   # a shifted box
    warning = check_brain_mask(brain, brain.with_array(far))
    assert warning is not None and "disagree" in warning and "\n" not in warning
    with pytest.raises(InputError, match="same grid"):
        check_brain_mask(brain, Volume(a, (2.0, 1.0, 1.0)))


@pytest.mark.slow
def test_real_raw_flair_gives_one_plausible_brain():
    path = RAW / "long_patient01_study1_FLAIR.nii.gz"
    if not path.is_file():
        pytest.skip(f"shared raw FLAIR data absent ({path})")
    flair = read_volume(path)
    mask = mindgrab_brain_mask(flair, load_mindgrab())
    assert mask.same_geometry(flair) and mask.array.dtype == np.uint8
    a = mask.array > 0
    litres = a.sum() * flair.voxel_volume_mm3() * 1e-6
    assert 1.0 <= litres <= 1.8
    lab, n = ndi.label(a)
    sizes = np.bincount(lab.ravel())[1:]
    assert sizes.max() >= 0.95 * a.sum()


@pytest.mark.slow   # ~60 s (two full MindGrab passes): the default suite's 20-minute budget
def test_bfloat16_option_keeps_the_label_and_its_output():
    """The bfloat16 path gives the float32 path's mask on a brain-sized blob image (144 mm across), on the image's
    grid."""
    z, y, x = np.mgrid[:24, :48, :48]
    a = 100.0 + 800.0 * (((z - 12) / 8.0) ** 2 + ((y - 24) / 18.0) ** 2 + ((x - 24) / 15.0) ** 2 < 1)
    img = Volume(a.astype(np.float32), (3.0, 3.0, 6.0))
    model = load_mindgrab()
    full = mindgrab_brain_mask(img, model)
    fast = mindgrab_brain_mask(img, model, bfloat16=True)
    assert fast.same_geometry(img) and fast.array.dtype == np.uint8
    f, b = full.array > 0, fast.array > 0
    assert f.any()
    assert 2 * (f & b).sum() / (f.sum() + b.sum()) > 0.98


def test_an_image_that_cannot_hold_a_head_is_refused_in_one_line_before_the_network(monkeypatch):
    """Issue 80, item 7: MindGrab called 94 % of an 8 x 8 x 8 noise cube brain."""
    model = load_mindgrab()
    ran = []
    monkeypatch.setattr("orbitai.neuro.mindgrab.conformed_mask", lambda *a, **k: ran.append(1))
    rng = np.random.default_rng(0)
    cube = Volume(rng.normal(100, 30, (8, 8, 8)).astype(np.float32), (1.0, 1.0, 1.0))
    with pytest.raises(InputError, match=r"No head to extract a brain from: the image covers only 8 x 8 x 8 mm") as err:
        mindgrab_brain_mask(cube, model)
    assert "\n" not in str(err.value)
    noise = Volume(rng.normal(100, 30, (64, 64, 64)).astype(np.float32), (2.5, 2.5, 2.5))     # head-sized noise
    with pytest.raises(InputError, match="No head to extract a brain from: .*as in noise") as err:
        mindgrab_brain_mask(noise, model)
    assert "\n" not in str(err.value) and not ran


@pytest.mark.parametrize("found, what", [("all", "100 % of the image"), ("speck", "holds 0 mL")])
def test_a_mask_that_is_no_brain_is_refused_in_one_line(monkeypatch, found, what):
    """What MindGrab found is checked: a mask filling the field of view, or a speck, is no brain."""
    def label(conformed, model, bfloat16=False):
        out = np.zeros((CONFORM_SIZE,) * 3, bool)
        if found == "all":
            out[:] = True
        else:
            out[128, 128, 128] = True
        return out

    monkeypatch.setattr("orbitai.neuro.mindgrab.conformed_mask", label)
    z, y, x = np.mgrid[:24, :48, :48]
    a = 100.0 + 800.0 * (((z - 12) / 8.0) ** 2 + ((y - 24) / 18.0) ** 2 + ((x - 24) / 15.0) ** 2 < 1)
    img = Volume(a.astype(np.float32), (3.0, 3.0, 6.0))
    with pytest.raises(InputError, match=f"No brain found: MindGrab's mask .*{what}") as err:
        mindgrab_brain_mask(img, None)
    assert "\n" not in str(err.value)
