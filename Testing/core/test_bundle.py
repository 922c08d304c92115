"""orbitai.bundle: checksum before load, weights_only, clear errors naming the bundle."""
from __future__ import annotations

import json
import os

import pytest
import torch

from orbitai.bundle import BundleError, find_bundle, load_bundle, save_bundle
from orbitai.models import build_model

META = {"name": "unit_tiny", "version": "0.0.1", "task": "segmentation",
        "architecture": {"name": "tiny_conv3d", "args": {"width": 4}}}


@pytest.fixture
def bundle_dir(tmp_path):
    torch.manual_seed(0)
    model = build_model("tiny_conv3d", width=4)
    save_bundle(model, tmp_path / "unit_tiny", META)
    return tmp_path / "unit_tiny"


def test_save_and_load_gives_same_outputs(bundle_dir):
    torch.manual_seed(0)
    ref = build_model("tiny_conv3d", width=4).eval()
    model = load_bundle(bundle_dir).load_model()
    x = torch.randn(1, 1, 4, 5, 6)
    torch.testing.assert_close(model(x), ref(x))
    meta = json.loads((bundle_dir / "metadata.json").read_text())
    assert len(meta["weights_sha256"]) == 64


def test_find_by_name_on_search_path(bundle_dir, monkeypatch):
    monkeypatch.setenv("ORBITAI_MODEL_PATH", str(bundle_dir.parent))
    assert find_bundle("unit_tiny").path == bundle_dir
    with pytest.raises(BundleError, match="Available: .*unit_tiny"):
        find_bundle("no_such_model")


def test_checksum_mismatch_is_refused_before_unpickling(bundle_dir):
    data = bytearray((bundle_dir / "model.pt").read_bytes())
    data[-10] ^= 0xFF
    (bundle_dir / "model.pt").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="unit_tiny.*checksum mismatch"):
        load_bundle(bundle_dir).load_model()


def test_missing_weights_and_metadata(bundle_dir, tmp_path):
    os.remove(bundle_dir / "model.pt")
    with pytest.raises(BundleError, match="weights file model.pt is missing"):
        load_bundle(bundle_dir).load_model()
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nothing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metadata.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(tmp_path / "broken")
    (tmp_path / "broken" / "metadata.json").write_text('{"name": "x"}')
    with pytest.raises(BundleError, match="lacks required keys"):
        load_bundle(tmp_path / "broken")


def test_architecture_mismatch(bundle_dir):
    meta = json.loads((bundle_dir / "metadata.json").read_text())
    meta["architecture"]["args"]["width"] = 8
    (bundle_dir / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="do not fit architecture 'tiny_conv3d'"):
        load_bundle(bundle_dir).load_model()
    meta["architecture"]["name"] = "no_such_net"
    (bundle_dir / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="cannot build architecture"):
        load_bundle(bundle_dir).load_model()


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_with_code_is_refused(bundle_dir):
    from orbitai.bundle import sha256_file

    torch.save({"weight": Evil()}, bundle_dir / "model.pt")
    meta = json.loads((bundle_dir / "metadata.json").read_text())
    meta["weights_sha256"] = sha256_file(bundle_dir / "model.pt")  # checksum matches: only weights_only protects
    (bundle_dir / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="refused for safety"):
        load_bundle(bundle_dir).load_model()
