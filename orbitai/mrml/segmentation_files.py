"""A segmentation node's ``.seg.nrrd`` file, written as Slicer writes it (``vtkMRMLSegmentationStorageNode``), to a
path with no partial file left on failure or as bytes (a download)."""
from __future__ import annotations

import os
import tempfile

import slicer

from orbitai.errors import InputError

__all__ = ["save_segmentation_node", "segmentation_file_bytes"]


def save_segmentation_node(segmentation_node, path) -> None:
    """Write a segmentation node as Slicer writes it (``vtkMRMLSegmentationStorageNode``: a ``.seg.nrrd`` with its
    segments' names, colours and terminology), through a temporary file, so a failure leaves no partial file."""
    path = os.fspath(path)
    if not path.endswith(".seg.nrrd"):
        raise InputError(f"{path}: a segmentation is saved as a .seg.nrrd file.")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".seg.nrrd", dir=folder)
    os.close(fd)
    try:
        storage = slicer.vtkMRMLSegmentationStorageNode()
        storage.SetFileName(tmp)
        storage.SetUseCompression(True)
        if not storage.WriteData(segmentation_node):
            raise OSError(f"could not write the segmentation '{segmentation_node.GetName()}' to {path}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def segmentation_file_bytes(segmentation_node) -> bytes:
    """The ``.seg.nrrd`` file of a segmentation node (`save_segmentation_node`), as bytes (a download)."""
    with tempfile.TemporaryDirectory(prefix="orbitai-seg-") as tmp:
        path = os.path.join(tmp, "segmentation.seg.nrrd")
        save_segmentation_node(segmentation_node, path)
        with open(path, "rb") as f:
            return f.read()
