"""The shared trainer's checkpoint (TAO, IVGC and Neuro training) is checksummed (issue #14): a
corrupt, truncated or unchecked checkpoint, one holding a pickle payload, or one of another model
is named in one warning and training starts over, ending with exactly the weights of a clean run."""
from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
import torch

import orbitai.tao  # noqa: F401  (registers the TAO networks these tests train)
from orbitai.classify.train import TrainSettings, train_classifier
from orbitai.models import build_model
from orbitai.testing.damage import PWNED, drop_checksum, flip_bytes, pickle_payload_with_valid_checksum, truncate
from orbitai.training.checkpoint import load_arrays, save_arrays, sidecar

SETTINGS = TrainSettings(epochs=3, lr=1e-3, lr_after=1e-4, decay_epoch=2, batch_size=8)


def _data(n=16):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    x = rng.normal(0, 1, (n, 5, 32, 32)).astype(np.float32)
    x[y == 1, :, 8:16, 8:16] += 3.0
    return x, y


def _model(width=4):
    torch.manual_seed(0)
    return build_model("tao_network_b", base_channels=width, dropout=0.1)


def _train(workdir, epochs, model=None):
    model = model or _model()
    train_classifier(model, *_data(), TrainSettings(**{**SETTINGS.__dict__, "epochs": epochs}), workdir, seed=3)
    return model


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The weights of an uninterrupted run."""
    return _train(tmp_path_factory.mktemp("clean"), SETTINGS.epochs).state_dict()


@pytest.mark.parametrize("damage, reason", [
    (flip_bytes, "checksum mismatch"),
    (truncate, "checksum mismatch"),
    (drop_checksum, "no checksum in checkpoint.pt.sha256"),
    (pickle_payload_with_valid_checksum, "it holds pickled Python objects, which are never loaded"),
])
def test_damaged_checkpoint_is_named_and_training_starts_over(tmp_path, caplog, clean, damage, reason):
    _train(tmp_path, 2)
    ckpt = tmp_path / "checkpoint.pt"
    damage(ckpt)
    with caplog.at_level(logging.WARNING, logger="orbitai.training.checkpoint"):
        model = _train(tmp_path, SETTINGS.epochs)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith(f"checkpoint {ckpt} is corrupt ({reason}") and warnings[0].endswith("starting over.")
    assert not (tmp_path / PWNED).exists()            # the pickle payload never ran
    for (k, a), b in zip(clean.items(), model.state_dict().values()):   # nothing of the damaged file is left
        assert torch.equal(a, b), k
    assert [int(r["epoch"]) for r in csv.DictReader((tmp_path / "epochs.csv").open())] == [0, 1, 2]
    assert sidecar(ckpt).exists()    # the new checkpoint is checked again on the next resume


def test_checkpoint_of_another_model_is_not_half_loaded(tmp_path, caplog, clean):
    _train(tmp_path, 2, _model(width=8))
    with caplog.at_level(logging.WARNING, logger="orbitai.training.checkpoint"):
        model = _train(tmp_path, SETTINGS.epochs)
    assert "does not fit this training" in caplog.text and "starting over" in caplog.text
    for (k, a), b in zip(clean.items(), model.state_dict().values()):
        assert torch.equal(a, b), k


def test_array_cache_round_trip_refuses_objects(tmp_path):
    arrays = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array(["a", "b"])}
    save_arrays(tmp_path / "c.npz", arrays)
    back = load_arrays(tmp_path / "c.npz")
    assert back is not None and all(np.array_equal(back[k], v) for k, v in arrays.items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz", "c.npz.sha256"]    # no temporary file left
    with pytest.raises(TypeError, match="holds Python objects"):
        save_arrays(tmp_path / "d.npz", {"o": np.array([{}], dtype=object)})
    assert load_arrays(tmp_path / "missing.npz") is None


def test_cached_arrays_can_be_memory_mapped_from_the_verified_file(tmp_path):
    """``load_arrays(mmap=True)`` (the lesion training's 432 phantoms: 9.5 GB read in, killed by the system once): large
    arrays come back as read-only maps equal to the arrays read in, small ones read in; a corrupted file is refused
    before anything is mapped."""
    import numpy as np

    from orbitai.training.checkpoint import load_arrays, save_arrays

    rng = np.random.default_rng(0)
    arrays = {"ratio": rng.random((40, 120, 130)).astype(np.float16), "label": (rng.random((80, 120, 130)) > 0.9)
              .astype(np.uint8), "fortran": np.asfortranarray(rng.random((300, 600))), "mad": np.float32(0.1),
              "disease": np.array("real")}
    path = tmp_path / "case.npz"
    save_arrays(path, arrays)
    mapped, read = load_arrays(path, mmap=True), load_arrays(path)
    assert mapped is not None and read is not None
    for name, a in arrays.items():
        assert np.array_equal(np.asarray(mapped[name]), a) and mapped[name].dtype == a.dtype
    assert all(isinstance(mapped[k], np.memmap) for k in ("ratio", "label", "fortran"))
    assert not isinstance(mapped["mad"], np.memmap) and not mapped["ratio"].flags.writeable
    data = bytearray(path.read_bytes())
    data[-200] ^= 0xFF
    path.write_bytes(bytes(data))
    assert load_arrays(path, mmap=True) is None
