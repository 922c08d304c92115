"""Downloading registry entries from a local HTTP server (`asset_server` in conftest.py): verified install, resume
after a truncated response, cancel of a stalled server within 1 s, wrong checksum, 404, no network, unsafe archives."""
from __future__ import annotations

import io
import socket
import tarfile
import threading
import time
from pathlib import Path

import pytest

from orbitai.bundle import registry
from orbitai.bundle.core import BUILTIN_DIR, load_bundle
from orbitai.bundle.download import DownloadCancelled, DownloadError, download_file
from orbitai.bundle.install import install_archive, install_entry
from orbitai.bundle.unpack import safe_extract
from orbitai.errors import BundleError
from orbitai.io.checksums import sha256_file

BUNDLE = "orbit_sequnet_ct_demo"     # a small network bundle (about 0.9 MB)


@pytest.fixture()
def user_models(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "user_models"
    monkeypatch.setenv("ORBITAI_USER_MODELS", str(folder))
    monkeypatch.delenv(registry.BASE_URL_ENV, raising=False)
    return folder


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> tuple[registry.Entry, bytes]:
    """The entry and archive bytes of a real bundle, made the way scripts/write_registry.py makes them."""
    out = tmp_path_factory.mktemp("archives")
    entry = registry.make_entry(BUILTIN_DIR / BUNDLE, "model", archive_dir=out)
    return entry, (out / entry.asset).read_bytes()


def _serve(asset_server, served):
    entry, data = served
    asset_server.files[entry.asset] = data
    return entry, f"{asset_server.url}/{entry.asset}"


def _installed(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []


def test_good_download_is_verified_and_installed(asset_server, served, user_models):
    entry, url = _serve(asset_server, served)
    seen = []
    folder = install_entry(entry, url=url, progress=lambda d, t, m: seen.append((d, t, m)))
    assert folder == user_models / BUNDLE
    bundle = load_bundle(folder)
    bundle.verify()
    assert registry.file_table(folder) == entry.files
    assert seen and seen[-1][0] == seen[-1][1] == entry.size     # progress in bytes of the archive
    assert _installed(user_models) == [BUNDLE]
    leftovers = [p for p in user_models.rglob("*") if p.name.endswith(".part") or p.name.startswith(".extract")]
    assert leftovers == [] and not (user_models / ".downloads" / entry.asset).exists()


def test_truncated_download_is_resumed_to_the_same_sha256(asset_server, served, tmp_path):
    entry, url = _serve(asset_server, served)
    asset_server.truncate = True
    dest = download_file(url, tmp_path / entry.asset, entry.sha256, entry.size)
    assert sha256_file(dest) == entry.sha256
    ranges = asset_server.ranges()
    assert len(ranges) == 1 and ranges[0] == f"bytes={len(served[1]) // 2}-", asset_server.requests


def test_a_part_left_by_an_interruption_is_resumed(asset_server, served, tmp_path):
    entry, url = _serve(asset_server, served)
    dest = tmp_path / entry.asset
    (tmp_path / (entry.asset + ".part")).write_bytes(served[1][:300_000])
    download_file(url, dest, entry.sha256, entry.size)
    assert sha256_file(dest) == entry.sha256
    assert asset_server.ranges() == ["bytes=300000-"]


def test_stalled_download_is_cancelled_within_one_second(asset_server, served, user_models):
    entry, url = _serve(asset_server, served)
    asset_server.stall = True
    cancel = threading.Event()

    def press_cancel() -> None:
        asset_server.stalled.wait(20)
        time.sleep(0.3)                        # the server has sent its first bytes and now sends nothing
        cancel.set()

    threading.Thread(target=press_cancel, daemon=True).start()
    with pytest.raises(DownloadCancelled, match="cancelled"):
        install_entry(entry, url=url, cancel=cancel)   # returns although the server never sends again (its
    assert asset_server.stall                            # stall is never lifted): the cancel, not the server, ended it
    assert _installed(user_models) == []       # nothing installed; the part is kept for a resume
    assert (user_models / ".downloads" / (entry.asset + ".part")).stat().st_size == 1000   # what came, kept


def test_wrong_checksum_is_refused_and_nothing_is_installed(asset_server, served, user_models):
    entry, url = _serve(asset_server, served)
    asset_server.wrong = True
    with pytest.raises(DownloadError) as err:
        install_entry(entry, url=url)
    msg = str(err.value)
    assert "\n" not in msg and "SHA-256" in msg and "nothing installed" in msg
    assert _installed(user_models) == []
    assert [p for p in user_models.rglob("*") if p.is_file()] == []   # the wrong file removed too


def test_404_is_one_line(asset_server, served, user_models):
    entry, url = _serve(asset_server, served)
    asset_server.missing = True
    with pytest.raises(DownloadError) as err:
        install_entry(entry, url=url)
    assert "\n" not in str(err.value) and "404" in str(err.value)
    assert _installed(user_models) == []


def test_no_network_is_one_line(served, user_models, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as s:                 # a port that was free and is closed: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entry = served[0]
    with pytest.raises(DownloadError) as err:
        install_entry(entry, url=f"http://127.0.0.1:{port}/{entry.asset}")
    msg = str(err.value)
    assert "\n" not in msg and "No network connection" in msg and "refused" in msg
    assert _installed(user_models) == []
    assert not (user_models / ".downloads").exists()       # nothing left behind


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _file(name: str) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), b"x"


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


@pytest.mark.parametrize("bad", [
    [_file("b/metadata.json"), _file("b/../../escaped.txt")],
    [_file("b/metadata.json"), _file("/tmp/orbitai_absolute_member.txt")],
    [_file("b/metadata.json"), _link("b/model.pt", "/etc/passwd", tarfile.SYMTYPE)],
    [_file("b/metadata.json"), _link("b/model.pt", "b/metadata.json", tarfile.LNKTYPE)],
], ids=["dotdot", "absolute", "symlink", "hardlink"])
def test_archive_with_unsafe_members_is_refused_before_anything_is_written(tmp_path, user_models, bad):
    archive = _tar(tmp_path / "bad.tar.gz", bad)
    into = tmp_path / "deep" / "into"
    into.mkdir(parents=True)
    with pytest.raises(BundleError, match="refused"):
        safe_extract(archive, into)
    assert list(into.iterdir()) == [] and not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/orbitai_absolute_member.txt").exists()
    with pytest.raises(BundleError):
        install_archive(archive)
    assert _installed(user_models) == []


def test_offline_install_from_a_downloaded_file_checks_the_registry_files(served, tmp_path, user_models):
    entry, data = served
    archive = tmp_path / entry.asset
    archive.write_bytes(data)
    folder = install_archive(archive, entry)
    assert registry.file_table(folder) == entry.files
    # a tampered archive (one byte of the weights changed, archive re-made) is refused against the entry's files
    bad = tmp_path / "tampered" / BUNDLE
    bad.parent.mkdir()
    import shutil

    shutil.copytree(folder, bad)
    raw = bytearray((bad / "model.pt").read_bytes())
    raw[-1] ^= 1
    (bad / "model.pt").write_bytes(bytes(raw))
    with open(tmp_path / "tampered.tar.gz", "wb") as f:
        registry.write_archive(bad, BUNDLE, f)
    with pytest.raises(BundleError, match="do not match the registry"):
        install_archive(tmp_path / "tampered.tar.gz", entry, sha256=sha256_file(tmp_path / "tampered.tar.gz"))
    assert registry.file_table(folder) == entry.files          # the installed copy was left as it was


def test_a_proxy_that_refuses_is_named_in_one_line(served, user_models, monkeypatch):
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{ports[0]}")
    entry = served[0]
    with pytest.raises(DownloadError) as err:
        install_entry(entry, url=f"http://127.0.0.1:{ports[1]}/{entry.asset}")
    msg = str(err.value)
    assert "\n" not in msg and f"proxy http://127.0.0.1:{ports[0]}" in msg
    assert _installed(user_models) == []


def test_a_full_disk_is_said_before_downloading(asset_server, served, user_models, monkeypatch):
    entry, url = _serve(asset_server, served)
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=entry.size // 2))
    with pytest.raises(DownloadError) as err:
        install_entry(entry, url=url)
    assert "\n" not in str(err.value) and "disk is full" in str(err.value)
    assert asset_server.requests == [] and _installed(user_models) == []


def test_a_folder_holding_a_link_is_not_installed(tmp_path, user_models):
    """Offline install from a folder: a link (here to a file outside it) is refused, whatever the registry says."""
    import shutil

    src = tmp_path / "src" / "my_model"
    shutil.copytree(BUILTIN_DIR / "ivgc_svm_demo", src)
    (tmp_path / "outside.txt").write_text("secret")
    (src / "notes.txt").symlink_to(tmp_path / "outside.txt")
    from orbitai.bundle.install import install_folder

    with pytest.raises(BundleError, match="link"):
        install_folder(src, "model")
    assert _installed(user_models) == []
