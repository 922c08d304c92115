"""Logic of the IVGCResponse module."""
from .ivgc_logic import (DEFAULT_MODEL, DEFAULT_STRATEGY, MODELS, IvgcOutputs,  # noqa: F401
                         IVGCResponseLogic, clinical_form)
