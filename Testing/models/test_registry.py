"""The model and data registry (orbitai/resources/registry.json): written from the tree, deterministic archives,
resolution order (user folder, local mirror, download only when asked), and the ``orbitai models`` command."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from orbitai.bundle import registry
from orbitai.bundle.core import BUILTIN_DIR, find_bundle, search_paths
from orbitai.bundle.install import find_model, resolve
from orbitai.cli import main
from orbitai.errors import BundleError

SMALL = "ivgc_svm_demo"          # a bundle of scikit-learn and parameter files (about 100 KB)
NET = "orbit_sequnet_ct_demo"    # a small network bundle


@pytest.fixture()
def user_models(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "home" / "models"
    monkeypatch.setenv("ORBITAI_USER_MODELS", str(folder))
    monkeypatch.delenv(registry.BASE_URL_ENV, raising=False)
    return folder


def test_registry_matches_the_bundles_and_data_sets_in_the_tree():
    """A retrained bundle or a changed data set without `python scripts/write_registry.py` fails here."""
    written = json.loads(registry.REGISTRY_PATH.read_text())
    entries = [registry.make_entry(folder, kind) for folder, kind in registry.tree_folders()]
    now = registry.registry_json(entries, written["repository"])
    assert sorted(now["entries"]) == sorted(written["entries"]), "entries added or removed: rewrite the registry"
    for name, entry in now["entries"].items():
        old = dict(written["entries"][name])
        assert entry["files"] == old["files"], f"{name}'s files changed: run python scripts/write_registry.py"
        if written["deflate"] != registry.zlib_family():     # another deflate writes other archive bytes
            entry = {k: v for k, v in entry.items() if k not in ("sha256", "size")}
            old = {k: v for k, v in old.items() if k not in ("sha256", "size")}
        assert entry == old, f"{name}'s entry differs: run python scripts/write_registry.py"
    assert {e.name for e in entries if e.kind == "model"} == {p.parent.name for p in BUILTIN_DIR.glob("*/metadata.json")}
    assert all(u.startswith(registry.REPOSITORY_URL + "/releases/download/") for e in entries for u in e.urls)
    assert [e.name for e in entries if e.kind == "data" and e.in_package] == ["ms_flair_lesjak", "spl_nac_atlas"]


def test_archives_are_deterministic(tmp_path):
    """The same files give the same archive bytes, whenever and wherever they were written (times, modes)."""
    copy = tmp_path / "copy" / SMALL
    shutil.copytree(BUILTIN_DIR / SMALL, copy)
    for i, f in enumerate(sorted(copy.iterdir())):
        os.utime(f, (time.time() - 1000 * i, time.time() - 1000 * i))
        f.chmod(0o600)
    first = registry.write_archive(BUILTIN_DIR / SMALL, SMALL)
    assert registry.write_archive(copy, SMALL) == first
    assert registry.registry_entry(SMALL).sha256 == first[1]
    (copy / "metadata.json").write_text((copy / "metadata.json").read_text() + " ")
    assert registry.write_archive(copy, SMALL)[1] != first[1]


def test_resolution_order_is_user_folder_then_mirror(user_models):
    assert registry.locate(NET) == ("mirror", BUILTIN_DIR / NET)
    shutil.copytree(BUILTIN_DIR / NET, user_models / NET)
    assert registry.locate(NET) == ("user", user_models / NET)
    assert find_bundle(NET).path == user_models / NET
    assert search_paths().index(user_models) < search_paths().index(BUILTIN_DIR)


def test_a_missing_entry_is_not_downloaded_unless_asked(user_models, monkeypatch, tmp_path):
    """A release tree (no package bundles): the name is found nowhere; without ``download`` the error says how to
    install it and nothing touches the network (a base URL on a closed port would fail differently)."""
    empty = tmp_path / "no_bundles"
    empty.mkdir()
    monkeypatch.setattr("orbitai.bundle.core.BUILTIN_DIR", empty)
    monkeypatch.setattr(registry, "BUILTIN_DIR", empty)
    monkeypatch.setenv(registry.BASE_URL_ENV, "http://127.0.0.1:9/never")
    with pytest.raises(BundleError, match="'orbitai models install NAME'"):
        find_bundle(NET)                                  # installed bundles only
    with pytest.raises(BundleError) as err:
        find_model(NET)
    msg = str(err.value)
    assert "\n" not in msg and f"orbitai models install {NET}" in msg
    assert registry.human_size(registry.registry_entry(NET).size) in msg
    with pytest.raises(BundleError, match="not installed"):
        resolve(NET)
    from orbitai.bundle.models import find_task_bundle

    with pytest.raises(BundleError, match=f"'orbitai models install {NET}' downloads it"):
        find_task_bundle(NET, "segmentation", "a segmentation model")   # what the task commands call
    assert not user_models.exists()


def test_a_release_tree_fetches_the_model_on_first_use_when_allowed(asset_server, user_models, monkeypatch, tmp_path):
    """No package bundles, an empty user folder: ``find_model(name, download=True)`` (a first use the user agreed to)
    downloads the registry's archive from the local server, checks it and installs it; the next use finds it."""
    empty = tmp_path / "no_bundles"
    empty.mkdir()
    monkeypatch.setattr("orbitai.bundle.core.BUILTIN_DIR", empty)
    monkeypatch.setattr(registry, "BUILTIN_DIR", empty)
    entry = registry.registry_entry(NET)
    made = registry.make_entry(BUILTIN_DIR / NET, "model", archive_dir=tmp_path / "assets")
    assert made.sha256 == entry.sha256, "the registry is stale: run python scripts/write_registry.py"
    asset_server.files[entry.asset] = (tmp_path / "assets" / entry.asset).read_bytes()
    monkeypatch.setenv(registry.BASE_URL_ENV, asset_server.url)
    bundle = find_model(NET, download=True)
    assert bundle.path == user_models / NET and len(asset_server.requests) == 1
    bundle.verify()
    assert find_model(NET, download=True).path == user_models / NET and len(asset_server.requests) == 1


def test_models_install_by_name_downloads_from_the_registry(asset_server, user_models, monkeypatch, tmp_path, capsys):
    """The bar's `orbitai models install NAME` from the local server (the registry's own entry and SHA-256), then
    `list` says where it is, `verify` checks it, `remove` removes it (and never a package bundle)."""
    entry = registry.registry_entry(NET)
    out = tmp_path / "assets"
    made = registry.make_entry(BUILTIN_DIR / NET, "model", archive_dir=out)
    assert made.sha256 == entry.sha256, "the registry is stale: run python scripts/write_registry.py"
    asset_server.files[entry.asset] = (out / entry.asset).read_bytes()
    monkeypatch.setenv(registry.BASE_URL_ENV, asset_server.url + "/assets")
    assert main(["models", "install", NET]) == 0
    printed = capsys.readouterr().out
    assert "PROGRESS" in printed and f"installed {NET}" in printed
    assert asset_server.requests[0][0] == f"/assets/{entry.asset}"
    assert registry.file_table(user_models / NET) == entry.files
    assert main(["models", "list"]) == 0
    rows = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()[1:]}
    assert rows[NET].endswith("user") and rows[SMALL].endswith("mirror")
    assert main(["models", "verify", NET]) == 0
    assert capsys.readouterr().out.startswith(f"OK     {NET} (user:")
    (user_models / NET / "model.pt").write_bytes(b"tampered")
    assert main(["models", "verify", NET]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "failed the check" in err[0]
    assert main(["models", "remove", NET]) == 0
    assert not (user_models / NET).exists() and (BUILTIN_DIR / NET / "metadata.json").is_file()
    assert main(["models", "remove", NET]) == 2            # only the package's copy is left: never removed
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "never deletes" in err[0]
    assert (BUILTIN_DIR / NET / "metadata.json").is_file()


def test_models_install_wrong_checksum_is_one_line_and_installs_nothing(asset_server, user_models, monkeypatch,
                                                                          capsys):
    entry = registry.registry_entry(SMALL)
    asset_server.files[entry.asset] = b"not the archive" * 100
    monkeypatch.setenv(registry.BASE_URL_ENV, asset_server.url)
    assert main(["models", "install", SMALL]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SHA-256" in err[0] and "nothing installed" in err[0], err
    assert not (user_models / SMALL).exists()


def test_models_install_from_a_file_a_folder_and_an_unknown_url(asset_server, user_models, tmp_path, capsys):
    entry = registry.registry_entry(SMALL)
    with open(tmp_path / entry.asset, "wb") as f:
        registry.write_archive(BUILTIN_DIR / SMALL, SMALL, f)
    assert main(["models", "install", str(tmp_path / entry.asset)]) == 0          # offline, from a file
    assert registry.file_table(user_models / SMALL) == entry.files
    shutil.rmtree(user_models / SMALL)
    assert main(["models", "install", str(BUILTIN_DIR / SMALL)]) == 0             # offline, from a folder
    assert registry.file_table(user_models / SMALL) == entry.files
    capsys.readouterr()
    # a URL whose file the registry does not know: refused before any download, unless --sha256 is given
    data = (tmp_path / entry.asset).read_bytes()
    asset_server.files["my_bundle.tar.gz"] = data
    url = f"{asset_server.url}/my_bundle.tar.gz"
    assert main(["models", "install", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--sha256" in err[0] and asset_server.requests == []
    from orbitai.io.checksums import sha256_file

    assert main(["models", "install", url, "--sha256", sha256_file(tmp_path / entry.asset)]) == 0
    assert registry.file_table(user_models / SMALL) == entry.files


def test_data_sets_resolve_from_the_user_folder_then_the_package(user_models, monkeypatch, tmp_path):
    """Training data sets are registry entries too: an installed copy in the user's data folder is read first, the
    package's otherwise, and one found nowhere (a release tree) is a one-line error naming its install."""
    from orbitai.phantoms.atlas import data_path
    from orbitai.phantoms.heads import template_path

    name = "ms_lesion_masks_lesjak"
    assert data_path(name, "patient01_lesionmask_MNI.nii.gz") == registry.DATA_DIR / name / "patient01_lesionmask_MNI.nii.gz"
    assert template_path(3) == registry.DATA_DIR / "synthseg_label_maps" / "training_seg_03.nii.gz"
    shutil.copytree(registry.DATA_DIR / name, user_models.parent / "data" / name)
    assert data_path(name, "patient01_lesionmask_MNI.nii.gz") == user_models.parent / "data" / name / \
        "patient01_lesionmask_MNI.nii.gz"
    assert registry.locate(name) == ("user", user_models.parent / "data" / name)
    monkeypatch.setattr(registry, "DATA_DIR", tmp_path / "no_data")
    with pytest.raises(BundleError) as err:
        template_path(3)
    assert "\n" not in str(err.value) and "'orbitai models install synthseg_label_maps'" in str(err.value)


def test_ctrl_c_during_a_stalled_install_cancels_it(asset_server, tmp_path):
    """`orbitai models install NAME` from a server that stopped sending: Ctrl-C ends it at once (exit 130, one line),
    nothing installed, the part kept for the next try's resume."""
    import signal
    import subprocess
    import sys

    entry = registry.registry_entry(SMALL)
    with open(tmp_path / entry.asset, "wb") as f:
        registry.write_archive(BUILTIN_DIR / SMALL, SMALL, f)
    asset_server.files[entry.asset] = (tmp_path / entry.asset).read_bytes()
    asset_server.stall = True
    users = tmp_path / "users" / "models"
    env = {**os.environ, "ORBITAI_USER_MODELS": str(users), registry.BASE_URL_ENV: asset_server.url}
    # Ctrl-C as in a terminal: a test run started in the background inherits SIGINT ignored, which the command would
    # keep (Python raises no KeyboardInterrupt then); it gets the default back
    proc = subprocess.Popen([sys.executable, "-m", "orbitai", "models", "install", SMALL], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert asset_server.stalled.wait(120), "the download never started"
        part = users / ".downloads" / (entry.asset + ".part")
        for _ in range(200):            # the first bytes written before the cancel
            if part.is_file() and part.stat().st_size:
                break
            time.sleep(0.05)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["orbitai models install: cancelled"]
    assert took < 5.0, f"the cancel took {took:.1f} s"      # the bar is 1 s for the download; this adds the exit
    assert not (users / SMALL).exists() and part.stat().st_size == 1000


@pytest.mark.parametrize("name", ["..", "../x", "/", ".", "", "a/b"])
def test_remove_and_verify_take_a_name_never_a_path(user_models, tmp_path, capsys, name):
    """A name is data, never a path: ``remove ..`` once named the user folder's parent (moved aside and deleted)."""
    keep = user_models / "kept_model"
    keep.mkdir(parents=True)
    (keep / "metadata.json").write_text("{}")
    (tmp_path / "beside.txt").write_text("the user's file")
    for action in ("remove", "verify"):
        assert main(["models", action, name]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "not a model or data-set name" in err[0], err
    assert (keep / "metadata.json").is_file() and (tmp_path / "beside.txt").read_text() == "the user's file"


def test_install_of_an_empty_name_is_one_line(user_models, capsys):
    assert main(["models", "install", " "]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No model given" in err[0], err
    assert not user_models.exists() or not any(user_models.iterdir())
