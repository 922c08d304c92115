"""orbitai.bundle: checksum before load, weights_only, a JSON schema per task, scikit-learn models
without pickle, built-in models as package data; clear errors naming the bundle."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from orbitai.bundle import BundleError, find_bundle, load_bundle, save_bundle
from orbitai.models import build_model

BUILTIN = Path(__file__).resolve().parents[2] / "orbitai" / "resources" / "models"

META = {"name": "unit_tiny", "version": "0.0.1", "task": "segmentation",
        "architecture": {"name": "tiny_conv3d", "args": {"width": 4}},
        "input": {"spacing": [1.0, 1.0, 1.0], "patch_dhw": [4, 8, 8], "structures": ["eyeball"]}}


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


# ----------------------------------------------------------------------------- schemas
def test_every_shipped_bundle_fits_its_schema_and_ships_as_package_data():
    import orbitai
    from orbitai.bundle import BUILTIN_DIR, iter_bundles, validate_metadata

    assert BUILTIN_DIR.is_relative_to(Path(orbitai.__file__).parent)   # inside the package: in the wheel
    found = sorted(BUILTIN_DIR.glob("*/metadata.json"))
    assert len(found) >= 6
    for meta in found:
        validate_metadata(json.loads(meta.read_text()), where=str(meta))
    tasks = {b.metadata["task"] for b in iter_bundles() if b.path.parent == BUILTIN_DIR}
    assert tasks == {"segmentation", "tao_activity", "ivgc_response", "neuro_differential", "lesion_segmentation",
                     "brain_extraction"}


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("input"), r"lacks required keys \['input'\]"),
    (lambda m: m["input"].update(spacing=[1.0, -1.0, 1.0]), "segmentation schema at input/spacing/1"),
    (lambda m: m["input"].update(patch_dhw=[4, 8]), "at input/patch_dhw"),
    (lambda m: m.update(task="weather"), "unknown task 'weather'"),
    (lambda m: m.update(weights_sha256="abc"), "at weights_sha256"),
    (lambda m: m.update(architecture="svnet"), "at architecture"),
])
def test_metadata_is_checked_against_its_task_schema_at_load(bundle_dir, change, message):
    meta = json.loads((bundle_dir / "metadata.json").read_text())
    change(meta)
    (bundle_dir / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=message) as info:
        load_bundle(bundle_dir)
    assert "\n" not in str(info.value)


def test_tao_schema_checks_the_input_block():
    import orbitai.tao  # noqa: F401 - the task registers its rule beyond the schema (the bundle layer imports no task)
    from orbitai.bundle import validate_metadata

    meta = json.loads((BUILTIN / "tao_network_b_demo" / "metadata.json").read_text())
    validate_metadata(meta)
    with pytest.raises(BundleError, match=r"cannot prepare: net_pixels 200 and crop_pixels 164"):
        validate_metadata({**meta, "input": {**meta["input"], "net_pixels": 200}})
    with pytest.raises(BundleError, match=r"lacks required keys \['input'\]"):
        validate_metadata({k: v for k, v in meta.items() if k != "input"})


def test_a_task_rule_runs_with_the_full_check_only_for_its_task(bundle_dir):
    from orbitai.bundle import schema

    seen, broken = [], []
    meta = json.loads((bundle_dir / "metadata.json").read_text())

    def rule(m):
        seen.append(m["task"])
        if broken:
            raise BundleError("broken rule")

    try:
        schema.register_rule(meta["task"], rule)
        schema.register_rule(meta["task"], rule)   # once only
        schema.validate_metadata(meta, full=False)
        assert seen == []
        schema.validate_metadata(meta, full=True)
        assert seen == [meta["task"]]
        broken.append(True)
        with pytest.raises(BundleError, match="broken rule"):
            schema.validate_metadata(meta, full=True)
    finally:
        schema._RULES[meta["task"]].remove(rule)
    with pytest.raises(BundleError, match="Unknown bundle task 'weather'"):
        schema.register_rule("weather", rule)


def test_saving_invalid_metadata_writes_nothing(tmp_path):
    with pytest.raises(BundleError, match="tao_activity schema at input: None is not of type 'object'"):
        save_bundle(build_model("tiny_conv3d", width=4), tmp_path / "bad", {**META, "input": None, "task": "tao_activity"})
    assert not (tmp_path / "bad").exists() and list(tmp_path.iterdir()) == []


def test_bundle_metadata_reads_without_torch():
    code = ("import sys; from orbitai.bundle import iter_bundles; n = len(list(iter_bundles())); "
            "assert 'torch' not in sys.modules, 'torch imported'; print(n)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) >= 6


# --------------------------------------------------------------- scikit-learn without pickle
def _fitted(kind: str):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 6))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    est = {"svm": SVC(C=2.0, kernel="rbf", random_state=0), "lr": LogisticRegression(C=0.5),
           "rf": RandomForestClassifier(n_estimators=7, max_depth=4, random_state=0)}[kind]
    return make_pipeline(StandardScaler(), est).fit(x, y), x


RADIOMICS = {"setting": {"binWidth": 25, "resampledPixelSpacing": [1, 1, 1]},
             "imageType": {"Original": {}, "Wavelet": {}}, "featureClass": {"glcm": [], "firstorder": []}}


def _ivgc_bundle(tmp_path, model):
    from orbitai.bundle import write_bundle
    from orbitai.bundle.formats import save_json, save_sklearn

    def write(tmp):
        return {"files": {"classifier": save_sklearn(model, tmp / "classifier.skops"),
                          "radiomics": save_json(RADIOMICS, tmp / "radiomics.json", "radiomics_params")}}

    return write_bundle(tmp_path / "ivgc_unit", {"name": "ivgc_unit", "version": "1", "task": "ivgc_response"}, write)


@pytest.mark.parametrize("kind", ["svm", "lr", "rf"])
def test_sklearn_pipeline_round_trip_without_pickle(tmp_path, kind):
    model, x = _fitted(kind)
    bundle = load_bundle(_ivgc_bundle(tmp_path, model).path)
    entry = bundle.metadata["files"]["classifier"]
    assert entry["format"] == "skops" and len(entry["sha256"]) == 64
    loaded = bundle.load_file("classifier")
    assert type(loaded[-1]) is type(model[-1])
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(loaded.decision_function(x) if kind == "svm" else loaded.predict_proba(x),
                               model.decision_function(x) if kind == "svm" else model.predict_proba(x))
    assert bundle.load_file("radiomics") == RADIOMICS
    with pytest.raises(BundleError, match="holds no network, only the files \\['classifier', 'radiomics'\\]"):
        bundle.load_model()


def test_info_lists_a_file_bundle(tmp_path, monkeypatch, capsys):
    from orbitai.cli import main

    _ivgc_bundle(tmp_path, _fitted("lr")[0])
    monkeypatch.setenv("ORBITAI_MODEL_PATH", str(tmp_path))
    assert main(["info", "--device", "cpu"]) == 0
    assert "ivgc_unit v1 [ivgc_response, classifier, radiomics]" in capsys.readouterr().out


def test_pickle_payload_is_refused_even_with_a_matching_checksum(tmp_path):
    import pickle

    from orbitai.bundle import sha256_file

    bundle = _ivgc_bundle(tmp_path, _fitted("lr")[0])
    path = bundle.path / "classifier.skops"
    path.write_bytes(pickle.dumps(Evil()))
    meta = json.loads((bundle.path / "metadata.json").read_text())
    meta["files"]["classifier"]["sha256"] = sha256_file(path)
    (bundle.path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="pickle or other format was refused"):
        load_bundle(bundle.path).load_file("classifier")


def test_sklearn_file_checks_checksum_first_and_refuses_untrusted_types(tmp_path):
    import skops.io as sio

    from orbitai.bundle import sha256_file
    from orbitai.bundle.formats import load_file

    bundle = _ivgc_bundle(tmp_path, _fitted("lr")[0])
    path = bundle.path / "classifier.skops"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch for classifier.skops"):
        load_bundle(bundle.path).load_file("classifier")
    sio.dump({"f": os.system}, path)   # a function that runs shell commands: never trusted
    with pytest.raises(BundleError, match=r"not trusted: \w+\.system"):
        load_file(bundle.path, {"path": path.name, "format": "skops", "sha256": sha256_file(path)})
    with pytest.raises(BundleError, match="has no 'svm' file"):
        load_bundle(bundle.path).load_file("svm")


def test_radiomics_parameter_file_is_checked(tmp_path):
    from orbitai.bundle.formats import save_json

    with pytest.raises(BundleError, match="unknown radiomics parameter sections"):
        save_json({"setting": {}, "features": {}}, tmp_path / "p.json", "radiomics_params")


def test_a_listing_checks_each_metadata_file_once_per_text(bundle_dir, monkeypatch):
    """Issue 81: the web app's panels list the models 18 times as it is built; each bundle's metadata is checked once,
    and again only when its text changes (even to one of the same size) or the check does (a rule registered); a new
    folder is listed and a broken one is not, at the next listing."""
    from orbitai.bundle import core, iter_bundles, schema

    monkeypatch.setenv("ORBITAI_MODEL_PATH", str(bundle_dir.parent))
    checked: list[str] = []
    real = core.validate_metadata
    monkeypatch.setattr(core, "validate_metadata", lambda meta, **kw: (checked.append(meta["name"]), real(meta, **kw)))

    def listed() -> list[str]:
        return [b.name for b in iter_bundles() if b.path.parent == bundle_dir.parent]

    assert listed() == ["unit_tiny"] and checked.count("unit_tiny") == 1
    first = next(b for b in iter_bundles() if b.name == "unit_tiny")
    first.metadata["version"] = "changed by a caller"          # each listing hands out a dict of its own
    assert listed() == ["unit_tiny"] and checked.count("unit_tiny") == 1
    assert next(b for b in iter_bundles() if b.name == "unit_tiny").metadata["version"] == META["version"]

    meta_file = bundle_dir / "metadata.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "version": "0.2.0"}))     # rewritten in place
    assert [b.metadata["version"] for b in iter_bundles() if b.name == "unit_tiny"] == ["0.2.0"]
    assert checked.count("unit_tiny") == 2

    rule_saw: list[str] = []
    try:
        schema.register_rule(meta["task"], lambda m: rule_saw.append(m["name"]))   # the check changed: again
        listed()
        assert checked.count("unit_tiny") == 3 and ("unit_tiny" in rule_saw or not schema.jsonschema_available())
    finally:
        schema._RULES[meta["task"]].pop()

    meta_file.write_text(json.dumps({k: v for k, v in meta.items() if k != "task"}))   # broken: left out
    assert listed() == []
    copy = bundle_dir.parent / "unit_tiny_copy"
    copy.mkdir()
    (copy / "metadata.json").write_text(json.dumps({**meta, "name": "unit_tiny_copy"}))  # a new folder: listed
    assert listed() == ["unit_tiny_copy"]
