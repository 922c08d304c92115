"""Issue 67.6: ``seg rank`` asks each scan's facts (the one judge, `orbitai.scan`) before any network runs: a
brain-only FLAIR (no orbits in view) is not segmented but listed last, not ranked, with the reason; progress says
"scan n of N"."""
from __future__ import annotations

import pytest

from orbitai.cohort.manifest import read_manifest
from orbitai.orbit.rank import rank_scans
from orbitai.phantoms import write_cohort

SEED = 67006


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    root = tmp_path_factory.mktemp("rank")
    out = []
    for kind in ("brain-flair", "orbit-mri"):
        case = read_manifest(write_cohort(kind, 1, SEED, root / kind, montage_cases=0), need_segmentation=False)[0]
        out.append((kind, case.image))
    return out


def test_a_scan_without_orbits_is_left_out_with_the_reason_and_progress_counts_scans(scans):
    messages = []
    ranked = rank_scans(scans, progress=lambda done, total, message: messages.append((done, total, message)))
    assert messages == [(0, 2, "scan 1 of 2"), (1, 2, "scan 2 of 2"), (2, 2, "2 of 2 scans ranked")]
    assert [r.case_id for r in ranked] == ["orbit-mri", "brain-flair"]
    brain = ranked[-1]
    assert not brain.ranked and brain.score == -1.0 and brain.mean_confidence is None
    assert brain.note.startswith("not ranked: the orbits not in view") and "FLAIR" in brain.note, brain.note
    orbit = ranked[0]
    assert orbit.ranked and 0.0 <= orbit.score <= 1.0 and orbit.mean_confidence is not None and orbit.note == ""
