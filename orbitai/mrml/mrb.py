"""Save and load Slicer scene bundles (``.mrb``) with ``WriteToMRB`` / ``ReadFromMRB``.

``slicer.util.saveScene``/``loadScene`` need the application; these scene methods do not, so the
same code runs in Slicer and headless. Writes are atomic (temporary file, then rename).
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Optional

import slicer

from orbitai.errors import InputError, one_line
from orbitai.io.dicom_folder import shown
from orbitai.mrml.results import watch_imports
from orbitai.mrml.scene import MRMLContext, new_scene

__all__ = ["save_mrb", "load_mrb", "SceneError"]


class SceneError(InputError, OSError):
    """A scene bundle that cannot be loaded (not a zip, no scene in it, a scene Slicer cannot parse or whose data
    files fail to read): one line. Also an `OSError`, as it was before it had its own class."""


#: The most a bundle's files may add up to, unpacked (what its zip directory declares): far above any scene of a few
#: scans, far below what fills a disk from a small file.
MAX_UNPACKED_BYTES = 64 * 1024 ** 3


def check_bundle(p: Path) -> None:
    """Refuse (`SceneError`, one line) a file that is not a scene bundle before Slicer unpacks it: not a zip, no
    ``.mrml`` scene in it, a member named outside the bundle's folder (absolute, ``..``, a drive) or a link, or more
    than :data:`MAX_UNPACKED_BYTES` unpacked. Slicer's unpacker (``vtkArchive``) takes member names as paths, and each
    failed ``ReadFromMRB`` keeps about 90 kB (measured, Slicer 5.x headless), so the checks run here, on the zip's
    directory alone, with Python's own reader."""
    what = f"{p} is not a scene bundle"
    try:
        with zipfile.ZipFile(p) as z:
            members = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise SceneError(f"{what}: a .mrb is a zip archive and this file is not one. Save the scene again from "
                         "Slicer (File > Save, as a Medical Reality Bundle).") from None
    total = 0
    for m in members:
        name = m.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
            raise SceneError(f"{what} that can be opened safely: it holds a file named outside its folder "
                             f"({shown(m.filename, limit=200)}). Open only bundles you trust.")
        if stat.S_ISLNK(m.external_attr >> 16):
            raise SceneError(f"{what} that can be opened safely: it holds a link "
                             f"({shown(m.filename, limit=200)}). Open only bundles you trust.")
        total += m.file_size
    if total > MAX_UNPACKED_BYTES:
        raise SceneError(f"{what} that can be opened here: its files add up to {total / 1024 ** 3:.0f} GiB unpacked "
                         f"(at most {MAX_UNPACKED_BYTES // 1024 ** 3} GiB).")
    if not any(m.filename.lower().endswith(".mrml") for m in members):
        raise SceneError(f"{what}: it holds no .mrml scene. Save the scene again from Slicer (File > Save, as a "
                         "Medical Reality Bundle).")


def _messages(collection) -> str:
    if collection is None:
        return ""
    try:
        return collection.GetAllMessagesAsString().strip()
    except AttributeError:  # older Slicer
        return ""


def save_mrb(ctx: MRMLContext, path: str | os.PathLike) -> Path:
    """Write the whole scene to ``path`` (``.mrb``) atomically; returns the path."""
    p = Path(path)
    if p.suffix.lower() != ".mrb":
        raise InputError(f"A scene bundle file must end in .mrb, got {p.name!r}.")
    p.parent.mkdir(parents=True, exist_ok=True)
    # The bundle's inner folder is named after the file, so write <parent>/.tmp-*/<name>.mrb
    # and move it into place.
    tmp_dir = tempfile.mkdtemp(prefix=".tmp-", dir=p.parent)
    tmp = os.path.join(tmp_dir, p.name)
    messages = slicer.vtkMRMLMessageCollection() if hasattr(slicer, "vtkMRMLMessageCollection") else None
    # WriteToMRB points the scene URL / root directory at a temporary folder; restore them.
    url, root, cwd = ctx.scene.GetURL(), ctx.scene.GetRootDirectory(), os.getcwd()
    try:
        ok = ctx.scene.WriteToMRB(tmp, None, messages) if messages is not None else ctx.scene.WriteToMRB(tmp)
        if not ok or not os.path.exists(tmp):
            raise OSError(f"Saving the scene to {p} failed. {_messages(messages)}".strip())
        os.replace(tmp, p)
    finally:
        os.chdir(cwd)   # the MRML writer may change into its temporary folder
        ctx.scene.SetURL(url)
        ctx.scene.SetRootDirectory(root)
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return p


def load_mrb(path: str | os.PathLike, ctx: Optional[MRMLContext] = None, clear: bool = True) -> MRMLContext:
    """Load a ``.mrb`` into ``ctx`` (a fresh headless scene when None); returns the context.

    ``clear=False`` adds the bundle's nodes to the existing scene (Slicer's Add Data and ``slicer.util.loadScene``
    call the same ``vtkMRMLScene::ReadFromMRB``). Inside Slicer, ``ctx=None`` is the application's scene, which is
    then replaced (like File > Load Scene). Node references (results and finished marks, `orbitai.mrml.results`) are
    renumbered with their nodes; old ID links of the bundle become references while it loads (`watch_imports`).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No such scene bundle: {p}")
    check_bundle(p)
    ctx = ctx or new_scene()
    watch_imports(ctx.scene)
    messages = slicer.vtkMRMLMessageCollection() if hasattr(slicer, "vtkMRMLMessageCollection") else None
    # ReadFromMRB changes into its temporary folder and, on a bad file, deletes it without changing
    # back: every later child process would then start in a folder that no longer exists.
    cwd = os.getcwd()
    try:
        ok = (ctx.scene.ReadFromMRB(str(p.resolve()), clear, messages) if messages is not None
              else ctx.scene.ReadFromMRB(str(p.resolve()), clear))
    finally:
        os.chdir(cwd)
    if not ok:
        text = _messages(messages)                     # one message a line: joined, and cut (a scene of many nodes)
        found = one_line(Exception(text))[:400] if text else "not a valid .mrb file"
        raise SceneError(f"Could not load the scene bundle {p}: {found}")
    return ctx
