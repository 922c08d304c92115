"""A segmentation result's DICOM files: ``segmentation.dcm`` (SEG) and ``report.dcm`` (TID 1500 SR)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from orbitai.io.volume import Volume

__all__ = ["SEG_FILE", "SR_FILE", "write_dicom_results"]

SEG_FILE = "segmentation.dcm"
SR_FILE = "report.dcm"


def write_dicom_results(source: str | os.PathLike, labels: Volume, rows: Sequence[dict[str, Any]], model: str,
                        version: str, folder: Path) -> dict[str, str]:
    """Write the SEG and SR of ``labels`` / ``rows`` (the structure rows of result.json) into ``folder``,
    referencing the DICOM series in ``source``; returns result.json ``files`` entries (dicom_seg, dicom_sr)."""
    from orbitai.dicom.seg import read_source_series, write_seg
    from orbitai.dicom.sr import write_sr

    sources = read_source_series(source)
    seg = write_seg(labels, rows, sources, model, version, folder / SEG_FILE)
    write_sr(seg, rows, sources, model, version, folder / SR_FILE)
    return {"dicom_seg": SEG_FILE, "dicom_sr": SR_FILE}
