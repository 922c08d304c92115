"""Issue 67.1 in headless Chromium: the slice views drawn in the page (orbitai/web/client_slices.py and
static/orbitai_slices.js). The page's canvas changes on a slice step while the server's view has not rendered (the
slice's sync to the server held back), window/level changes its pixels both ways (a preset on the server, a drag in
the page that the server takes), a painted segment appears in it, and the page's state holds no server path and no
secret. Also the packing of the voxels the page is sent (no browser)."""
from __future__ import annotations

import base64
import gzip
import io
import json
import time

import numpy as np
import pytest
from web_cases import PHANTOMS

from orbitai.labels import LABEL_BY_NAME
from orbitai.testing.web import colored
from orbitai.web.client_slices import compact, packed, scan_level, scan_steps

CANVAS_JS = """
const c = document.getElementById('orbitai-slice-' + arguments[0]);
return c && c.style.display !== 'none' && c.width > 1 ? c.toDataURL('image/png') : null;"""


def canvas(page, view: str = "Red"):
    """The page's own drawing of a view (RGB), or None while the canvas is hidden."""
    from PIL import Image

    url = page.driver.execute_script(CANVAS_JS, view)
    if url is None:
        return None
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def client_ready(page, node_id: str, view: str = "Red") -> None:
    """Wait until the page draws ``view`` from its copy of the scan ``node_id``."""
    page.wait(lambda: page.driver.execute_script(
        "const S = window.orbitaiSlices; return !!(S && S.vol && S.vol.key.startsWith(arguments[0] + ':')"
        " && (S.frames[arguments[1]] || 0) > 0);", node_id, view) and canvas(page, view) is not None,
        120, "the page's own slices")


def settled_frame(page, view: str, quiet_s: float = 1.5, timeout_s: float = 30.0) -> str:
    """The server's frame of ``view`` once it has not changed for ``quiet_s``."""
    last, since = page.views()[view][0], time.monotonic()

    def quiet():
        nonlocal last, since
        now = page.views()[view][0]
        if now != last:
            last, since = now, time.monotonic()
        return now if time.monotonic() - since >= quiet_s else None

    return page.wait(quiet, timeout_s, f"{view}'s server frame to settle")


def differs(a, b, level: int = 40) -> bool:
    return a is not None and b is not None and (a.shape != b.shape or
                                                 int(np.abs(a.astype(int) - b.astype(int)).max()) > level)


# ---------------------------------------------------------------------------------------------- packing (no browser)
def test_compact_keeps_integers_and_spreads_floats_over_16_bits():
    ct = np.array([[[-1024, 0, 3071]]], np.float32)
    values, slope, inter = compact(ct)
    assert values.dtype == np.int16 and (slope, inter) == (1.0, 0.0) and values.tolist() == [[[-1024, 0, 3071]]]
    assert compact(np.array([[[0, 7, 255]]], np.int32))[0].dtype == np.uint8
    mri = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32) * 812.5 + 3.25
    values, slope, inter = compact(mri)
    assert values.dtype == np.int16
    assert np.abs(values * slope + inter - mri).max() <= slope      # within one 16-bit step of the range
    values, slope, inter = compact(np.array([[[np.nan, 1.5, 2.5]]], np.float32))    # NaN: 0, the rest kept
    assert np.isfinite([slope, inter]).all() and np.allclose(values * slope + inter, [[[0.0, 1.5, 2.5]]], atol=slope)


def test_packed_voxels_read_back_in_the_order_and_grid_the_page_reads():
    array = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4) - 5
    m = np.diag([0.5, 0.6, 2.0, 1.0])
    m[:3, 3] = [10, -20, 30]
    p = packed(array, m, 1.0, 0.0)
    assert p["shape"] == [2, 3, 4] and p["dtype"] == "int16" and p["ijk_to_ras"] == m.ravel().tolist()
    back = np.frombuffer(gzip.decompress(p["data"]), "<i2").reshape(2, 3, 4)
    assert np.array_equal(back, array)          # [k, j, i] with i fastest, as the page's typed array reads it
    with pytest.raises(ValueError, match="3D array"):
        packed(np.zeros((2, 2), np.uint8), m)


def test_a_big_scan_goes_at_half_resolution_first_on_the_same_place():
    from orbitai.io.volume import Volume
    from orbitai.web import client_slices

    small = Volume.from_ijk_to_ras(np.zeros((4, 4, 4), np.float32), np.eye(4))
    assert scan_steps(small) == (1,)
    m = np.diag([1.0, 1.0, 1.0, 1.0])
    m[:3, 3] = [-5, 6, 7]
    big = Volume.from_ijk_to_ras(np.arange(64 * 64 * 64, dtype=np.float32).reshape(64, 64, 64), m)
    old = client_slices.PROGRESSIVE_VOXELS
    client_slices.PROGRESSIVE_VOXELS = 1000
    try:
        assert scan_steps(big) == (2, 1)
    finally:
        client_slices.PROGRESSIVE_VOXELS = old
    half = scan_level(big, 2)
    assert half["shape"] == [32, 32, 32]
    hm = np.array(half["ijk_to_ras"]).reshape(4, 4)
    # voxel (i, j, k) of the half grid is voxel (2i, 2j, 2k) of the scan: the same RAS point
    assert np.allclose(hm @ [3, 4, 5, 1], m @ [6, 8, 10, 1])


def test_label_maps_and_the_scans_heat_maps_on_its_grid():
    from orbitai.io.volume import Volume
    from orbitai.mrml import new_scene, volume_node_from_volume
    from orbitai.mrml.overlays import overlay_node_from_volume
    from orbitai.mrml.results import mark_results
    from orbitai.mrml.segmentations import segmentation_node_from_labels
    from orbitai.web.client_slices import heat_layers, label_layer

    ctx = new_scene()
    try:
        grid = Volume.from_ijk_to_ras(np.zeros((6, 8, 10), np.float32), np.diag([0.5, 0.5, 2.0, 1.0]))
        scan = volume_node_from_volume(ctx, grid, name="scan")
        labels = np.zeros((6, 8, 10), np.uint8)
        labels[2:4, 3:5, 4:7] = 1
        labels[5, 0, 0:2] = 2
        seg = segmentation_node_from_labels(ctx, labels, scan)
        mark_results([seg], scan)
        layer = label_layer(seg, scan)
        names = [seg.GetSegmentation().GetSegment(sid).GetName() for sid in layer["segments"]]
        assert layer["node"] == seg.GetID() and len(names) == 2 and layer["array"].shape == labels.shape
        # segment n of the node has the value n + 1, voxel for voxel
        for value, sid in enumerate(layer["segments"], start=1):
            label = seg.GetSegmentation().GetSegment(sid).GetLabelValue()
            assert np.array_equal(layer["array"] == value, labels == label)
        assert heat_layers(ctx.scene, scan) == []              # no heat map yet
        heat = overlay_node_from_volume(ctx, grid.with_array(np.linspace(0, 1, labels.size).reshape(labels.shape)),
                                        scan)
        mark_results([heat], scan)
        # every heat map of the scan, shown or not: the page shows, hides and fades them without new data (issue 81)
        [h] = heat_layers(ctx.scene, scan)
        assert h["node"] == heat.GetID() and h["low"] < h["high"] and "opacity" not in h
        assert len(h["colors"]) == 256 and h["colors"][0] != h["colors"][-1]
        assert np.allclose(h["array"], np.linspace(0, 1, labels.size).reshape(labels.shape), atol=1e-6)
        other = volume_node_from_volume(ctx, grid, name="another patient")
        assert heat_layers(ctx.scene, other) == []             # never another scan's heat map
    finally:
        ctx.close()


def test_an_edit_is_sent_as_its_changed_box_and_the_rest_whole_or_named():
    from orbitai.web.client_slices import _pack
    from orbitai.web.overlay_patches import SAME, WHOLE, changed_box, plan

    old = np.zeros((20, 30, 40), np.uint8)
    new = old.copy()
    new[3:5, 10:20, 7] = 1
    new[9, 12, 30] = 2
    assert changed_box(old, old.copy()) is None
    assert changed_box(old, new) == (slice(3, 10), slice(10, 20), slice(7, 31))
    labels = {"kind": "labels", "node": "seg1", "segments": ["a", "b"], "array": old}
    heat = {"kind": "heat", "node": "heat1", "array": np.zeros((4, 4, 4), np.float32), "ijk_to_ras": np.eye(4),
            "low": 0.0, "high": 1.0, "colors": [[0, 0, 0], [255, 0, 0]]}
    previous = {("labels", "seg1"): labels, ("heat", "heat1"): heat}
    edited = [{**labels, "array": new}, dict(heat)]
    how = plan(previous, edited)
    assert how == [changed_box(old, new), SAME]
    # another segment list, a new layer or a changed heat map: whole
    assert plan(previous, [{**labels, "array": new, "segments": ["a"]}]) == [WHOLE]
    assert plan(previous, [{**labels, "node": "seg2"}]) == [WHOLE]
    assert plan(previous, [{**heat, "array": heat["array"] + 1}]) == [WHOLE]
    out = _pack(edited, how, np.eye(4))
    assert out[0]["offset"] == [3, 10, 7] and out[0]["patch"]["shape"] == [7, 10, 24] and "data" not in out[0]
    assert out[1] == {"kind": "heat", "node": "heat1", "low": 0.0, "high": 1.0, "colors": heat["colors"], "same": True}
    # the box's voxels as sent: the edited array's, in the box
    box = np.frombuffer(gzip.decompress(out[0]["patch"]["data"]), np.uint8).reshape(7, 10, 24)
    assert np.array_equal(box, new[3:10, 10:20, 7:31])


# ---------------------------------------------------------------------------------------------- in the browser
def test_the_page_draws_the_slice_and_window_level_without_the_server(page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    node = page.load(PHANTOMS["orbit-ct"])
    page.wait_state("wl_window", lambda v: v is not None, 20)
    client_ready(page, node)
    el = page.driver.find_element("id", "orbitai-slice-Red")
    # a slice step with the page's sync to the server held back: the page's pixels change, the server's do not
    page.driver.execute_script("window.orbitaiSlices.hold = true;")
    src = settled_frame(page, "Red")             # a loaded server may still send the load's last frame
    position = page.state("view_labels")["Red"]["position"]
    before = canvas(page)
    ActionChains(page.driver).move_to_element(el).pause(0.2).send_keys(Keys.PAGE_UP).perform()
    after = page.wait(lambda: (lambda img: [img] if differs(img, before, 20) else None)(canvas(page)), 20,
                      "the page's slice to change")[0]
    assert page.views()["Red"][0] == src                       # the server drew nothing for it
    assert page.state("view_labels")["Red"]["position"] == position
    # released: the server's slice follows the page's
    page.driver.execute_script("window.orbitaiSlices.release();")
    page.wait_state("view_labels", lambda v: v["Red"]["position"] != position, 20)
    # window/level from the server (a preset): the page's pixels follow
    page.set_state("wl_preset", "CT bone (W 1000 / L 400)")
    page.wait_state("wl_window", lambda v: v == 1000.0, 20)
    boned = page.wait(lambda: (lambda img: [img] if img is not None and img.mean() < after.mean() - 3 else None)(
        canvas(page)), 20, "the bone window in the page")[0]
    # window/level by a drag in the page: its pixels change, and the server's display node takes the values
    w, lv = page.state("wl_window"), page.state("wl_level")
    ActionChains(page.driver, duration=10).move_to_element(el).click_and_hold().move_by_offset(-120, 60) \
        .pause(0.1).release().perform()
    page.wait(lambda: differs(canvas(page), boned, 20), 20, "the dragged window/level drawn")
    page.wait(lambda: (page.state("wl_window"), page.state("wl_level")) != (w, lv), 20,
              "the server to take the page's window/level")
    assert page.state("wl_window") < w


def test_a_painted_segment_appears_in_the_pages_view(page, web_data):
    from orbitai.testing.web import centre_ras

    node = page.load(PHANTOMS["orbit-ct"])
    client_ready(page, node)
    assert colored(canvas(page)) < 50                      # a grey CT, no segment yet
    page.new_segment("eyeball_right", 20)
    # a structure's name gives the segment the colour the models' results give that structure (a random one was grey
    # on some draws, and the user could not tell it from the scan)
    rows = page.wait_state("segment_rows", lambda r: any(x["name"] == "eyeball_right" for x in r or []), 20)
    assert [x["color"] for x in rows if x["name"] == "eyeball_right"] == ["#%02x%02x%02x" % LABEL_BY_NAME["eyeball_right"].colour]
    centre = centre_ras(web_data / "orbit-ct/segmentations/orbit_ct_0000.seg.nrrd", 2)
    page.jump(centre)
    page.set_state("ann_brush_mm", 4.0)
    page.choose_tool("paint")           # a tool takes the server's view: the page's canvas steps aside
    page.wait(lambda: canvas(page) is None, 20, "the server's view for the tool")
    page.drag("Red", [page.to_css([centre[0] + dx, centre[1], centre[2]]) for dx in (-3.0, 0.0, 3.0)])
    page.wait_state("ann_voxels", lambda v: v and v > 0, 20)     # ("Add segment" already made it undoable)
    page.set_state("ann_tool", "none")
    try:
        page.wait(lambda: colored(canvas(page) if canvas(page) is not None else np.zeros((1, 1, 3))) > 30, 60,
                  "the painted segment in the page's view")
    except TimeoutError:
        seen = page.driver.execute_script(
            "const S = window.orbitaiSlices; return JSON.stringify({ov: window.trame.state.get('client_overlays'), "
            "mine: S.overlayVersion, layers: S.layers.map((l) => l.kind), rows: window.trame.state.get('segment_rows'),"
            " views: Object.fromEntries(Object.entries(S.views).map(([k, v]) => [k, v.index])), "
            "tool: window.trame.state.get('ann_tool'), voxels: window.trame.state.get('ann_voxels'), "
            "painted: S.layers.map((l) => { const ks = new Set(); let n = 0; for (let i = 0; i < l.arr.length; i++) "
            "if (l.arr[i]) { n++; ks.add(Math.floor(i / (l.dims[0] * l.dims[1]))); } return [n, [...ks]]; }), "
            "dims: S.vol.dims, shown: document.getElementById('orbitai-slice-Red').style.display});")
        raise AssertionError(f"no painted segment in the page's view after 60 s: {seen}") from None
    # the stroke came as its box with the update's notice (no request for it) and no layer whole (issue 81)
    log = page.driver.execute_script("return window.orbitaiSlices.overlayLog || [];")
    boxes = [u for u in log if u["boxes"]]
    assert boxes and all(u["inline"] and not u["whole"] for u in boxes), log


def test_no_server_path_or_secret_in_the_pages_state(page, server, web_data):
    node = page.load(PHANTOMS["orbit-ct"])
    client_ready(page, node)
    dump = page.driver.execute_script(
        "const s = window.trame.state; return JSON.stringify(s.state || (s.getState && s.getState()) || {});")
    state = json.loads(dump)
    assert "client_volume" in state and state["client_volume"]["key"].startswith(node + ":")
    assert server.token not in dump
    assert str(web_data) not in dump


def test_an_edit_with_a_known_box_is_compared_there_only_and_a_chain_with_a_gap_is_not_known():
    from orbitai.web.overlay_patches import NOTHING, SAME, EditBoxes, plan, work_voxels

    # the edits' chain: stamps a -> b -> c with their boxes; b -> c changed nothing
    boxes = EditBoxes()
    first = (slice(2, 4), slice(0, 5), slice(1, 3))
    boxes.record("seg1", "a", "b", first)
    boxes.record("seg1", "b", "c", NOTHING)
    assert boxes.since("seg1", "a", "a") == NOTHING
    assert boxes.since("seg1", "a", "b") == first == boxes.since("seg1", "a", "c")
    boxes.record("seg1", "c", "d", (slice(6, 7), slice(3, 4), slice(0, 9)))
    assert boxes.since("seg1", "b", "d") == (slice(6, 7), slice(3, 4), slice(0, 9))
    assert boxes.since("seg1", "a", "d") == (slice(2, 7), slice(0, 5), slice(0, 9))      # their union
    # a change nobody recorded (stamp e), another node, no stamp: not known
    assert boxes.since("seg1", "a", "e") is None
    assert boxes.since("seg2", "a", "b") is None
    assert boxes.since("seg1", None, "b") is None

    old = np.zeros((10, 10, 10), np.uint8)
    new = old.copy()
    new[3, 4, 5] = 1                    # inside the box
    new[8, 8, 8] = 1                    # outside it: the box is trusted, that voxel is not compared
    labels = {"kind": "labels", "node": "seg1", "segments": ["a"], "array": old, "stamp": "a"}
    previous = {("labels", "seg1"): labels}
    box = (slice(2, 5), slice(2, 6), slice(2, 7))
    assert plan(previous, [{**labels, "array": new, "stamp": "b", "box": box}]) == [
        (slice(3, 4), slice(4, 5), slice(5, 6))]
    assert plan(previous, [{**labels, "array": new, "stamp": "b", "box": NOTHING}]) == [SAME]
    # without a box: the whole map
    assert plan(previous, [{**labels, "array": new, "stamp": "b"}]) == [(slice(3, 9), slice(4, 9), slice(5, 9))]
    # the work: the box's voxels, else the whole map's (a new layer: whole)
    assert work_voxels(previous, [{**labels, "box": box}]) == 3 * 4 * 5
    assert work_voxels(previous, [labels]) == 1000 == work_voxels({}, [{**labels, "box": box}])


def test_a_label_map_is_read_again_in_the_recorded_box_only_and_whole_after_a_change_nobody_recorded():
    from orbitai.io.volume import Volume
    from orbitai.mrml import new_scene, volume_node_from_volume
    from orbitai.mrml.segment_editor import content_stamp, paint_segment, segment_mask
    from orbitai.mrml.segmentations import segmentation_node_from_labels
    from orbitai.web.client_slices import label_layer
    from orbitai.web.overlay_patches import EditBoxes

    ctx = new_scene()
    try:
        scan = volume_node_from_volume(ctx, Volume.from_ijk_to_ras(np.zeros((12, 14, 16), np.float32), np.eye(4)))
        labels = np.zeros((12, 14, 16), np.uint8)
        labels[2:6, 3:8, 4:9] = 1
        labels[9, 10, 11] = 2
        seg = segmentation_node_from_labels(ctx, labels, scan)
        boxes = EditBoxes()
        first = label_layer(seg, scan, None, boxes)
        assert "box" not in first and first["stamp"] == content_stamp(seg)
        sid = first["segments"][0]

        def edit(k: int, record: bool) -> None:
            mask = segment_mask(seg, sid, scan)
            mask[k, 1, 1] = True
            before = content_stamp(seg)
            paint_segment(seg, sid, scan, mask)
            if record:
                boxes.record(seg.GetID(), before, content_stamp(seg), (slice(k, k + 1), slice(1, 2), slice(1, 2)))

        edit(10, record=True)
        second = label_layer(seg, scan, first, boxes)
        assert second["box"] == (slice(10, 11), slice(1, 2), slice(1, 2))
        assert np.array_equal(second["array"], label_layer(seg, scan)["array"]) and second["array"][10, 1, 1] == 1
        assert first["array"][10, 1, 1] == 0             # the layer published before is left as it was
        # a change that was not recorded: read whole
        edit(0, record=False)
        third = label_layer(seg, scan, second, boxes)
        assert "box" not in third and third["array"][0, 1, 1] == 1
    finally:
        ctx.close()
