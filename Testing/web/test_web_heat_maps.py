"""Issue 67.5 in headless Chromium: after a TAO run the shown scan's heat maps are listed with a colour bar (the colour
node's colours over the display window, with its minimum and maximum), an opacity slider and a show/hide box; the views
go to TAO's crop box and a button per box moves them to it; the page draws another heat map's box without the server
(issue 81); another scan shows none of them, and a forged request
for them while it is shown changes nothing."""
from __future__ import annotations

import re

import numpy as np
import pytest
from web_cases import PHANTOMS

from orbitai.testing.web import colored

JOB_TIMEOUT_S = 300


def run_job(page, key: str) -> None:
    page.wait_state(f"{key}_apply_enabled", bool, 30)
    page.click(f"orbitai-{key}-apply")
    page.wait_state(f"{key}_running", bool, 20)
    page.wait_state(f"{key}_running", lambda v: not v, JOB_TIMEOUT_S)


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def _settled_colour(page, view: str = "Red") -> int:
    """The coloured pixels of ``view`` once two frames in a row agree (the server has caught up)."""
    last = [None]

    def same():
        n = colored(page.view_image(view)[1])
        ok = last[0] == n
        last[0] = n
        return ok or None
    page.wait(same, 30, "the view to settle", interval_s=0.5)
    return int(last[0])


def _page_view(page, view: str = "Red") -> np.ndarray:
    """The page's own drawing of ``view`` (its canvas), RGB as int."""
    import base64
    import io

    from PIL import Image

    url = page.driver.execute_script(
        "return document.getElementById('orbitai-slice-' + arguments[0]).toDataURL('image/png');", view)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")).astype(int)


@pytest.mark.slow  # a TAO run in the browser (~1-2 min on 2 busy cores); the MRML side: mrml/test_heat_map_list.py
def test_heat_maps_colour_bar_opacity_hide_and_the_crop_boxes(page):
    tao = page.load(PHANTOMS["tao"])
    page.set_state("module", "tao")
    run_job(page, "tao")
    assert page.state("tao_error") == "", page.state("tao_error")

    # the views went to the first crop box (the right eye's): every view through its centre
    boxes = page.wait_state("result_boxes", lambda b: len(b) == 2, 20)
    assert [b["name"] for b in boxes] == ["TAO crop right", "TAO crop left"]
    for view in ("Red", "Yellow", "Green"):
        page.wait(lambda v=view: page._on_slice(boxes[0]["center"], v), 20, f"{view} through the right crop")
    # a button per box: the left one
    page.click("orbitai-box-jump-1")
    page.wait(lambda: page._on_slice(boxes[1]["center"], "Yellow"), 20, "the sagittal view through the left crop")
    page.click("orbitai-box-jump-0")
    page.wait(lambda: page._on_slice(boxes[0]["center"], "Yellow"), 20, "the sagittal view back at the right crop")

    # both heat maps listed, the shown one with its colour bar
    maps = page.wait_state("heat_maps", lambda m: len(m) == 2, 20)
    assert [m["name"] for m in maps] == ["TAO occlusion", "TAO Grad-CAM"]
    assert [m["shown"] for m in maps] == [True, False]
    bar = page.element("orbitai-heat-map-colorbar-0")
    assert bar.is_displayed()
    gradient = bar.find_element("css selector", ".orbitai-colorbar").value_of_css_property("background-image")
    assert gradient.startswith("linear-gradient") and _rgb(maps[0]["colors"][0]) in gradient \
        and _rgb(maps[0]["colors"][-1]) in gradient, gradient
    assert maps[0]["colors"][0] != maps[0]["colors"][-1]
    ticks = [t.text for t in bar.find_elements("css selector", ".orbitai-colorbar-tick")]
    assert ticks == maps[0]["ticks"] and float(ticks[0]) == pytest.approx(maps[0]["low"], abs=1e-3) \
        and float(ticks[-1]) == pytest.approx(maps[0]["high"], rel=1e-2), ticks
    assert not page.driver.find_elements("id", "orbitai-heat-map-colorbar-1"), "a hidden map's colour bar is drawn"

    # hide: the heat map's colour goes from the views (the crop boxes' outlines stay); show: back
    shown = _settled_colour(page)
    page.driver.execute_script("arguments[0].click();", page.element("orbitai-heat-map-shown-0"))
    page.wait_state("heat_maps", lambda m: not m[0]["shown"], 20)
    hidden = page.wait(lambda: (lambda n: n if n < shown - 300 else None)(_settled_colour(page)), 30,
                       "the heat map hidden")
    page.driver.execute_script("arguments[0].click();", page.element("orbitai-heat-map-shown-1"))
    page.wait_state("heat_maps", lambda m: m[1]["shown"] and not m[0]["shown"], 20)
    page.driver.execute_script("arguments[0].click();", page.element("orbitai-heat-map-shown-0"))
    page.wait_state("heat_maps", lambda m: m[0]["shown"] and not m[1]["shown"], 20)     # one at a time
    page.wait(lambda: _settled_colour(page) > hidden + 0.5 * (shown - hidden) or None, 30, "the heat map back")

    # opacity: the slider's value reaches the views' foreground
    page.driver.execute_script("window.trame.trigger('orbitai_heat_map_opacity', [arguments[0], 0.9]);", maps[0]["id"])
    page.wait_state("heat_maps", lambda m: m[0]["opacity"] == 0.9, 20)
    _settled_colour(page)
    strong = page.view_image("Red")[1].astype(int)
    page.driver.execute_script("window.trame.trigger('orbitai_heat_map_opacity', [arguments[0], 0.1]);", maps[0]["id"])
    page.wait_state("heat_maps", lambda m: m[0]["opacity"] == 0.1, 20)
    _settled_colour(page)
    faint = page.view_image("Red")[1].astype(int)
    spread = lambda img: float((img.max(axis=2) - img.min(axis=2)).mean())    # noqa: E731 - colour saturation
    assert spread(faint) < spread(strong), "the opacity does not reach the views"

    # in the page alone (issue 81): the other map's box redraws the page's own views with the page cut off from the
    # server (every trigger held, no websocket message sent); the server records it afterwards
    before = _page_view(page)
    page.cut_off()
    try:
        page.driver.execute_script("arguments[0].click();", page.element("orbitai-heat-map-shown-1"))
        page.wait(lambda: np.abs(_page_view(page) - before).max() > 40, 20, "the other heat map drawn by the page")
        calls, sent = page.sent()
    finally:
        page.reconnect()
    assert calls == ["orbitai_heat_map_shown"] and sent == 0, (calls, sent)
    page.wait_state("heat_maps", lambda m: m[1]["shown"] and not m[0]["shown"], 20)

    # another scan: none of these heat maps or boxes; a forged request for them changes nothing
    page.load(PHANTOMS["brain-flair"])
    page.wait_state("heat_maps", lambda m: m == [], 20)
    assert page.state("result_boxes") == []
    before = _settled_colour(page)
    page.driver.execute_script("window.trame.trigger('orbitai_heat_map_shown', [arguments[0], true]);", maps[0]["id"])
    page.driver.execute_script("window.trame.trigger('orbitai_jump_box', [arguments[0]]);", boxes[0]["id"])
    assert page.state("heat_maps") == []
    assert _settled_colour(page) <= before + 50, "another patient's heat map was shown over this scan"
    assert not re.search(r"/tmp/|/home/", str(page.state("heat_maps")))
    page.set_state("input_volume", tao)
    page.wait_state("heat_maps", lambda m: len(m) == 2, 20)
    assert len(page.wait_state("result_boxes", lambda b: len(b) == 2, 20)) == 2


_VIEWS = ("Red", "Yellow", "Green")
#: (the page's own slices, an annotation tool active): every way a scan is on screen
_MODES = ((True, None), (True, "paint"), (False, None), (False, "paint"))


def _drawn_in_page(page, view: str) -> bool:
    return bool(page.driver.execute_script(
        "const c = document.getElementById('orbitai-slice-' + arguments[0]); return !!c && c.style.display !== 'none';",
        view))


def _on_screen_colour(page, view: str) -> int:
    """Coloured pixels of what ``view`` shows now: the page's canvas where it draws the view, else the server's frame,
    once two looks in a row agree (the server has caught up)."""
    last = [None]

    def same():
        img = _page_view(page, view) if _drawn_in_page(page, view) else page.view_image(view)[1]
        n = colored(img)
        ok = last[0] == n
        last[0] = n
        return ok or None
    page.wait(same, 30, f"{view} to settle", interval_s=0.5)
    return int(last[0])


def _show(page, scan: str, in_page: bool, tool: str | None) -> None:
    """``scan`` shown with the page's slices on or off and ``tool`` (or none) active."""
    page.set_state("ann_tool", "none")
    page.wait_state("ann_tool_active", lambda v: v in (None, "", "none"), 30)
    if page.state("input_volume") != scan:
        page.set_state("input_volume", scan)
    page.wait_state("input_volume", lambda v: v == scan, 30)
    page.set_state("client_slices", in_page)
    if tool is not None:
        page.new_segment("mark")
        page.choose_tool(tool)
    elif in_page:
        page.wait(lambda: all(_drawn_in_page(page, v) for v in _VIEWS), 60, "the page's own slices")


@pytest.mark.slow  # a TAO run in the browser (~1-2 min on 2 busy cores)
def test_a_scan_switch_shows_nothing_of_the_other_scan_in_either_drawing_with_or_without_a_tool(page):
    """Issue 81, bar 1: after TAO on one scan (two heat maps, a colour legend in the server's views, two crop boxes),
    another scan shows none of it: browser-drawn and server-drawn views, without and with an annotation tool active
    (the page's canvas steps aside for a tool, so the server's views are on screen): no heat map, colour bar or box in
    the page's state and DOM, and no more coloured pixels in any view than that scan showed before TAO ever ran."""
    ct = page.load(PHANTOMS["orbit-ct"])
    before = {}
    for in_page, tool in _MODES:
        _show(page, ct, in_page, tool)
        before[(in_page, tool)] = {v: _on_screen_colour(page, v) for v in _VIEWS}
    tao = page.load(PHANTOMS["tao"])
    _show(page, tao, True, None)
    page.set_state("module", "tao")
    run_job(page, "tao")
    assert page.state("tao_error") == "", page.state("tao_error")
    page.wait_state("heat_maps", lambda m: len(m) == 2 and m[0]["shown"], 20)
    for in_page, tool in _MODES:
        _show(page, tao, True, None)                      # the TAO scan with its heat map and boxes, then the CT
        page.wait_state("heat_maps", lambda m: len(m) == 2, 20)
        _show(page, ct, in_page, tool)
        page.wait_state("heat_maps", lambda m: m == [], 20)
        assert page.state("result_boxes") == []
        assert not page.driver.find_elements("css selector", ".orbitai-colorbar"), "a colour bar over the CT"
        for view in _VIEWS:
            got, was = _on_screen_colour(page, view), before[(in_page, tool)][view]
            assert got <= was + 50, (f"{view}, page slices {in_page}, tool {tool}: {got} coloured pixels on the CT "
                                     f"after TAO on another scan, {was} before")
