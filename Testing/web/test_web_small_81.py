"""Issue 81.8 in headless Chromium: the patient line covers no orientation letter; MRI window presets and typed
window/level values drawn in the page at once (the server follows); one press of "Apply threshold" with its default
selects a structure, not the whole head; the rows of "Which scan next" open their scan."""
from __future__ import annotations

import numpy as np
from test_web_annotation_tools import _new_segment, _open_edits, _press
from web_cases import PHANTOMS, run_ranking

from orbitai.web.intensity import MRI_PRESETS, threshold_default

JOB_TIMEOUT_S = 300

#: Every shown orientation letter and the patient line: their boxes in the page (CSS px).
_BOXES_JS = """
const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
const letters = Array.from(document.querySelectorAll('[id^="orbitai-label-"]'))
  .filter((el) => el.textContent.trim() && el.offsetParent !== null)
  .map((el) => [el.id, el.textContent.trim(), box(el)]);
const line = document.getElementById('orbitai-scan-identity');
return [letters, line && line.offsetParent !== null ? box(line) : null];
"""


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _page_slices(page) -> None:
    """Wait until the page draws the shown scan itself (its copy loaded, the canvases shown)."""
    page.wait(lambda: page.driver.execute_script(
        "const S = window.orbitaiSlices, cv = window.trame.state.get('client_volume');"
        "return !!(S.vol && cv && S.vol.key === cv.key && S.vol.index + 1 === cv.steps "
        "&& Array.from(document.querySelectorAll('canvas.orbitai-slice')).every((c) => c.style.display !== 'none'));"),
        120, "the page's own slices")


def test_the_patient_line_covers_no_orientation_letter(page):
    page.load(PHANTOMS["tao"])
    page.wait(lambda: page.text("orbitai-scan-identity") == "tao_0000.nrrd", 20, "the scan's name over the views")
    page.wait_state("view_labels", lambda v: all(v.get(n, {}).get("top") for n in ("Red", "Green", "Yellow")), 30)
    for layout in ("Three slices", "Coronal"):
        page.set_state("layout", layout)

        def boxes():
            letters, line = page.driver.execute_script(_BOXES_JS)
            ids = {i for i, _, _ in letters}
            return (letters, line) if line and "orbitai-label-Green-top" in ids else None
        letters, line = page.wait(boxes, 30, f"the coronal view's letters in {layout}")
        covered = [(i, text) for i, text, b in letters if _overlap(b, line)]
        assert not covered, f"{layout}: the patient line {line} covers {covered}"
    page.set_state("layout", "Three slices")


def test_mri_presets_and_typed_values_drawn_in_the_page_and_kept_by_the_server(page):
    from selenium.webdriver.common.keys import Keys

    page.load(PHANTOMS["brain-flair"])
    _page_slices(page)
    presets = page.state("wl_presets")
    assert all(name in presets for name in MRI_PRESETS), presets
    values = page.state("wl_preset_values")
    name = next(iter(MRI_PRESETS))
    # picked: the page's lookup table takes the preset in the same turn, before any answer of the server
    shown = page.driver.execute_script(
        "window.trame.state.set('wl_preset', arguments[0]);"
        "const S = window.orbitaiSlices; return [S.window, S.level];", name)
    assert shown == values[name], (shown, values[name])
    page.wait_state("wl_window", lambda w: w == values[name][0], 30)
    assert page.state("wl_level") == values[name][1]
    frames = page.driver.execute_script("return window.orbitaiSlices.frames.Red || 0;")
    for field, typed in (("window", "37.5"), ("level", "61")):
        el = page.element(f"orbitai-wl-{field}-input")
        el.send_keys(Keys.CONTROL, "a")
        el.send_keys(typed, Keys.ENTER)
        assert page.driver.execute_script(f"return window.orbitaiSlices.{field};") == float(typed)
        page.wait_state(f"wl_{field}", lambda v, t=typed: v == float(t), 30)
    assert page.driver.execute_script("return window.orbitaiSlices.frames.Red || 0;") > frames   # drawn again
    assert (page.state("wl_window"), page.state("wl_level")) == (37.5, 61.0)


def test_one_threshold_press_with_the_default_selects_no_whole_head(page, web_data):
    from orbitai.annotate import threshold_mask
    from orbitai.io import read_volume

    image = read_volume(web_data / PHANTOMS["orbit-ct"]).array
    head = int((image > -500).sum())                      # the head: everything but the air
    page.load(PHANTOMS["orbit-ct"])
    _new_segment(page, "default threshold")
    _open_edits(page)
    lo, hi = page.state("ann_thr")
    assert (lo, hi) == threshold_default(image)
    assert _press(page, "threshold").startswith("Threshold"), page.state("ann_message")
    voxels = page.wait_state("ann_voxels", lambda v: v > 0, 30)
    assert voxels == int(threshold_mask(image, lo, hi).sum())
    assert voxels < 0.05 * head, f"{voxels} of the head's {head} voxels selected by one press"


def test_which_scan_next_rows_open_their_scan(page):
    tao = page.load(PHANTOMS["tao"])
    rows = run_ranking(page, JOB_TIMEOUT_S)
    assert [(r["c1"], r.get("scan_id")) for r in rows] == [("tao_0000", tao)]
    ct = page.load(PHANTOMS["orbit-ct"])
    assert page.state("input_volume") == ct
    page.set_state("module", "orbit")
    row = page.wait(lambda: page.driver.execute_script(
        "return document.querySelector('#orbitai-orbit_rank-table tr.orbitai-scan-row');"), 20, "the ranking's row")
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", row)
    row.click()
    page.wait_state("input_volume", lambda v: v == tao, 20)
    assert np.isfinite(float(rows[0]["c2"]))
