"""Logic of the OrbitSegmentation module (no Qt: tested headless on a real MRML scene)."""
from .segmentation_logic import OrbitSegmentationLogic, SegmentationJob, SegmentationOutputs  # noqa: F401
