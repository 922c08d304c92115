"""Issue 80: the registry, its downloads and ``orbitai models install`` under hostile or broken input. A registry's
names are never paths; non-finite weights are refused where every task loads them; the user's own model is never
replaced unasked; a download ends whatever the server does (retries, per-read timeout, total time) and never takes
more than the registry's size; an archive's members are checked against the registry before anything is extracted;
each refusal is one line saying what to do. Servers are local (`asset_server` in conftest.py)."""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import tarfile
import threading
from pathlib import Path

import pytest
import torch

from orbitai.bundle import registry
from orbitai.bundle.core import BUILTIN_DIR, METADATA, WEIGHTS, load_bundle, save_bundle
from orbitai.bundle.download import DownloadError, DownloadLimits, download_file
from orbitai.bundle.install import install_entry
from orbitai.cli import main
from orbitai.cohort.manifest import Case
from orbitai.errors import BundleError
from orbitai.io.checksums import sha256_file

SMALL = "ivgc_svm_demo"            # scikit-learn and parameter files (12 kB archive)
NET = "orbit_sequnet_ct_demo"      # a small float16 segmentation network (about 0.4 MB archive)


@pytest.fixture()
def user_models(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "home" / ".orbitai" / "models"
    monkeypatch.setenv("ORBITAI_USER_MODELS", str(folder))
    monkeypatch.delenv(registry.BASE_URL_ENV, raising=False)
    return folder


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> tuple[registry.Entry, bytes]:
    out = tmp_path_factory.mktemp("archives")
    entry = registry.make_entry(BUILTIN_DIR / NET, "model", archive_dir=out)
    return entry, (out / entry.asset).read_bytes()


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0] and len(err[0]) < 600, err[0][:600]
    return err[0]


def bounded_download(url: str, dest: Path, entry: registry.Entry, **kw) -> BaseException:
    """``download_file`` on a thread with the `DownloadLimits` ``kw``: the error it ended with; a download still going
    after 20 s is cancelled and the test fails (the bug: it never ended)."""
    cancel, out = threading.Event(), {}

    def run() -> None:
        try:
            download_file(url, dest, entry.sha256, entry.size, cancel=cancel, limits=DownloadLimits(**kw))
            out["error"] = None
        except BaseException as exc:  # noqa: BLE001
            out["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive():
        cancel.set()
        worker.join(5)
        pytest.fail("the download did not end on its own")
    assert isinstance(out["error"], DownloadError), out["error"]
    assert "\n" not in str(out["error"])
    return out["error"]


# ---------------------------------------------------------------------------------- 2: a registry name is never a path

def test_a_registry_archive_name_with_dotdot_is_refused_before_any_write(asset_server, user_models, tmp_path,
                                                                         monkeypatch, capsys):
    victim = tmp_path / "home" / "victim.txt"          # beside ~/.orbitai, the user's own file
    victim.parent.mkdir(parents=True)
    victim.write_text("the user's file")
    data = b"not an archive" * 100
    asset_server.files["victim.txt"] = data
    written = json.loads(registry.REGISTRY_PATH.read_text())
    evil = dict(written["entries"][SMALL], asset="../../../victim.txt", sha256=hashlib.sha256(data).hexdigest(),
                size=len(data))
    written["entries"] = {"evil_model": evil}
    (tmp_path / "registry.json").write_text(json.dumps(written))
    monkeypatch.setattr(registry, "REGISTRY_PATH", tmp_path / "registry.json")
    monkeypatch.setenv(registry.BASE_URL_ENV, asset_server.url)
    assert main(["models", "install", "evil_model"]) == 2
    line = one_error_line(capsys)
    assert "archive name" in line and "not a plain name" in line, line
    assert victim.read_text() == "the user's file" and asset_server.requests == []
    assert not user_models.exists()
    entry = registry.Entry.from_json("evil_model", dict(evil, asset="evil_model-1.tar.gz"))
    for bad in (dataclasses.replace(entry, asset="../victim.txt"), dataclasses.replace(entry, name="../x")):
        with pytest.raises(BundleError, match="not a plain name"):   # an entry made in code is checked too
            install_entry(bad, url=f"{asset_server.url}/victim.txt")
    assert victim.read_text() == "the user's file" and asset_server.requests == []


# --------------------------------------------------------------------------------- 3: non-finite weights are refused

def _bundle_with(tmp_path: Path, value: float) -> Path:
    """A copy of the float16 bundle NET with one weight set to ``value``, its checksum rewritten to match."""
    folder = tmp_path / "bad" / NET
    shutil.copytree(BUILTIN_DIR / NET, folder)
    state = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
    name = next(k for k, v in state.items() if v.dtype == torch.float16 and v.numel() > 1)
    state[name].view(-1)[1] = value
    torch.save(state, folder / WEIGHTS)
    meta = json.loads((folder / METADATA).read_text())
    meta["weights_sha256"] = sha256_file(folder / WEIGHTS)
    (folder / METADATA).write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_float16_weights_are_refused_where_every_task_loads_them(tmp_path, value):
    from orbitai.orbit.models import SEG_MODELS

    folder = _bundle_with(tmp_path, value)
    load_bundle(folder).verify()                      # the checksum matches: only the values are wrong
    with pytest.raises(BundleError) as err:
        SEG_MODELS.load(str(folder))
    msg = str(err.value)
    assert "\n" not in msg and NET in msg and "NaN or infinite" in msg and "reinstall" in msg


def test_finetune_from_a_base_with_nan_weights_installs_nothing(tmp_path, user_models):
    from orbitai.orbit.finetune import Recipe, finetune

    folder = _bundle_with(tmp_path, float("nan"))
    case = Case("c1", tmp_path / "c1.nii.gz", tmp_path / "c1_seg.nii.gz", {})
    out = tmp_path / "mine"
    with pytest.raises(BundleError, match="NaN or infinite"):
        finetune([case], out, base=str(folder), recipe=Recipe(steps=2, folds=2, replay_share=0.0),
                 progress=lambda *a: None)
    assert not out.exists()
    model = torch.nn.Linear(2, 2)                     # a model that diverged is never written either
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    with pytest.raises(BundleError, match="NaN or infinite"):
        save_bundle(model, out, json.loads((BUILTIN_DIR / NET / METADATA).read_text()))
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".mine")] == []


# ---------------------------------------------------------------------------- 8: the user's own model is kept

def _archive_of(tmp_path: Path, name: str) -> Path:
    """An archive of the bundle SMALL renamed ``name`` (a model the registry does not know)."""
    src = tmp_path / "src" / name
    shutil.copytree(BUILTIN_DIR / SMALL, src)
    meta = json.loads((src / METADATA).read_text())
    meta["name"] = name
    (src / METADATA).write_text(json.dumps(meta))
    with open(tmp_path / f"{name}.tar.gz", "wb") as f:
        registry.write_archive(src, name, f)
    return tmp_path / f"{name}.tar.gz"


def test_models_install_never_replaces_the_users_own_model_unasked(tmp_path, user_models, capsys):
    mine = user_models / "my_model_ft"
    shutil.copytree(BUILTIN_DIR / NET, mine)          # the user's fine-tuned model, its folder name the archive's
    (mine / "notes.txt").write_text("my fine-tuning notes")
    archive = _archive_of(tmp_path, "my_model_ft")
    assert main(["models", "install", str(archive)]) == 2
    line = one_error_line(capsys)
    assert "--overwrite" in line and "orbitai models remove my_model_ft" in line and "nothing was replaced" in line
    assert (mine / "notes.txt").read_text() == "my fine-tuning notes"
    assert main(["models", "install", str(archive), "--overwrite"]) == 0      # asked for: replaced
    assert not (mine / "notes.txt").exists() and load_bundle(mine).name == "my_model_ft"
    entry = registry.registry_entry(SMALL)             # a copy the registry installed is replaced by a reinstall
    with open(tmp_path / entry.asset, "wb") as f:
        registry.write_archive(BUILTIN_DIR / SMALL, SMALL, f)
    assert main(["models", "install", str(tmp_path / entry.asset)]) == 0
    assert main(["models", "install", str(tmp_path / entry.asset)]) == 0
    assert registry.file_table(user_models / SMALL) == entry.files


# ------------------------------------------------------------------------------- 9, 10: a download always ends

def test_a_server_that_cuts_every_answer_short_and_ignores_range_is_given_up(asset_server, net, tmp_path):
    entry, data = net
    asset_server.files[entry.asset] = data
    asset_server.ignore_range, asset_server.cut = True, len(data) // 2
    err = bounded_download(f"{asset_server.url}/{entry.asset}", tmp_path / entry.asset, entry, stall_s=5,
                           retries=2)
    assert "keeps ending" in str(err) and len(asset_server.requests) <= 4, asset_server.requests


def test_a_server_that_sends_a_few_bytes_then_stalls_is_given_up(asset_server, net, tmp_path):
    entry, data = net
    asset_server.files[entry.asset] = data
    asset_server.stall = True                          # 1000 bytes a request, then nothing
    err = bounded_download(f"{asset_server.url}/{entry.asset}", tmp_path / entry.asset, entry, stall_s=0.3,
                           retries=2)
    assert "run again" in str(err) and len(asset_server.requests) <= 4, asset_server.requests


def test_a_huge_content_length_is_refused_at_once(asset_server, net, tmp_path):
    entry, data = net
    asset_server.files[entry.asset] = data
    asset_server.ignore_range, asset_server.cut, asset_server.length = True, 1000, 10 ** 12
    err = bounded_download(f"{asset_server.url}/{entry.asset}", tmp_path / entry.asset, entry, stall_s=5)
    assert "announces 1000.0 GB" in str(err) and len(asset_server.requests) == 1


def test_a_download_that_keeps_trickling_ends_at_its_total_time(asset_server, net, tmp_path):
    entry, data = net
    asset_server.files[entry.asset] = data
    asset_server.drip = (200, 0.02)                    # about 10 kB/s: 40 s for the archive, progress all along
    err = bounded_download(f"{asset_server.url}/{entry.asset}", tmp_path / entry.asset, entry, stall_s=5,
                           total_s=1.0)
    assert "did not finish within 1 s" in str(err), err


def test_a_download_stops_at_the_registry_size(asset_server, net, tmp_path):
    entry, data = net
    asset_server.files[entry.asset] = data
    asset_server.extra = b"\0" * (4 << 20)           # the file, then 4 MB more, no Content-Length
    err = bounded_download(f"{asset_server.url}/{entry.asset}", tmp_path / entry.asset, entry, stall_s=5)
    assert "sent more than the registry's" in str(err), err
    assert list(tmp_path.iterdir()) == []              # the part is removed, nothing kept


# ---------------------------------------------------------------- 11: an archive is checked before it is extracted

@pytest.mark.parametrize("member", ["extra", "bigger"])
def test_an_offline_archive_under_a_registry_name_is_checked_before_extracting(tmp_path, user_models, monkeypatch,
                                                                               capsys, member):
    entry = registry.registry_entry(SMALL)
    src = tmp_path / "src" / SMALL
    shutil.copytree(BUILTIN_DIR / SMALL, src)
    big = src / ("zeros.bin" if member == "extra" else "metadata.json")
    with open(big, "ab") as f:                        # 8 MB of zeros: a few kB compressed
        f.write(b"\0" * (8 << 20))
    archive = tmp_path / f"{SMALL}-1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname=SMALL)
    copied = []
    real = shutil.copyfileobj
    monkeypatch.setattr(shutil, "copyfileobj", lambda *a, **k: (copied.append(a), real(*a, **k))[1])
    assert main(["models", "install", str(archive)]) == 2
    line = one_error_line(capsys)
    assert "before extracting" in line and entry.name in line, line
    assert copied == [] and not (user_models / SMALL).exists()
    assert [p for p in user_models.rglob("*") if p.is_file()] == [] if user_models.exists() else True


# ----------------------------------------------------------------------------------------------------- wording

def test_install_of_the_current_folder_and_of_home_are_one_short_line(tmp_path, user_models, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("not a bundle")
    monkeypatch.chdir(work)
    assert main(["models", "install", "."]) == 2
    line = one_error_line(capsys)
    assert "not a model bundle" in line and "File exists" not in line, line
    home = tmp_path / "home"
    home.mkdir()
    for i in range(50):
        (home / f"a_rather_long_file_name_of_the_users_home_number_{i:03d}.txt").write_text("x")
        os.mkfifo(home / f"a_named_pipe_the_copy_cannot_read_{i:03d}")
    monkeypatch.setenv("HOME", str(home))
    assert main(["models", "install", "~"]) == 2
    line = one_error_line(capsys)
    assert "not a model bundle" in line and len(line) < 400, line
    assert not user_models.exists() or [p for p in user_models.iterdir() if not p.name.startswith(".")] == []


def test_an_offline_install_on_a_full_disk_says_so_without_a_download(tmp_path, user_models, monkeypatch, capsys):
    entry = registry.registry_entry(SMALL)
    with open(tmp_path / entry.asset, "wb") as f:
        registry.write_archive(BUILTIN_DIR / SMALL, SMALL, f)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", full)
    assert main(["models", "install", str(tmp_path / entry.asset)]) == 1
    line = one_error_line(capsys)
    assert "disk is full" in line and "nothing was installed" in line and "resume" not in line, line
    assert not (user_models / SMALL).exists()
    assert [p for p in user_models.iterdir() if p.name.startswith(".")] == []     # no temporary folder left
