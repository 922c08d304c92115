"""Logic of the OrbitSegmentation module (no Qt: tested headless on a real MRML scene)."""
from .segmentation_logic import (AUTOMATIC_MODEL, WINDOW_CHOICES, OrbitSegmentationLogic,  # noqa: F401
                                 SegmentationOutputs)
