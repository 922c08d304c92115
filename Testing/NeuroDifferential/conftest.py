"""NeuroDifferential Logic tests (headless slicer-core scene); skipped without slicer-core."""
import importlib.util

if importlib.util.find_spec("slicer") is None:
    collect_ignore_glob = ["test_*.py"]
