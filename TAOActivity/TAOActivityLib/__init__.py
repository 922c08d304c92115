"""Logic of the TAOActivity module (no Qt: tested headless on a real MRML scene)."""
from .tao_logic import (SHOWN_MAP_CHOICES, TAOActivityLogic, TaoOutputs,  # noqa: F401
                        TaoResultError)
