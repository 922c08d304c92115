"""Issue 49 in headless Chromium: the browser app as a viewer. Results belong to their scan (shown with it, hidden
with the others, tables too), the views go to a result when it arrives, and each segment's visibility and opacity
are the user's (the segment list)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from web_cases import PHANTOMS

from orbitai.testing.web import WebPage, colored

JOB_TIMEOUT_S = 300
#: A folder to keep the pages' screenshots in (the README's figures: docs/images); unset, none are kept.
SHOTS = os.environ.get("ORBITAI_WEB_SCREENSHOTS")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.driver.save_screenshot(str(Path(SHOTS) / f"web_{name}.png"))


def run_job(page, key: str) -> None:
    page.wait_state(f"{key}_apply_enabled", bool, 30)
    page.click(f"orbitai-{key}-apply")
    page.wait_state(f"{key}_running", bool, 20)
    page.wait_state(f"{key}_running", lambda v: not v, JOB_TIMEOUT_S)


def settled(page, view: str = "Red"):
    """The view's image once two frames in a row show the same pixels count of colour (the server has caught up)."""
    last = [None]

    def same():
        src, img = page.view_image(view)
        n = colored(img)
        ok = last[0] == n
        last[0] = n
        return ok or None
    page.wait(same, 30, "the view to settle", interval_s=0.5)
    return last[0]


@pytest.mark.slow  # the default suite's 20-minute budget; ~25 s: web/test_web_scans.py keeps results per scan in the default suite
def test_results_belong_to_their_scan_and_segments_can_be_hidden(page, downloads):
    tao = page.load(PHANTOMS["tao"])
    orbit = page.load(PHANTOMS["orbit-ct"])
    page.set_state("module", "orbit")
    run_job(page, "orbit")
    assert page.state("orbit_error") == ""
    # the views went to the result: segment pixels in the axial view without scrolling
    shown = page.wait(lambda: (lambda n: n if n > 300 else None)(settled(page)), 30, "segments in the axial view")
    rows = page.state("orbit_table_rows")
    segments = page.state("segment_rows")
    assert rows and {"eyeball_left", "eyeball_right"} <= {r["name"] for r in segments}
    assert all(r["color"].startswith("#") and r["visible"] for r in segments)
    # another scan: none of the first scan's results, pixels nor table
    page.set_state("input_volume", tao)
    page.wait_state("segment_rows", lambda v: v == [], 20)
    assert page.wait(lambda: settled(page) < 50 or None, 30, "the other scan without the segments")
    assert page.state("orbit_table_rows") == []
    # back: the results and the table again
    page.set_state("input_volume", orbit)
    page.wait_state("orbit_table_rows", lambda v: v == rows, 20)
    page.wait(lambda: settled(page) > 0.8 * shown or None, 30, "the segments back")
    # each segment's visibility is the user's
    page.click("orbitai-segments")
    page.wait(lambda: page.driver.execute_script(
        "const e = document.getElementById('orbitai-segment-visible-0'); return e && e.offsetParent !== null;"),
        20, "the segment list")
    for i in range(len(segments)):
        page.driver.execute_script("arguments[0].click();", page.element(f"orbitai-segment-visible-{i}"))
        page.wait_state("segment_rows", lambda v, i=i: not v[i]["visible"], 20)
    page.wait(lambda: settled(page) < 50 or None, 30, "every segment hidden")
    page.driver.execute_script("arguments[0].click();", page.element("orbitai-segment-visible-0"))
    page.wait_state("segment_rows", lambda v: v[0]["visible"] and not v[1]["visible"], 20)
    assert page.wait(lambda: settled(page) > 0 or None, 30, "one segment shown again")
    for i in range(1, len(segments)):
        page.driver.execute_script("arguments[0].click();", page.element(f"orbitai-segment-visible-{i}"))
    page.wait_state("segment_rows", lambda v: all(r["visible"] for r in v), 20)
    # any module's result downloads from the list, under a name without spaces
    for f in downloads.glob("*"):
        f.unlink()
    nodes = page.state("segment_nodes")
    assert [n["name"] for n in nodes] == ["orbit_ct_0000 orbit segmentation"]
    page.click("orbitai-segmentation-download-0")
    got = page.wait(lambda: list(downloads.glob("*.seg.nrrd")), 30, "the download")
    assert [f.name for f in got] == ["orbit_ct_0000_orbit_segmentation.seg.nrrd"]
    from orbitai.io.segfile import read_segmentation

    time.sleep(0.3)
    labels, names = read_segmentation(got[0])
    assert {"eyeball_left", "eyeball_right"} <= {i.name for i in names.values()}
    # the four-up layout: the segments as surfaces in the 3D view
    page.set_state("layout", "Four-up with 3D")
    page.wait(lambda: "ThreeD" in page.views() and page.views_rendered(), 60, "the 3D view")
    page.wait(lambda: colored(page.view_image("ThreeD")[1]) > 200 or None, 60, "the segments in 3D")
    page.set_state("crosshair", True)
    shot(page, "viewer_four_up")
    page.set_state("crosshair", False)
    page.set_state("layout", "Three slices")


def settled_frame(page, view: str) -> np.ndarray:
    """The view's picture once three frames in a row (~1 s) are alike in size and mean: a reference that neither a
    stale frame, repeated while a loaded server catches up, nor a layout still settling (a label line coming or
    going resizes the view) can be."""
    frames = [page.view_image(view)[1]]

    def settled() -> bool:
        frames.append(page.view_image(view)[1])
        last = frames[-3:]
        return len(last) == 3 and all(f.shape == last[0].shape for f in last) and \
            max(float(f.mean()) for f in last) - min(float(f.mean()) for f in last) < 0.5
    page.wait(settled, 30, "a settled frame", interval_s=0.4)
    return frames[-1]


def test_window_level_by_preset_and_by_drag(page):
    empty = page.views().get("Red", ("",))[0]               # the fresh page's frame, before the CT is shown
    page.load(PHANTOMS["orbit-ct"])
    page.wait_state("wl_window", lambda v: v is not None, 20)
    # the slice views drawn with the CT (a frame after the load's) and settled: three frames alike over ~1 s, so that
    # a stale frame of the empty scene, repeated while a loaded server catches up, is never taken for the reference
    page.wait(lambda: page.views_rendered() and page.views()["Red"][0] != empty, 60, "the CT's first frame")
    before = settled_frame(page, "Red")
    page.set_state("wl_preset", "CT bone (W 1000 / L 400)")
    page.wait_state("wl_window", lambda v: v == 1000.0, 20)
    assert page.state("wl_level") == 400.0
    # a bone window on a CT: the soft tissue goes dark, so the image's mean falls
    page.wait(lambda: page.view_image("Red")[1].mean() < before.mean() - 5, 30,
              f"the bone window drawn (the reference frame's mean {float(before.mean()):.1f})", interval_s=0.3)
    w, lv = page.state("wl_window"), page.state("wl_level")
    size = page.view_element("Red").size
    x, y = size["width"] / 2, size["height"] / 2
    page.drag("Red", [(x, y), (x + 60, y), (x + 120, y + 40)])
    page.wait(lambda: (page.state("wl_window"), page.state("wl_level")) != (w, lv), 20, "window/level to follow the drag")


def test_orientation_labels_crosshair_keys_and_a_3d_view(page):
    page.load(PHANTOMS["orbit-ct"])
    labels = page.wait_state("view_labels", lambda v: v and "Red" in v, 20)
    # radiological convention: the patient's right on the screen's left
    assert {k: labels["Red"][k] for k in ("left", "right", "top", "bottom")} == \
        {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert page.text("orbitai-label-Red-left") == "R" and page.text("orbitai-label-Red-position").endswith("mm")
    assert page.text("orbitai-label-Red-position").startswith("Axial")
    assert labels["Green"]["top"] == "S" and labels["Yellow"]["top"] == "S"
    # arrow keys scroll the view under the pointer
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    red = page.view_element("Red")
    before = page.state("view_labels")["Red"]["position"]
    ActionChains(page.driver).move_to_element(red).pause(0.2).send_keys(Keys.ARROW_UP).send_keys(Keys.ARROW_UP) \
        .perform()
    page.wait_state("view_labels", lambda v: v["Red"]["position"] != before, 20)
    # the crosshair: drawn through the point the views jumped to, when on
    g = page.state("slice_geometry")["Red"]
    centre = (np.array(g["xy_to_ras"]).reshape(4, 4) @ np.array([g["size"][0] / 2, g["size"][1] / 2, 0, 1]))[:3]
    page.jump([float(x) for x in centre])
    off = settled_frame(page, "Red")
    page.click("orbitai-crosshair")
    page.wait_state("crosshair", bool, 10)

    def crosshair_drawn():
        now = page.view_image("Red")[1]
        if now.shape != off.shape:            # the view resized: not the picture to compare with
            return False
        return np.count_nonzero(np.abs(now.astype(int) - off.astype(int)).max(axis=-1) > 40) > 200
    page.wait(crosshair_drawn, 20, "the crosshair drawn", interval_s=0.5)
    # a layout with a 3D view
    page.set_state("layout", "Four-up with 3D")
    page.wait(lambda: "ThreeD" in page.views() and page.views_rendered(), 60, "the 3D view")
    page.set_state("layout", "Axial")
    page.wait(lambda: set(page.views()) == {"Red"}, 30, "one axial view")


RECORDER = """
window.orbitaiRec = [];
window.trame.state.watch(['ann_busy', 'ann_busy_text', 'ann_waiting', 'ann_done', 'ann_preview'],
  (busy, text, waiting, done, preview) => window.orbitaiRec.push([busy, text, waiting, done, preview]));
"""


def test_a_click_in_a_view_gives_it_the_keys_back_from_a_field_or_box_used_before(page):
    """Issue 81: a checkbox, slider or field used last keeps the focus, and the views leave keys typed in a field to
    it: a click in a view lets go of that focus, so the arrow keys step the view again."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    page.load(PHANTOMS["orbit-ct"])
    page.wait_state("view_labels", lambda v: v and "Red" in v, 20)
    page.wait_state("wl_window", lambda v: v is not None, 20)
    field = page.element("orbitai-wl-window-input")
    field.click()
    active = "return document.activeElement && document.activeElement.id;"
    assert page.driver.execute_script(active) == "orbitai-wl-window-input"
    red = page.view_element("Red")
    ActionChains(page.driver).move_to_element(red).pause(0.2).click().pause(0.2).perform()
    assert page.driver.execute_script(active) != "orbitai-wl-window-input"     # the field let go of the focus
    before = page.state("view_labels")["Red"]["position"]
    ActionChains(page.driver).move_to_element(red).pause(0.2).send_keys(Keys.ARROW_UP).send_keys(Keys.ARROW_UP) \
        .perform()
    page.wait_state("view_labels", lambda v: v["Red"]["position"] != before, 20)


def _segment_on_eyeball(page, web_data):
    from orbitai.testing.web import centre_ras

    page.load(PHANTOMS["orbit-ct"])
    page.new_segment("eyeball_right", 20)
    centre = centre_ras(web_data / "orbit-ct/segmentations/orbit_ct_0000.seg.nrrd", 2)
    page.jump(centre)
    page.steady_geometry("Red")      # a view fitted late would move the strokes off the eyeball
    return centre


def test_smartpencil_first_click_shows_what_runs_before_its_result(page, web_data):
    centre = _segment_on_eyeball(page, web_data)
    page.choose_tool("smartpencil")
    page.driver.execute_script(RECORDER)
    done = page.state("ann_done")
    page.drag("Red", [page.to_css(centre)])
    page.wait_state("ann_done", lambda v: v > done, 120)
    rec = page.driver.execute_script("return window.orbitaiRec")
    result = next(i for i, r in enumerate(rec) if r[3] > done)
    assert any(r[0] and "SmartPencil" in r[1] and "superpixels" in r[1] for r in rec[:result]), rec
    assert page.state("ann_busy") is False and page.state("ann_voxels") > 0


def test_smartfill_first_preview_says_it_waits_for_the_model_prior(page, web_data, server):
    page.set_state("ann_opt_SmartFill_PriorWeight", 0.0)     # not asked for on load (issue 67): the preview asks
    centre = _segment_on_eyeball(page, web_data)
    page.set_state("ann_opt_SmartFill_PriorWeight", 2.0)
    page.set_state("ann_brush_mm", 2.0)
    page.choose_tool("paint")
    page.drag("Red", [page.to_css([centre[0] + dx, centre[1], centre[2]]) for dx in (-3.0, 0.0, 3.0)])
    # the stroke in the server's segment before the tool is put down and the preview asked for: "Add segment" already
    # made ann_can_undo true, so waiting on that went on before the stroke had landed (the page's drag is sent as
    # events the server takes later); on a busy server (the last test's model prior cancelled, the warm worker starting
    # again, this scan's superpixels) the stroke then landed after the press: no stroke for the preview, or one that
    # came while it waited for the model prior, which drops it as "the segment was edited" (no preview in 300 s)
    page.wait_state("ann_voxels", lambda v: bool(v), 30)
    page.set_state("ann_tool", "none")
    page.driver.execute_script(RECORDER)
    page.click("orbitai-ann-preview")
    try:
        page.wait_state("ann_preview", bool, 300)
    except TimeoutError as exc:   # once in a fresh-clone run (and once in 115 runs before): say where it stood
        states = {k: page.state(k) for k in ("ann_busy", "ann_busy_text", "ann_waiting", "ann_prior", "ann_message")}
        pytest.fail(f"{exc}; the panel's state: {states}; the end of the server's log:\n{server.log_tail(3000)}",
                    pytrace=False)
    rec = page.driver.execute_script("return window.orbitaiRec")
    shown = next(i for i, r in enumerate(rec) if r[4])
    assert any(r[0] and "SmartFill" in r[1] for r in rec[:shown]), rec
    assert any(r[2] and "model prior" in r[1] for r in rec[:shown]), rec


def test_no_deprecation_warnings_from_the_apps_own_code(page, server):
    page.load(PHANTOMS["orbit-ct"])
    page.set_state("layout", "Four-up with 3D")
    page.wait(lambda: "ThreeD" in page.views() and page.views_rendered(), 60, "the 3D view")
    page.set_state("layout", "Three slices")
    log = server.log_tail(200_000)
    # trame-slicer's views observe the interactor's resize event themselves (VTK warns once per interactor, each
    # warning logged twice); the app observes the render window's, so no more than one interactor per view warns
    import re

    warned = re.findall(r"WARN\| vtkXRenderWindowInteractor \((0x[0-9a-f]+)\): WindowResizeEvent will not", log)
    assert warned and len(warned) == len(set(warned)), warned       # one each: trame-slicer's own observer
    assert not [line for line in log.splitlines() if "Deprecat" in line and "orbitai" in line]


def test_the_value_under_the_pointer_and_a_ruler(page, web_data):
    from selenium.webdriver.common.action_chains import ActionChains

    from orbitai.io import read_volume

    page.load(PHANTOMS["orbit-ct"])
    page.wait_state("view_labels", lambda v: v and "Red" in v, 20)
    el = page.view_element("Red")
    ActionChains(page.driver).move_to_element(el).pause(0.2).move_by_offset(7, 3).pause(0.2).perform()
    text = page.wait_state("probe_text", lambda t: bool(t), 20)
    assert "outside" not in text and text.count("mm") == 0 and text.split(": ")[1]
    # the value is the scan's at that point (letters and RAS as shown: R/L, A/P, S/I)
    scan = read_volume(web_data / PHANTOMS["orbit-ct"])
    coords = [float(x) * (1 if a in "RAS" else -1) for a, x in (p.split() for p in text.split(": ")[0].split("  "))]
    i, j, k = (int(round(c)) for c in np.linalg.solve(scan.ijk_to_ras(), np.array([*coords, 1.0]))[:3])
    assert float(text.split(": ")[1]) == pytest.approx(float(scan.array[k, j, i]), rel=1e-3, abs=0.6)
    # a ruler: two clicks 20 mm apart on the axial slice
    g = page.state("slice_geometry")["Red"]
    m = np.array(g["xy_to_ras"]).reshape(4, 4)
    centre = (m @ np.array([g["size"][0] / 2, g["size"][1] / 2, 0, 1]))[:3]
    along = m[:3, 0] / np.linalg.norm(m[:3, 0])
    ends = [centre - 10 * along, centre + 10 * along]
    page.click("orbitai-ruler")
    for p in ends:
        page.drag("Red", [page.to_css([float(x) for x in p])])
        time.sleep(0.3)
    rulers = page.wait_state("rulers", bool, 20)
    assert rulers[0]["name"].startswith("Ruler") and rulers[0]["length_mm"] == pytest.approx(20.0, abs=1.0)
    assert page.text("orbitai-rulers").startswith("Ruler")


def test_reset_camera_and_a_reloaded_page_keep_the_slice(page, server):
    page.load(PHANTOMS["orbit-ct"])
    labels = page.wait_state("view_labels", lambda v: v and "Red" in v, 20)
    g = page.state("slice_geometry")["Red"]
    m = np.array(g["xy_to_ras"]).reshape(4, 4)
    point = (m @ np.array([g["size"][0] / 2, g["size"][1] / 2, 0, 1]))[:3] + 8 * m[:3, 2] / np.linalg.norm(m[:3, 2])
    page.jump([float(x) for x in point])
    moved = page.wait_state("view_labels", lambda v: v["Red"]["position"] != labels["Red"]["position"], 20)
    reset = page.driver.execute_script(
        "return document.querySelector('#orbitai-view-Red').parentElement.querySelector('.view-gutter button');")
    page.driver.execute_script("arguments[0].click();", reset)
    page.wait(lambda: page.state("view_labels")["Red"]["position"] == moved["Red"]["position"], 5, "the slice kept")
    time.sleep(1.0)
    assert page.state("view_labels")["Red"]["position"] == moved["Red"]["position"]
    # a reloaded page shows the same slice its slider says
    fresh = WebPage(page.driver, server.url)
    fresh.wait_views(60)
    time.sleep(1.0)
    assert fresh.state("view_labels")["Red"]["position"] == moved["Red"]["position"]


def test_the_pages_key_scripts_run_once_however_often_the_panels_are_rendered(driver):
    """Issue 80: the page logged "Identifier 'orbitaiProbeAt' has already been declared" twice (the toolbar's script
    run again when Vue rendered it again), and a second run of the annotation keys' script would take every key twice
    (a tool switched on and straight off). Each script, inserted three times as Vue inserts it, adds its listeners
    once and raises nothing."""
    from orbitai.web.edit_tools import KEYS_SCRIPT as ANNOTATION_KEYS
    from orbitai.web.viewer import KEYS_SCRIPT as VIEWER_KEYS

    driver.get("about:blank")
    errors = driver.execute_script("""
        window.calls = []; window.errors = [];
        window.addEventListener('error', (e) => window.errors.push(e.message));
        window.trame = {trigger: (name, args) => window.calls.push(name + ':' + JSON.stringify(args))};
        for (const text of arguments) {
          for (let k = 0; k < 3; k++) {
            const s = document.createElement('script');
            s.textContent = text;
            document.body.appendChild(s);
          }
        }
        window.orbitaiView = 'Red';
        for (const key of ['ArrowUp', 'b']) {
          document.body.dispatchEvent(new KeyboardEvent('keydown', {key: key, bubbles: true}));
        }
        return window.errors;""", VIEWER_KEYS, ANNOTATION_KEYS)
    assert errors == []
    assert driver.execute_script("return window.calls") == ['orbitai_slice_step:["Red",1]', 'orbitai_ann_key:["b"]']
