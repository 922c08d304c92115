"""Model bundles: a folder with ``metadata.json`` (validated against its task's JSON Schema) and
the model files it names, each checked against its SHA-256 before it is deserialised.

* `core`: `Bundle`, `load_bundle`, `save_bundle`, `find_bundle` (search path, built-ins shipped as
  package data in ``orbitai/resources/models``);
* `schema`: one JSON Schema per task (``schemas/*.schema.json``);
* `models`: `TaskModels`, one task's bundled models, panel labels, default and aliases (each task
  declares its own in ``orbitai/<task>/models.py``), and `find_task_bundle`;
* `formats`: scikit-learn models and parameter files without pickle (skops, JSON).
"""
from orbitai.bundle.core import (
                                 BUILTIN_DIR,
                                 METADATA,
                                 WEIGHTS,
                                 Bundle,
                                 check_bundle_folder,
                                 find_bundle,
                                 iter_bundles,
                                 load_bundle,
                                 save_bundle,
                                 search_paths,
                                 sha256_file,
                                 write_bundle,
)
from orbitai.bundle.schema import validate_metadata
from orbitai.errors import BundleError

__all__ = ["BUILTIN_DIR", "METADATA", "WEIGHTS", "Bundle", "BundleError", "check_bundle_folder", "find_bundle", "iter_bundles",
           "load_bundle", "save_bundle", "search_paths", "sha256_file", "validate_metadata", "write_bundle"]
