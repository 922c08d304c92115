"""On-the-fly label-to-image synthesis (orbitai.orbit.synth) and the training options around it."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from orbitai.errors import InputError
from orbitai.labels import values_for
from orbitai.phantoms import atlas as A
from orbitai.orbit.configs import get_config
from orbitai.preprocess.resolution import thick_slices
from orbitai.orbit.synth import Building, Edge, PoolRecipe, SynthPool, _open_eyes, render
from orbitai.orbit.train import TrainRun, train

CFG = get_config("svnet-demo-mri")
SMALL = {"anatomies": 2, "seed": 777, "size": (96, 96, 48)}


@pytest.fixture(scope="module")
def pool():
    return SynthPool.build(CFG.spec, PoolRecipe(**SMALL))


def test_pool_is_deterministic_and_labels_match_the_tissue(pool):
    again = SynthPool.build(CFG.spec, PoolRecipe(**SMALL))
    for a, b in zip(pool.heads, again.heads):
        assert np.array_equal(a.tissue, b.tissue) and np.array_equal(a.classes, b.classes)
    h = pool.heads[0]
    assert h.tissue.shape == (48, 96, 96) and h.classes.max() == CFG.spec.n_classes
    # every class voxel is drawn from that structure's tissue codes (muscle codes 5..12 -> recti classes)
    assert set(np.unique(h.tissue[h.classes == 1])) <= {1, 2, A.LENS_L, A.LENS_R, A.SCLERA_L, A.SCLERA_R}
    assert set(np.unique(h.tissue[h.classes == 2])) <= {3, 4}


def _same_heads(a, b):
    assert len(a.heads) == len(b.heads)
    for x, y in zip(a.heads, b.heads):
        assert np.array_equal(x.tissue, y.tissue) and np.array_equal(x.classes, y.classes)
        assert list(x.where) == list(y.where) and all(np.array_equal(x.where[c], y.where[c]) for c in x.where)


def test_a_cached_pool_built_by_workers_is_the_pool_built_here(pool, tmp_path, monkeypatch):
    """Issue 77: heads built by worker processes into the cache, and read back from it, are the heads built in the
    process; a damaged cached head is rebuilt; other options or other phantom code never reuse a head."""
    from orbitai.orbit import synth

    built = SynthPool.build(CFG.spec, PoolRecipe(**SMALL), how=Building(tmp_path, 2))
    _same_heads(pool, built)
    files = sorted(tmp_path.glob("head_*.npz"))
    assert len(files) == 2
    calls = []
    real = synth._build_head
    monkeypatch.setattr(synth, "_build_head", lambda recipe, i: calls.append(i) or real(recipe, i))
    small = PoolRecipe(**SMALL)
    _same_heads(pool, SynthPool.build(CFG.spec, small, how=Building(tmp_path)))     # read back: nothing built
    assert calls == []
    files[1].write_bytes(files[1].read_bytes()[:-9] + b"corrupted")
    _same_heads(pool, SynthPool.build(CFG.spec, small, how=Building(tmp_path)))     # the damaged one rebuilt
    assert len(calls) == 1
    SynthPool.build(CFG.spec, replace(small, seed=778), how=Building(tmp_path))     # another recipe: its own heads
    monkeypatch.setattr(synth, "phantom_code_digest", lambda: "changed")
    SynthPool.build(CFG.spec, small, how=Building(tmp_path))                        # changed code: built anew
    assert sorted(calls[1:]) == [0, 0, 1, 1] and len(list(tmp_path.glob("head_*.npz"))) == 6


def test_sampled_patches_are_normalised_and_centred_on_every_structure(pool):
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(40):
        img, lab = pool.sample(rng, CFG.spec.patch_dhw, fg_prob=1.0)
        assert img.shape == lab.shape == tuple(CFG.spec.patch_dhw) and img.dtype == np.float32
        assert 0.0 <= img.min() and img.max() <= 1.0 and img.std() > 0.01
        seen |= set(np.unique(lab).tolist())
    assert seen == set(range(CFG.spec.n_classes + 1))     # the thin structures too, not only the eyeball


def test_render_draws_a_new_contrast_each_time(pool):
    t = pool.heads[0].tissue[:32, :96, :96]
    a, b = render(t, np.random.default_rng(1)), render(t, np.random.default_rng(2))
    eye = np.isin(t, [1, 2])
    assert abs(float(a[eye].mean() - b[eye].mean())) > 0.02 or abs(float(a[~eye].mean() - b[~eye].mean())) > 0.02


def test_thick_slices_average_across_the_slice_axis_only():
    rng = np.random.default_rng(0)
    img = np.zeros((40, 8, 8), np.float32)
    img[::2] = 1.0                                           # a 1-voxel stripe pattern along z
    out = thick_slices(img, rng, 5.0, 0)
    assert out.shape == img.shape
    assert out[5:35].std() < 0.2 * img.std()                 # 5-voxel slices wash the stripes out
    side = thick_slices(img, rng, 5.0, 2)                   # along x nothing varies: unchanged
    assert np.allclose(side, img, atol=1e-5)


def test_a_field_of_view_edge_ends_the_image_and_the_labels_and_dims_towards_it(pool):
    rng = np.random.default_rng(4)
    t = pool.heads[0].tissue[:32, :96, :96]
    edge = Edge(axis=1, side=0, index=30, falloff=20.0, floor=0.2)    # the front 30 rows are outside the scan
    img = render(t, rng, (0.8, 0.8, 0.8), edge)
    assert (img[:, :30] == 0).all() and img[:, 30:].std() > 0.01
    plain = render(t, np.random.default_rng(4), (0.8, 0.8, 0.8))
    # the same contrast without the edge (normalised anew): relatively dimmer just inside the edge,
    # the same image far from it
    assert img[:, 30:34].mean() / img[:, 60:].mean() < 0.7 * plain[:, 30:34].mean() / plain[:, 60:].mean()
    assert np.corrcoef(img[:, 60:].ravel(), plain[:, 60:].ravel())[0, 1] > 0.95
    cut = SynthPool(pool.heads, pool.spacing, pool.n_classes, fov_edge=1.0)
    for _ in range(10):                                           # sampled: no label where the image ends
        img, lab = cut.sample(rng, CFG.spec.patch_dhw, fg_prob=1.0)
        outside = img == 0
        rows = outside.all((0, 2)), outside.all((1, 2))
        assert rows[0].any() or rows[1].any()
        assert not lab[:, rows[0]].any() and not lab[rows[1]].any()


def test_a_coil_falloff_dims_towards_the_face_without_ending_the_scan(pool):
    """Issue 78 (real brain T2 and FLAIR: the front of each globe dim where the head coil's sensitivity falls):
    ``coil_falloff`` patches are dimmer in front, nothing in them is cut, and their labels are the head's."""
    rng = np.random.default_rng(4)
    t = pool.heads[0].tissue[:32, :96, :96]
    edge = Edge(axis=1, side=0, index=30, falloff=20.0, floor=0.2, cut=False)
    img = render(t, rng, (0.8, 0.8, 0.8), edge)
    plain = render(t, np.random.default_rng(4), (0.8, 0.8, 0.8))
    inside = t[:, :30] > 0                                               # the head in front of the ramp: still drawn
    assert inside.any() and (img[:, :30][inside] > 0).mean() > 0.9
    assert img[:, :30].mean() / img[:, 60:].mean() < 0.5 * plain[:, :30].mean() / plain[:, 60:].mean()
    dim = SynthPool(pool.heads, pool.spacing, pool.n_classes, coil_falloff=1.0)
    same = SynthPool(pool.heads, pool.spacing, pool.n_classes)
    for seed in range(6):
        _, lab = dim.sample(np.random.default_rng(seed), CFG.spec.patch_dhw, fg_prob=1.0)
        _, ref = same.sample(np.random.default_rng(seed), CFG.spec.patch_dhw, fg_prob=1.0)
        # the same window, nothing cut away (mirrored or not: the falloff's draws come before the mirror's)
        assert np.array_equal(lab, ref) or np.array_equal(lab, ref[..., ::-1])
    # a pool without it draws what it drew before (no random draw spent on the falloff)
    a, _ = same.sample(np.random.default_rng(9), CFG.spec.patch_dhw)
    b, _ = pool.sample(np.random.default_rng(9), CFG.spec.patch_dhw)
    assert np.array_equal(a, b)


def test_open_eyes_leaves_air_in_front_of_the_globe_only():
    labels = np.zeros((20, 40, 30), np.uint8)
    tissue = np.full(labels.shape, A.SOFT, np.uint8)
    left = values_for("eyeball")[0]
    labels[6:14, 15:25, 10:20] = left
    tissue[labels == left] = 1
    _open_eyes(tissue, labels, np.random.default_rng(0), 0.8)
    assert (tissue[8:12, :10, 13:17] == 0).all()            # in front of the globe, beyond the lid
    assert (tissue[8:12, 13:15, 13:17] == A.SOFT).all()      # the lid
    assert (tissue[:, 30:, :] == A.SOFT).all() and (tissue[labels == left] == 1).all()
    assert (tissue[:, :, :8] == A.SOFT).all()                # beside the globe: untouched


def test_synthetic_training_runs_without_a_manifest_and_records_its_data(tmp_path):
    cfg = replace(CFG, iters_per_epoch=1, batch_size=1, extra={"synth": SMALL, "manifest_share": 0.25})
    out = train([], replace(cfg, epochs=1), tmp_path / "b", init="orbit_svnet_dr_demo", progress=lambda *a: None)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["synthetic_heads"]["anatomies"] == 2
    assert meta["initialised_from"]["bundle"] == "orbit_svnet_dr_demo"


def test_init_from_another_architecture_and_no_cases_are_refused(tmp_path):
    cfg = replace(CFG, iters_per_epoch=1, batch_size=1, extra={"synth": SMALL})
    with pytest.raises(InputError, match="not the configuration's"):
        train([], replace(cfg, epochs=1), tmp_path / "b", init="orbit_sequnet_ct_demo")
    with pytest.raises(InputError, match="none were given"):
        train([], get_config("svnet-demo-ct", epochs=1), tmp_path / "c")
    assert not list(tmp_path.iterdir())                       # nothing written


def test_ted_heads_have_enlarged_recti_and_clinical_patches_thick_slices():
    """Issue #66: ``ted_share`` heads carry recti enlarged 1.5-3.5x; ``clinical_thick`` patches are rendered with
    3-5 mm slices (neighbouring slices within one thick slice nearly equal), the other patches mostly not."""
    from orbitai.orbit.synth import TED_SCALE

    plain = SynthPool.build(CFG.spec, PoolRecipe(**SMALL))
    ted = SynthPool.build(CFG.spec, PoolRecipe(**SMALL, ted_share=1.0, clinical_thick=1.0))
    recti = [3, 4, 5, 6]                                     # the recti's classes
    for a, b in zip(plain.heads, ted.heads):
        ratio = np.isin(b.classes, recti).sum() / max(1, np.isin(a.classes, recti).sum())
        assert TED_SCALE[0] * 0.6 < ratio < TED_SCALE[1] * 1.3
    assert np.mean([np.isin(b.classes, recti).sum() / np.isin(a.classes, recti).sum()
                    for a, b in zip(plain.heads, ted.heads)]) > 1.4

    tissue = np.random.default_rng(0).integers(0, 40, (32, 48, 48)).astype(np.uint8)   # detail along every axis

    def flatness(clinical: bool) -> list[float]:
        """Per render: the least neighbour-to-neighbour change along an axis over the most (low: thick slices)."""
        out = []
        for k in range(10):
            img = render(tissue, np.random.default_rng(k), clinical=clinical)
            d = [float(np.abs(np.diff(img, axis=ax)).mean()) for ax in range(3)]
            out.append(min(d) / max(d))
        return out

    clinical, default = flatness(True), flatness(False)
    assert max(clinical) < 0.5 and np.median(clinical) < 0.8 * np.median(default)
    rng = np.random.default_rng(3)
    img, lab = ted.sample(rng, CFG.spec.patch_dhw, fg_prob=1.0)
    assert img.shape == lab.shape == tuple(CFG.spec.patch_dhw)


def test_a_plain_sclera_is_drawn_like_the_vitreous_or_darker():
    """Issue #66 (globes 1.2x on 1 mm T1): ``plain_sclera`` patches draw the globe's outer layer like its vitreous
    or darker than it."""
    from orbitai.orbit.synth import PLAIN_SCLERA_LIKE_VITREOUS

    tissue = np.zeros((16, 32, 32), np.uint8)
    tissue[:, :, :16], tissue[:, :, 16:] = 1, A.SCLERA_L                  # vitreous | sclera, a wide block of each
    tissue[:, :2], tissue[:, -2:] = A.FAT, A.FAT

    def ratios(plain: bool) -> np.ndarray:
        out = []
        for k in range(40):
            img = render(tissue, np.random.default_rng(k), spacing=(0.8, 0.8, 0.8), plain_sclera=plain)
            out.append(np.median(img[4:-4, 8:-8, 20:28]) / max(np.median(img[4:-4, 8:-8, 4:12]), 1e-6))
        return np.array(out)

    plain, default = ratios(True), ratios(False)
    assert np.all(plain < 1.25)                                          # never brighter than the vitreous
    like = np.mean(np.abs(plain - 1) < 0.15)
    assert abs(like - PLAIN_SCLERA_LIKE_VITREOUS) < 0.3                   # both kinds are drawn
    assert np.mean(default > 1.25) > 0.2                                  # an unplain sclera is often brighter


def test_a_checkpoint_that_has_run_its_epochs_writes_its_bundle_without_building_the_pool(tmp_path, monkeypatch):
    """A synthetic-head training cut short keeps its checkpoint; asked again for the epochs it has run, it writes the
    bundle from that checkpoint at once: the head pool (minutes for 102 heads) is built only when epochs are left."""
    import orbitai.orbit.synth as synth

    cfg = replace(CFG, iters_per_epoch=1, batch_size=1, extra={"synth": SMALL, "manifest_share": 0.0})
    cut = train([], replace(cfg, epochs=3), tmp_path / "b", TrainRun(time_limit_s=1e-9), progress=lambda *a: None)
    assert json.loads((cut / "metadata.json").read_text())["training"]["epochs"] == 1     # cut short after epoch 1
    assert (tmp_path / ".b-training" / "checkpoint.pt").is_file()                         # kept for a rerun

    def no_pool(*a, **k):
        raise AssertionError("the pool was built")

    monkeypatch.setattr(synth.SynthPool, "build", no_pool)
    out = train([], replace(cfg, epochs=1), tmp_path / "b", progress=lambda *a: None)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["epochs"] == 1 and meta["training"]["synthetic_heads"]["anatomies"] == 2


def test_a_pool_build_stopped_leaves_no_worker_building(tmp_path):
    """A cancel while the heads are built by worker processes (here: the first head's progress report raises
    KeyboardInterrupt, as a SIGTERM does in the CLI) ends the workers; none goes on building the rest."""
    import psutil

    before = {p.pid for p in psutil.Process().children(recursive=True)}

    def stop(done, total, msg):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        SynthPool.build(CFG.spec, PoolRecipe(**{**SMALL, "anatomies": 4, "seed": 779}),
                        how=Building(tmp_path, 2, stop))
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE]
    assert left == []
