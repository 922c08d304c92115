"""Issue 82, point 3 (browser side): the browser keeps a DICOM series' tags. A series loaded through the page's
loader (an upload's path: `ScanLoader.load` with the upload's folder) keeps the tags that say what the scan is on its
volume node; the job's input file, written a slab per tick as Apply writes it, carries them, and the child's judge
(`orbitai.predictor.Predictor.predict`: `read_scan`, then `scan_facts` with the acquisition's tags) reads the weighting
from them. The case: a FLAIR whose values were compressed (square root), which the image classifier cannot tell from
a PD (unsure): only its tags say FLAIR. Headless MRML, no browser."""
from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from orbitai.io import Volume, read_scan, write_dicom_series
from orbitai.jobs.inputs import JobFolder, JobInputs
from orbitai.phantoms.heads import HELD_OUT, render_scan
from orbitai.scan import scan_facts
from web_cases import LoaderState

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("trame")

#: A FLAIR's tags as a scanner writes them (inversion recovery, TI 2500 ms, long TE and TR).
FLAIR_TAGS = {"SeriesDescription": "AX FLAIR", "ScanningSequence": ["SE", "IR"], "InversionTime": "2500",
              "EchoTime": "120", "RepetitionTime": "9000", "SeriesNumber": "4"}


def _ambiguous_flair_series(folder: Path) -> Path:
    """A held-out head's FLAIR with its values on a log scale (the image classifier: T2 at about 0.79, unsure),
    written as a DICOM MR series whose tags say FLAIR."""
    r = render_scan(HELD_OUT[0], np.random.default_rng(3), "MR", "FLAIR", False, "head", slice_mm=4.0)
    a = np.round(np.log1p(np.clip(r.volume.array.astype(np.float32), 0, None)) * 60)
    write_dicom_series(Volume(a, r.volume.spacing, r.volume.origin, r.volume.direction), folder, "MR")
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        for key, value in FLAIR_TAGS.items():
            setattr(ds, key, value)
        ds.save_as(f)
    return folder


def test_an_uploaded_series_tags_reach_the_jobs_judge(ctx, tmp_path):
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic
    from orbitai.web.loading import ScanLoader
    from orbitai.web.names import DicomWebAllowList

    upload = tmp_path / "orbitai-upload-x"
    series = _ambiguous_flair_series(upload / "series")
    loader = ScanLoader.__new__(ScanLoader)
    loader.state, loader.data_folder, loader._loading, loader.upload_limit = LoaderState(), None, 0, 1 << 30
    loader.mrml, loader.dicomweb = ctx, DicomWebAllowList([])
    asyncio.run(loader.load(str(series), "series", hidden=upload))
    assert not loader.state.load_error, loader.state.load_error
    node = ctx.scene.GetNodeByID(loader.state.input_volume)
    assert node.GetName() == "4: AX FLAIR"

    inputs = JobInputs()
    work = tmp_path / "job"
    work.mkdir()
    args = OrbitSegmentationLogic(ctx).jobArguments(JobFolder(work, inputs), node, device="cpu")
    while not inputs.step():                          # a slab per tick, as the job's poll writes it
        pass
    written = Path(args[2])
    vol, acquisition = read_scan(written)             # the child: the scan read with its tags, judged once
    facts = scan_facts(vol, acquisition.tags, written)
    assert facts.sure("weighting") and facts.weighting.value == "FLAIR", facts.to_json()
    assert facts.weighting.source.startswith("DICOM"), facts.to_json()
    assert facts.require_modality() == "MR"

    # without the tags (what the child judged before), the image alone leans to another weighting, unsure
    alone = scan_facts(vol, {}, written)
    assert alone.weighting.value != "FLAIR" and not alone.sure("weighting"), alone.to_json()
