"""Results in Slicer's DICOM world, exported by Slicer's own DICOM export (no second writer).

Each node a job adds is put beside its input volume in the subject hierarchy: under the input's DICOM study
when the input was loaded from DICOM, so that the study's "Export to DICOM..." offers them. A segmentation
also carries what Slicer's DICOM SEG export needs. That export is QuantitativeReporting's
``DICOMSegmentationPlugin`` (dcmqi's ``itkimage2segimage`` underneath); its requirements, as its source has
them (QIICR/QuantitativeReporting, ``DICOMPlugins/DICOMSegmentationPlugin.py`` at commit 52306eb):

* ``examineForExport`` offers a segmentation only when its subject hierarchy item has the attribute
  ``DICOM.ReferencedInstanceUIDs`` and each of those instances is in the DICOM database;
* the exporter finds the source images through the segmentation's reference-geometry node reference
  (``GetReferenceImageGeometryReferenceRole``) and that volume's ``DICOM.instanceUIDs`` attribute;
* each segment needs a terminology entry (category and type), and a segment that is not ``MANUAL`` needs the
  tags ``DICOM.SegmentAlgorithmType`` and ``DICOM.SegmentAlgorithmName``.

Slicer's DICOM browser sets ``DICOM.instanceUIDs`` on a volume it loads; a job's segmentation gets the rest
here. A volume that did not come from DICOM is left as it was: its results stay where the job put them."""
from __future__ import annotations

from typing import Any, Iterable

import slicer

__all__ = ["INSTANCE_UIDS", "REFERENCED_INSTANCE_UIDS", "ALGORITHM_TYPE_TAG", "ALGORITHM_NAME_TAG",
           "file_beside_input"]

#: Volume attribute set by Slicer's DICOM loading: the SOP instance UIDs of the volume's slices.
INSTANCE_UIDS = "DICOM.instanceUIDs"
#: Subject hierarchy item attribute (vtkMRMLSubjectHierarchyConstants::GetDICOMReferencedInstanceUIDsAttributeName).
REFERENCED_INSTANCE_UIDS = "DICOM.ReferencedInstanceUIDs"
ALGORITHM_TYPE_TAG = "DICOM.SegmentAlgorithmType"
ALGORITHM_NAME_TAG = "DICOM.SegmentAlgorithmName"


def subject_hierarchy(scene: Any) -> Any:
    """The scene's subject hierarchy node."""
    return slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)


def _item(sh: Any, node: Any, parent: int) -> int:
    """The node's subject hierarchy item, created under ``parent`` if it has none (the Slicer application's
    plugins create one on adding a node; a headless scene does not)."""
    item = sh.GetItemByDataNode(node)
    return item if item else sh.CreateItem(parent, node)


def file_beside_input(scene: Any, input_node: Any, nodes: Iterable[Any], model: str | None) -> list[Any]:
    """Put ``nodes`` (what a job added) under ``input_node``'s parent in the subject hierarchy, and make each
    segmentation among them exportable as DICOM SEG by Slicer (see the module's docstring): the reference
    geometry and its node reference from the input, the input's instance UIDs as its referenced instances, and
    each segment tagged ``AUTOMATIC`` by ``model``. Returns the nodes moved into a DICOM study (none when the
    input did not come from DICOM)."""
    sh = subject_hierarchy(scene)
    if sh is None:
        return []
    input_item = _item(sh, input_node, sh.GetSceneItemID())
    parent = sh.GetItemParent(input_item)
    from_dicom = bool(input_node.GetAttribute(INSTANCE_UIDS))
    if not from_dicom or not parent or parent == sh.GetSceneItemID():
        return []
    placed = []
    for node in nodes:
        if node is None or node is input_node or node.GetHideFromEditors() or not node.IsA("vtkMRMLStorableNode"):
            continue
        item = _item(sh, node, parent)
        sh.SetItemParent(item, parent)
        if node.IsA("vtkMRMLSegmentationNode"):
            _exportable_segmentation(sh, item, node, input_node, model)
        placed.append(node)
    return placed


def _exportable_segmentation(sh: Any, item: int, node: Any, input_node: Any, model: str | None) -> None:
    node.SetNodeReferenceID(node.GetReferenceImageGeometryReferenceRole(), input_node.GetID())
    sh.SetItemAttribute(item, REFERENCED_INSTANCE_UIDS, input_node.GetAttribute(INSTANCE_UIDS))
    segmentation = node.GetSegmentation()
    for i in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(i)
        segment.SetTag(ALGORITHM_TYPE_TAG, "AUTOMATIC")
        segment.SetTag(ALGORITHM_NAME_TAG, model or "OrbitAI")
