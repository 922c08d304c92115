"""Which scan a result belongs to, and how a viewer shows one scan's results.

Every node a module's job adds (`orbitai.mrml.jobs.JobLogic.loadResults`) and every segmentation loaded or drawn on a
scan refers to that scan by an MRML node reference (role `RESULT_OF`); a segmentation marked finished for fine-tuning
refers to its scan by the role `FINISHED_SCAN`. Slicer keeps node references through save, load, Add Data and scene
merges (an imported scene's IDs are renumbered and its references with them: ``vtkMRMLScene::Import`` calls
``UpdateNodeReferences``), which an ID kept in a plain attribute is not. `scan_of` reads the reference; `belongs_to`
and `refuse_other_scan` are the one test every module and front end applies before using a node with a scan, and
`segmentations_of` lists the segmentations a scan's option lists may offer.

Scenes saved before the references hold the scan's ID in attributes (`LEGACY_LINKS`). After a merge such an ID may
name another node (the bug of issue #61), so it is never read as a link: `adopt_legacy_links` converts it while the
scene is imported, when the scene still knows which IDs it renumbered (``vtkMRMLScene::GetChangedID``) and which nodes
the import added, and drops it when it cannot be mapped onto a node of the same import. `watch_imports` makes every
import of a scene do so (`orbitai.mrml.scene` watches each scene it makes or adopts; `orbitai.mrml.mrb.load_mrb` too).
A node whose old attribute was never converted (its scene was loaded before OrbitAI watched it) belongs to no scan
that can be checked and is refused by every module until the scene is loaded again.

A viewer that shows one scan at a time (the browser app) shows that scan's segmentations and heat map with it and
hides every other scan's (`show_results_of`); Slicer's own views leave this to the user (the Data module). The
viewer's other helpers (the point a result is best seen at, the segment list, window/level, the probe, rulers) are in
`orbitai.mrml.viewer`.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from orbitai.errors import InputError
from orbitai.mrml.queries import nodes_of_class

__all__ = ["RESULT_OF", "RESULT_OF_NAME", "FINISHED_SCAN", "LEGACY_LINKS", "mark_results", "scan_of", "belongs_to",
           "is_result", "refuse_other_scan", "segmentations_of", "adopt_legacy_links", "watch_imports", "results_of",
           "show_results_of"]

#: Node-reference role: the scan (volume node) the node is a result of.
RESULT_OF = "OrbitAI.ResultOf"
#: Node attribute set with `RESULT_OF`: the scan's name when it was marked. A node that has it but no reference lost
#: its scan (removed from the scene, or not saved with it): it belongs to no other scan either.
RESULT_OF_NAME = "OrbitAI.ResultOfName"
#: The `RESULT_OF_NAME` of a node whose old ID link named no scan of its scene (`adopt_legacy_links`).
_LOST = "?"
#: Node-reference role: the scan a segmentation marked finished (a corrected ground truth) is the ground truth of.
FINISHED_SCAN = "OrbitAI.FinishedScan"
#: Attributes of scenes saved before the references (the scan's node ID as text) -> the reference role each becomes
#: (`adopt_legacy_links`): the result mark, the three modules' input attributes and the finished mark.
LEGACY_LINKS = {RESULT_OF: RESULT_OF, "OrbitAI.TAO.InputVolume": RESULT_OF, "OrbitAI.IVGC.InputVolume": RESULT_OF,
                "OrbitAI.Neuro.InputVolume": RESULT_OF, FINISHED_SCAN: FINISHED_SCAN}
#: Node attribute: "1" while the node is hidden because another scan is shown (shown again with its scan; a node its
#: module or the user hid stays hidden).
HIDDEN_WITH_SCAN = "OrbitAI.HiddenWithScan"


def mark_results(nodes: Iterable[Any], input_node: Any) -> None:
    """Make ``nodes`` refer to ``input_node`` as the scan they are results of (nothing for no input)."""
    if input_node is None:
        return
    for node in nodes:
        if node is not None and node is not input_node and hasattr(node, "SetNodeReferenceID"):
            node.SetNodeReferenceID(RESULT_OF, input_node.GetID())
            node.SetAttribute(RESULT_OF_NAME, input_node.GetName() or input_node.GetID())
            for attr, role in LEGACY_LINKS.items():
                if role == RESULT_OF and node.GetAttribute(attr) is not None:
                    node.RemoveAttribute(attr)


def scan_of(node: Any) -> Any:
    """The scan ``node`` is a result of (its `RESULT_OF` reference), or None when it has none (it belongs to no scan,
    its scan left the scene, or its link is an old ID attribute that was never converted: see `belongs_to`)."""
    if node is None or not hasattr(node, "GetNodeReference"):
        return None
    return node.GetNodeReference(RESULT_OF)


def _unconverted(node: Any) -> bool:
    """Whether ``node`` holds an old ID attribute of its scan (`LEGACY_LINKS`) that was not converted on load."""
    return any(node.GetAttribute(attr) for attr, role in LEGACY_LINKS.items() if role == RESULT_OF)


def _has_owner(node: Any) -> bool:
    return bool(node is not None and (node.GetNodeReferenceID(RESULT_OF) or node.GetAttribute(RESULT_OF_NAME)
                                      or _unconverted(node)))


def is_result(node: Any) -> bool:
    """True when ``node`` is a result of some scan (linked to it, or to one that left the scene), e.g. a heat map that
    is no input volume of its own."""
    return _has_owner(node)


def belongs_to(node: Any, scan: Any) -> bool:
    """True when ``node`` is a result of ``scan`` or of no scan at all (a segmentation the user loaded as it is);
    False for another scan's, one whose scan left the scene, and one whose old ID link was never converted."""
    owner = scan_of(node)
    if owner is None:
        return not _has_owner(node)
    return scan is not None and owner.GetID() == scan.GetID()


def _scan_name(scan: Any) -> str:
    return f"'{scan.GetName() or scan.GetID()}'"


def refuse_other_scan(node: Any, scan: Any, what: str = "segmentation") -> None:
    """Raise `InputError` in one line when ``node`` is not ``scan``'s (`belongs_to`): "this segmentation belongs to
    <scan>", and what to do."""
    if node is None or scan is None or belongs_to(node, scan):
        return
    owner = scan_of(node)
    this = f"The {what} '{node.GetName()}'"
    if owner is None and node.GetAttribute(RESULT_OF_NAME) is None:
        raise InputError(f"{this} holds a link to its scan saved by an older OrbitAI that could not be checked when "
                         f"the scene was loaded: close the scene and load it again (OrbitAI converts such links "
                         f"while it loads), then choose a {what} of {_scan_name(scan)}.")
    if owner is None:
        gone = node.GetAttribute(RESULT_OF_NAME)
        gone = f"'{gone}', which is no longer in the scene" if gone != _LOST else "a scan that is not in the scene"
        raise InputError(f"{this} belongs to {gone}, not to {_scan_name(scan)}: choose a {what} of "
                         f"{_scan_name(scan)}.")
    named = (f"another scan named {_scan_name(owner)} ({owner.GetID()})" if owner.GetName() == scan.GetName()
             else _scan_name(owner))
    raise InputError(f"{this} belongs to {named}, not to {_scan_name(scan)}: choose a {what} of "
                     f"{_scan_name(scan)}, or select {_scan_name(owner)} as the input volume.")


def segmentations_of(scene: Any, scan: Any) -> list[Any]:
    """The segmentation nodes an option list may offer with ``scan`` as the input: the scan's own and those of no scan
    (loaded as they are), oldest first; editor helpers left out. Without a scan, only those of no scan."""
    return [n for n in nodes_of_class(scene, "vtkMRMLSegmentationNode")
            if not n.GetHideFromEditors() and (belongs_to(n, scan) if scan is not None else not _has_owner(n))]


def adopt_legacy_links(scene: Any, before: Iterable[Any]) -> int:
    """Convert the old ID attributes (`LEGACY_LINKS`) of the nodes an import just added into node references; returns
    how many were converted. ``before``: the nodes the scene held before the import (whatever the import then cleared).

    Run right after ``vtkMRMLScene::Import`` (or ``Connect``/``ReadFromMRB``): the scene still holds the IDs it changed
    (``GetChangedID``: an imported node whose ID was taken got a new one). An old ID is mapped through it and kept only
    when it then names a node of the same import; one that names a node that was there before, a node renumbered onto
    that ID, or nothing is dropped (after a merge it may name another patient's scan), and its node then belongs to
    no scan that is in the scene (`belongs_to` is False for all). The attributes are removed either way, so that
    nothing reads them later."""
    before = list(before)
    old_ids = {n.GetID() for n in before if n is not None and n.GetID()}
    kept = {id(n) for n in before}
    # IDs the import renumbered onto: a conflict is always with a node that was there before the import
    renumbered_onto = {scene.GetChangedID(i) for i in old_ids} - {None}
    imported = {n.GetID(): n for n in nodes_of_class(scene, "vtkMRMLNode") if id(n) not in kept}
    converted = 0
    for node in imported.values():
        for attr, role in LEGACY_LINKS.items():
            old = node.GetAttribute(attr)
            if old is None:
                continue
            node.RemoveAttribute(attr)
            if not old or node.GetNodeReferenceID(role):
                continue
            new = scene.GetChangedID(old) or (None if old in renumbered_onto else old)
            target = imported.get(new) if new else None
            if target is None or target is node:
                if role == RESULT_OF and not node.GetAttribute(RESULT_OF_NAME):
                    node.SetAttribute(RESULT_OF_NAME, _LOST)  # a result of a scan not in the scene: nobody's
                continue
            node.SetNodeReferenceID(role, target.GetID())
            if role == RESULT_OF:
                node.SetAttribute(RESULT_OF_NAME, target.GetName() or target.GetID())
            converted += 1
    return converted


#: The Python attribute of a scene's wrapper (VTK keeps it while the scene lives) set once it is watched; the nodes
#: an import started with are kept under `_BEFORE_IMPORT` until it ends.
_WATCHED = "_orbitai_watches_imports"
_BEFORE_IMPORT = "_orbitai_nodes_before_import"


def _import_started(scene: Any, _event: Any = None) -> None:
    setattr(scene, _BEFORE_IMPORT, nodes_of_class(scene, "vtkMRMLNode"))


def _import_ended(scene: Any, _event: Any = None) -> None:
    before = getattr(scene, _BEFORE_IMPORT, None)
    setattr(scene, _BEFORE_IMPORT, None)
    if before is not None:
        adopt_legacy_links(scene, before)


def watch_imports(scene: Any) -> None:
    """Make every later import into ``scene`` (File > Load Scene, Add Data of a scene or .mrb, `slicer.util.loadScene`,
    `orbitai.mrml.mrb.load_mrb`) convert the old ID links of the nodes it adds (`adopt_legacy_links`). Once a scene."""
    if scene is None or getattr(scene, _WATCHED, False):
        return
    # the observers get the scene as the caller: no reference from the scene back to itself
    scene.AddObserver(scene.StartImportEvent, _import_started)
    scene.AddObserver(scene.EndImportEvent, _import_ended)
    setattr(scene, _WATCHED, True)


def results_of(scene: Any, input_node: Any, cls: str = "vtkMRMLSegmentationNode") -> list[Any]:
    """The nodes of class ``cls`` that are results of ``input_node``, oldest first (editor helpers left out)."""
    if input_node is None:
        return []
    iid = input_node.GetID()
    return [n for n in nodes_of_class(scene, cls)
            if not n.GetHideFromEditors() and (o := scan_of(n)) is not None and o.GetID() == iid]


#: Node attribute: the opacity a heat map had in the slice views when another scan was shown (restored on return).
SHOWN_OPACITY = "OrbitAI.ShownOpacity"


def _opacity(text: Optional[str], default: float = 0.5) -> float:
    try:
        value = float(text) if text else default
    except ValueError:
        return default
    return min(max(value, 0.0), 1.0) if value == value else default      # NaN: the default


def _mark_quietly(node: Any, name: str, value: Optional[str]) -> None:
    """``node``'s attribute ``name`` set to ``value`` (None: removed), bookkeeping only OrbitAI reads, without the
    node's ModifiedEvent: in the browser
    each segmentation ever edited keeps trame-slicer's observer of that event (``Segmentation``), and an event on a
    segmentation of a scan no longer shown ran that observer's chain into a crash of the server (SIGSEGV, found by
    ``web/test_web_heat_maps.py::test_a_scan_switch_shows_nothing_of_the_other_scan...``)."""
    was = node.GetDisableModifiedEvent()
    node.SetDisableModifiedEvent(1)
    try:
        if value is None:
            node.RemoveAttribute(name)
        else:
            node.SetAttribute(name, value)
    finally:
        node.SetDisableModifiedEvent(was)


def show_results_of(scene: Any, input_node: Any, overlays: Optional[dict[str, str]] = None) -> None:
    """Show the segmentations and markups (crop boxes, rulers) that are results of ``input_node`` and hide the other
    scans' (untagged ones are left as they are); a heat map of another scan leaves the slice views' foreground. ``overlays`` (scan ID -> heat-map node
    ID) remembers the foreground each scan had, so that switching back shows it again."""
    iid = input_node.GetID() if input_node is not None else None
    for seg in nodes_of_class(scene, "vtkMRMLSegmentationNode") + nodes_of_class(scene, "vtkMRMLMarkupsNode"):
        owner_node = scan_of(seg)
        owner = owner_node.GetID() if owner_node is not None else None
        if not owner or seg.GetHideFromEditors():
            continue
        seg.CreateDefaultDisplayNodes()
        display = seg.GetDisplayNode()
        if display is None:
            continue
        if owner != iid and display.GetVisibility():
            display.SetVisibility(False)
            _mark_quietly(seg, HIDDEN_WITH_SCAN, "1")
        elif owner == iid and seg.GetAttribute(HIDDEN_WITH_SCAN):
            display.SetVisibility(True)
            _mark_quietly(seg, HIDDEN_WITH_SCAN, None)
    for comp in nodes_of_class(scene, "vtkMRMLSliceCompositeNode"):
        fg = scene.GetNodeByID(comp.GetForegroundVolumeID() or "")
        owner_node = scan_of(fg) if fg is not None else None
        owner = owner_node.GetID() if owner_node is not None else None
        if owner and owner != iid:
            if overlays is not None:
                overlays[owner] = fg.GetID()
                fg.SetAttribute(SHOWN_OPACITY, f"{comp.GetForegroundOpacity():.4g}")   # the user's, kept for the way back
            comp.SetForegroundVolumeID(None)
        elif fg is None and overlays is not None and iid in overlays:
            back = scene.GetNodeByID(overlays[iid])
            if back is not None:
                comp.SetForegroundVolumeID(back.GetID())
                comp.SetForegroundOpacity(_opacity(back.GetAttribute(SHOWN_OPACITY)))
