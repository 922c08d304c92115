"""Logic of the TAOActivity module (no Qt: tested headless on a real MRML scene)."""
from .tao_logic import TAOActivityLogic, TAOOutputs, TAOResultError, read_result  # noqa: F401
