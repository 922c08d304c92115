"""NeuroDifferential Logic tests: the module folder on sys.path (for NeuroDifferentialLib); skipped without slicer-core."""
import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "NeuroDifferential"))
if importlib.util.find_spec("slicer") is None:
    collect_ignore_glob = ["test_*.py"]
