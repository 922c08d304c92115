"""DICOM results (issue 33): the time to write the DICOM SEG and the TID 1500 SR of one 512x512x100 CT orbit
segmentation (phantom seed 424242, 0.3x0.3x0.5 mm, written as a DICOM series and segmented once by
``orbitai seg predict``); only the writing is timed (reading the source headers, SEG, SR), median of repeats."""
from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

from benchmarks.common import write_result

REPEATS = 5


def main() -> Path:
    from orbitai.cli import main as orbitai_main
    from orbitai.dicom.export import write_dicom_results
    from orbitai.dicom.seg import orbit_segments, read_source_series, write_seg
    from orbitai.dicom.sr import orbit_findings, write_sr
    from orbitai.io import write_dicom_series
    from orbitai.io.segfile import read_segmentation
    from orbitai.phantoms.orbit import orbit_case

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        case = orbit_case(424242, modality="ct", size=(512, 512, 100), spacing=(0.3, 0.3, 0.5), oblique=False)
        series = write_dicom_series(case.image, root / "series")
        out = root / "pred"
        if orbitai_main(["seg", "predict", str(series), "--out", str(out), "--device", "cpu"]) != 0:
            raise RuntimeError("seg predict failed on the benchmark series")
        data = json.loads((out / "result.json").read_text())
        labels, _ = read_segmentation(out / data["files"]["segmentation"])
        rows, model = data["structures"], data["model"]
        total, seg_s, sr_s, sizes = [], [], [], {}
        for n in range(REPEATS):
            folder = root / f"dicom{n}"
            folder.mkdir()
            t0 = time.perf_counter()
            files = write_dicom_results(series, labels, rows, model, "bench", folder)
            total.append(time.perf_counter() - t0)
            sizes = {k: (folder / v).stat().st_size for k, v in files.items()}
            sources = read_source_series(series)       # the parts, for the notes
            t1 = time.perf_counter()
            segments = orbit_segments(rows)
            seg = write_seg(labels, segments, sources, model, "bench", folder / "seg.dcm")
            t2 = time.perf_counter()
            write_sr(seg, segments, orbit_findings(rows, segments), sources, model, "bench", folder / "sr.dcm")
            seg_s.append(t2 - t1)
            sr_s.append(time.perf_counter() - t2)
    metrics = {"seg_sr_write_s": statistics.median(total)}
    notes = {"image": "512x512x100 CT phantom (seed 424242), 0.3x0.3x0.5 mm, 100 DICOM slices",
             "repeats": REPEATS, "seg_sr_write_s": "median wall time of write_dicom_results: source headers "
             "(pydicom), DICOM SEG (highdicom, binary, empty frames omitted) and TID 1500 SR, files saved",
             "all_s": [round(t, 3) for t in total], "seg_only_median_s": round(statistics.median(seg_s), 3),
             "sr_only_median_s": round(statistics.median(sr_s), 3), "bytes": sizes, "structures": len(rows),
             "threads": os.environ.get("OMP_NUM_THREADS")}
    return write_result("dicom", metrics, {"seg_sr_write_s": "<= 2"}, notes)


if __name__ == "__main__":
    main()
