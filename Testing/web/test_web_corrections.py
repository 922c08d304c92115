"""Issue #48 in the browser (``orbitai web`` in headless Chromium): "Learn from my corrections" marks a loaded
segmentation finished, fine-tunes with progress, Cancel keeps the work and Apply again goes on where it stopped, and the
new model is in the model list at once; "Which scan next" ranks the scans without a finished segmentation."""
from __future__ import annotations

import pytest
from web_cases import PHANTOMS, run_ranking

from orbitai.testing.web import web_server

JOB_TIMEOUT_S = 300
#: a short recipe for the test (the panel's own is minutes on a CPU)
OPTIONS = "--steps 8 --eval-every 2 --folds 2 --replay-share 0"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def server(web_tools, web_data, home):
    with web_server(str(web_data), env={"HOME": str(home), "ORBITAI_FINETUNE_OPTIONS": OPTIONS}) as srv:
        yield srv


def load_with_segmentation(page) -> str:
    page.load(PHANTOMS["orbit-ct"])
    page.set_state("data_choice", "orbit-ct/segmentations/orbit_ct_0000.seg.nrrd")
    page.click("orbitai-load-data")
    segs = page.wait_state("segmentations", lambda s: any(x["title"] == "orbit_ct_0000" for x in s), 60)
    return next(x["value"] for x in segs if x["title"] == "orbit_ct_0000")


@pytest.mark.slow  # the default suite's 20-minute budget; ~27 s: the same controller path runs headless in mrml/test_learn_from_corrections.py
def test_learn_from_corrections_cancel_resume_and_the_new_model_is_listed(page, home):
    seg = load_with_segmentation(page)
    page.set_state("module", "orbit")
    page.click("orbitai-section-orbit_finetune")              # open the section
    page.wait(lambda: page.element("orbitai-orbit_finetune-apply").is_displayed(), 20, "the section")
    page.set_state("orbit_finetune_corrected", seg)
    page.click("orbitai-orbit_finetune-markFinished")
    page.wait_state("orbit_finetune_status", lambda s: s.startswith("1 finished segmentation(s): orbit_ct_0000"), 20)
    page.set_state("orbit_finetune_base", "orbit_svnet_ct_demo")
    page.set_state("orbit_finetune_name", "web_mine")
    page.set_state("orbit_finetune_device", "cpu")
    page.wait_state("orbit_finetune_apply_enabled", bool, 30)
    page.click("orbitai-orbit_finetune-apply")
    page.wait_state("orbit_finetune_running", bool, 20)
    work = home / ".orbitai" / "models" / ".web_mine-finetune"
    # one finished case: nothing to hold out, one run of 8 steps with a checkpoint every 2
    page.wait(lambda: (work / "checkpoint.pt").is_file() or not page.state("orbit_finetune_running"), JOB_TIMEOUT_S,
              "the first checkpoint")
    assert page.state("orbit_finetune_apply_text") == "Cancel"
    page.click("orbitai-orbit_finetune-apply")                # Cancel
    page.wait_state("orbit_finetune_running", lambda v: not v, 30)
    assert page.state("orbit_finetune_status").startswith("Cancelled")
    assert (work / "checkpoint.pt").is_file() and not (home / ".orbitai" / "models" / "web_mine").exists()
    page.click("orbitai-orbit_finetune-apply")                # Apply again: goes on where it stopped
    page.wait_state("orbit_finetune_running", bool, 20)
    page.wait_state("orbit_finetune_running", lambda v: not v, JOB_TIMEOUT_S)
    assert page.state("orbit_finetune_error") == "", page.state("orbit_finetune_error")
    assert page.state("orbit_finetune_status").startswith("Installed 'web_mine' (one finished case")
    assert "web_mine" in page.state("orbit_model_items")      # in the model list at once
    rows = page.state("orbit_finetune_table_rows")
    assert [r["c0"] for r in rows] == ["orbit_svnet_ct_demo", "web_mine"]
    assert not work.exists()


def test_which_scan_next_in_the_browser(page):
    page.load(PHANTOMS["orbit-ct"])
    rows = run_ranking(page, JOB_TIMEOUT_S)
    assert [r["c1"] for r in rows] == ["orbit_ct_0000"] and page.state("orbit_rank_status").startswith("1 scan(s)")


@pytest.mark.slow  # the default suite's 20-minute budget; ~20 s: headless in mrml/test_learn_from_corrections.py
def test_neuro_lesion_corrections_teach_a_lesion_model_listed_at_once(page, home):
    page.load(PHANTOMS["brain-flair"])
    page.set_state("data_choice", "brain-flair/segmentations/brain_flair_0000.seg.nrrd")
    page.click("orbitai-load-data")
    segs = page.wait_state("segmentations", lambda s: any(x["title"] == "brain_flair_0000" for x in s), 60)
    seg = next(x["value"] for x in segs if x["title"] == "brain_flair_0000")
    page.set_state("module", "neuro")
    page.click("orbitai-section-neuro_finetune")
    page.wait(lambda: page.element("orbitai-neuro_finetune-apply").is_displayed(), 20, "the section")
    page.set_state("neuro_finetune_corrected", seg)
    page.click("orbitai-neuro_finetune-markFinished")
    page.wait_state("neuro_finetune_status", lambda s: s.startswith("1 finished segmentation(s): brain_flair_0000"), 20)
    page.set_state("neuro_finetune_name", "web_lesions")
    page.set_state("neuro_finetune_device", "cpu")
    page.wait_state("neuro_finetune_apply_enabled", bool, 30)
    page.click("orbitai-neuro_finetune-apply")
    page.wait_state("neuro_finetune_running", bool, 20)
    page.wait_state("neuro_finetune_running", lambda v: not v, JOB_TIMEOUT_S)
    assert page.state("neuro_finetune_error") == "", page.state("neuro_finetune_error")
    assert page.state("neuro_finetune_status").startswith("Installed 'web_lesions' (one finished case")
    assert "web_lesions" in page.state("neuro_lesion_model_items")      # in the lesion model list at once
    assert "web_lesions" not in page.state("neuro_model_items")         # not a classifier
    assert (home / ".orbitai" / "models" / "web_lesions" / "model.pt").is_file()
