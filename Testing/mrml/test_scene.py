"""Scene factory: logics, default colours, slicer.mrmlScene, converter rules."""
import pytest

slicer = pytest.importorskip("slicer")

from orbitai.mrml import MRMLContext, get_context, new_scene  # noqa: E402


def test_new_scene_has_logics_and_default_colours(ctx):
    assert isinstance(ctx, MRMLContext) and ctx.headless
    for name in ("colors", "segmentations", "volumes", "tables", "plots", "subject_hierarchy"):
        assert getattr(ctx, name) is not None, name
    assert ctx.app_logic.GetModuleLogic("Segmentations") is ctx.segmentations
    assert ctx.scene.GetNumberOfNodesByClass("vtkMRMLColorTableNode") > 10
    assert ctx.scene.GetFirstNodeByName("Labels") is not None
    assert slicer.mrmlScene is ctx.scene
    assert ctx.scene.GetSubjectHierarchyNode() is not None


def test_unpacks_like_a_tuple(ctx):
    scene, app, logics = ctx
    assert scene is ctx.scene and app is ctx.app_logic and ctx.segmentations in logics


def test_converter_rules_registered(ctx):
    seg = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    sid = seg.GetSegmentation().AddEmptySegment("a", "a")
    assert sid == "a" and seg.GetSegmentation().GetNumberOfSegments() == 1


def test_get_context_returns_current_and_scenes_are_independent(ctx):
    assert get_context() is ctx
    other = new_scene()
    try:
        assert other.scene is not ctx.scene and get_context() is other
        ctx.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "only_in_first")
        assert other.scene.GetFirstNodeByName("only_in_first") is None
    finally:
        other.close()
    assert getattr(slicer, "mrmlScene", None) is None or slicer.mrmlScene is not other.scene


def test_dependencies_check_headless():
    from orbitai.mrml.dependencies import ensure_requirements, import_name, missing_modules

    assert ensure_requirements(["numpy", "SimpleITK"]) is True
    assert missing_modules(["numpy", "orbitai_no_such_module"]) == ["orbitai_no_such_module"]
    with pytest.raises(ImportError, match="pip install orbitai_no_such_module"):
        ensure_requirements(["numpy", "orbitai_no_such_module"])
    assert import_name("scikit-image>=0.22") == "skimage"
