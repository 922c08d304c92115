"""Logic of the NeuroDifferential module."""
from .neuro_logic import (DEFAULT_MODEL, LESIONS_ONLY, MODELS, NO_MODEL, NeuroDifferentialLogic,  # noqa: F401
                          NeuroOutputs, segments_volume_mm3)
