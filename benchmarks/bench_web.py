"""The web app (issues 35, 49) in headless Chromium on this machine: launch to the first rendered frame, a SmartPencil
click to the updated view, and the viewer's interactions on a 1 mm whole-head MRI.

* Launch: ``orbitai web SCAN`` started as a process (a phantom CT, seed 7), the page opened as soon as the server
  answers, until every slice view shows its first frame (time from the process start); median of `LAUNCHES`. The
  reference in the same run is the interpreter and package start alone (``python -m orbitai --version``).
* Click: SmartPencil on a new ``eyeball_right`` segment; each click is timed from the WebDriver action to the first
  frame of the axial view whose pixels differ from the frame before it (the action's own pauses, ~0.1 s, included).
  The first click builds the superpixels (reported apart); then `CLICKS` clicks alternate add and shift-click remove at
  points spread over the eyeball. The reference is `AnnotationLogic.smartPencilClick` headless in this process on the
  same image and points (its superpixels cached), so the ratio is what the browser round trip adds.
* Viewer (issue 49): a 1 mm T1-like whole head rendered from SynthSeg head 1's label map (`head_volume`), served
  alone; launch to the first frame, then `VIEWER_REPEATS` of each interaction in the axial view, each timed from the
  WebDriver action to the first frame whose pixels differ: a slice step (the Up arrow key over the view; and a
  mouse-wheel notch), zoom
  (right-button drag), pan (middle-button drag) and window/level (left drag in the window/level mouse mode).
* Browser-drawn slices (issue 67, ``--slices``; `orbitai.web.client_slices`): the same head and interactions in one
  server, each timed from the WebDriver action to the page's canvas having drawn a frame (its frame counter, then its
  pixels checked to differ; a drag from its move, the button pressed before it untimed), and the server-rendered path
  in the same run (a drag timed whole, press to release, as in the earlier runs) (the page's switch ``client_slices`` off,
  timed as above); launch to the page's first drawn slice from the process start (idle: the median of `LAUNCHES`
  launches, after 30 s for what ran before to settle). Run once idle and once while a CPU-bound job of
  `LOAD_PROCESSES` processes runs; ``uptime``'s load average is recorded with every phase.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("OMP_NUM_THREADS", "2")

from benchmarks.common import write_result

LAUNCHES = 3
#: The CPU-bound job the browser-drawn slices are measured under: this many busy processes (a model job's two cores).
LOAD_PROCESSES = 2
CLICKS = 10
SEED = 7
VIEWER_REPEATS = 15


def head_volume(path: Path, template: int = 1) -> Path:
    """A 1 mm T1-like whole head from SynthSeg head ``template``'s label map (the T1 tissue means, noise, a little
    blur), written to ``path``."""
    import numpy as np
    from scipy import ndimage as ndi

    from orbitai.io import write_volume
    from orbitai.phantoms.heads import MEANS, TISSUES, head_labels, tissue_map

    labels = head_labels(template, step=1)
    rng = np.random.default_rng(template)
    means = np.array([MEANS["T1"].get(t, 0.0) for t in TISSUES])
    img = ndi.gaussian_filter(means[tissue_map(labels.array)], 0.6)
    img = np.abs(img + 0.02 * float(img.max()) * rng.standard_normal(img.shape)).astype(np.float32)
    write_volume(labels.with_array(img), path)
    return path


def _points(centre: list[float], n: int) -> list[list[float]]:
    """``n`` points around ``centre`` on its axial slice (within 3 mm: inside an eyeball)."""
    angles = [2 * 3.14159 * i / n for i in range(n)]
    import math

    return [[centre[0] + 3.0 * math.cos(a), centre[1] + 3.0 * math.sin(a), centre[2]] for a in angles]


def _changed_frame(page, view: str, before_src: str, before_img, timeout_s: float = 30.0) -> None:
    import numpy as np

    deadline = time.monotonic() + timeout_s
    src = before_src
    while time.monotonic() < deadline:
        current = page.views()[view][0]
        if current and current != src:
            src, img = page.view_image(view)
            if img.shape != before_img.shape or np.abs(img.astype(int) - before_img.astype(int)).max() > 40:
                return
        time.sleep(0.01)
    raise TimeoutError(f"no changed frame of {view} within {timeout_s:.0f} s")


def main() -> Path:
    from orbitai.testing.web import WebPage, browser, centre_ras, web_server

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run([sys.executable, "-m", "orbitai", "phantom", "orbit-ct", "--n", "1", "--seed", str(SEED),
                        "--out", str(root / "ct"), "--montage-cases", "0"], check=True, capture_output=True)
        scan = root / "ct/images/orbit_ct_0000.nrrd"
        truth = root / "ct/segmentations/orbit_ct_0000.seg.nrrd"

        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "orbitai", "--version"], check=True, capture_output=True)
        python_start = time.monotonic() - t0

        launches, clicks, first_click = [], [], None
        with browser() as driver:
            for n in range(LAUNCHES):
                with web_server(str(scan)) as srv:
                    page = WebPage(driver, srv.url)
                    page.wait_views(120)
                    launches.append(time.monotonic() - srv.started)
                    if n < LAUNCHES - 1:
                        continue
                    # clicks on the last server
                    page.set_state("module", "annotate")
                    page.click("orbitai-ann-new")
                    page.wait_state("ann_segmentation", bool, 20)
                    page.set_state("ann_new_name", "eyeball_right")
                    time.sleep(0.3)
                    page.click("orbitai-ann-add")
                    page.wait_state("ann_voxels", lambda v: v == 0, 20)
                    centre = centre_ras(truth, 2)
                    page.jump(centre)
                    page.set_state("ann_tool", "smartpencil")
                    time.sleep(0.5)
                    points = _points(centre, CLICKS)
                    for i, p in enumerate([centre, *points]):
                        src, img = page.view_image("Red")
                        t = time.monotonic()
                        page.drag("Red", [page.to_css(p)], shift=i > 0 and i % 2 == 0, pause_s=0.03)
                        _changed_frame(page, "Red", src, img, 120 if i == 0 else 30)
                        elapsed = time.monotonic() - t
                        if i == 0:
                            first_click = elapsed
                        else:
                            clicks.append(elapsed)
                        page.wait_state("ann_busy", lambda v: not v, 30)

        reference = _headless_clicks(scan, [centre, *points])
        viewer, viewer_launch, head_shape = _viewer_latency(root)

    notes = {
        "scan": f"phantom orbit-ct seed {SEED} ({scan.name}), views 3 slice views in a 1600x1000 headless Chromium",
        "launch_s": [round(x, 2) for x in launches],
        "click_s": [round(x, 3) for x in clicks],
        "click_headless_s": [round(x, 4) for x in reference],
        "method": __doc__.split("\n\n", 1)[1].strip(),
        "viewer_scan": f"1 mm T1-like whole head from SynthSeg head 1, {head_shape} voxels",
        "viewer_s": {k: [round(x, 3) for x in v] for k, v in viewer.items()},
    }
    metrics = {
        "launch_to_first_frame_s": statistics.median(launches),
        "python_start_s": python_start,
        "launch_over_python_start": statistics.median(launches) / python_start,
        "smartpencil_first_click_s": float(first_click or 0.0),
        "smartpencil_click_to_view_s": statistics.median(clicks),
        "smartpencil_click_to_view_max_s": max(clicks),
        "smartpencil_headless_click_s": statistics.median(reference),
        "click_over_headless": statistics.median(clicks) / statistics.median(reference),
        "whole_head_launch_to_first_frame_s": viewer_launch,
    }
    for name, times in viewer.items():
        metrics[f"{name}_median_s"] = statistics.median(times)
        metrics[f"{name}_p90_s"] = _p90(times)
    targets = {"launch_to_first_frame_s": "<= 20", "smartpencil_click_to_view_s": "<= 1",
               "whole_head_launch_to_first_frame_s": "<= 10",
               **{f"{n}_median_s": "<= 0.25" for n in viewer}, **{f"{n}_p90_s": "<= 0.5" for n in viewer}}
    return write_result("web", metrics, targets, notes)


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def _viewer_latency(root: Path) -> tuple[dict[str, list[float]], float, list[int]]:
    """Each viewer interaction `VIEWER_REPEATS` times on the whole head: input to the first changed frame (s)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.mouse_button import MouseButton
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.keys import Keys

    from orbitai.io import read_volume
    from orbitai.testing.web import WebPage, browser, web_server

    head = head_volume(root / "head_1mm.nrrd")
    shape = list(read_volume(head).shape)
    out: dict[str, list[float]] = {"slice_step": [], "slice_step_wheel": [], "zoom": [], "pan": [],
                                   "window_level": []}
    with browser() as driver, web_server(str(head)) as srv:
        page = WebPage(driver, srv.url)
        page.wait_views(120)
        launch = time.monotonic() - srv.started
        time.sleep(2.0)
        el = page.view_element("Red")

        def drag(button: int, dx: int, dy: int) -> None:
            ab = ActionBuilder(driver, duration=0)
            ab.pointer_action.move_to(el, 0, 0).pointer_down(button).pause(0.02).move_by(dx // 2, dy // 2) \
                .pause(0.02).move_by(dx - dx // 2, dy - dy // 2).pause(0.02).pointer_up(button)
            ab.perform()

        ActionChains(driver, duration=0).move_to_element(el).perform()
        actions = {
            "slice_step": lambda i: ActionChains(driver, duration=0).send_keys(
                Keys.ARROW_UP if i % 2 == 0 else Keys.ARROW_DOWN).perform(),
            "slice_step_wheel": lambda i: ActionChains(driver, duration=0).scroll_from_origin(
                ScrollOrigin.from_element(el), 0, 100 if i % 2 == 0 else -100).perform(),
            "zoom": lambda i: drag(MouseButton.RIGHT, 0, 20 if i % 2 == 0 else -20),
            "pan": lambda i: drag(MouseButton.MIDDLE, 25 if i % 2 == 0 else -25, 0),
            "window_level": lambda i: drag(MouseButton.LEFT, 80 if i % 2 == 0 else -80, 30 if i % 2 == 0 else -30),
        }
        for name, act in actions.items():
            for i in range(VIEWER_REPEATS + 1):
                src, img = page.view_image("Red")
                t = time.monotonic()
                act(i)
                try:
                    _changed_frame(page, "Red", src, img, 30)
                except TimeoutError:
                    raise TimeoutError(f"{name}: no changed frame of the axial view within 30 s") from None
                if i:                   # the first of each: warm-up, not counted
                    out[name].append(time.monotonic() - t)
                time.sleep(0.3)         # the views at rest again
    return out, launch, shape


def _headless_clicks(scan: Path, points: list[list[float]]) -> list[float]:
    """`AnnotationLogic.smartPencilClick` on a headless scene: the same image, segment and points (first click, which
    builds the superpixels, not counted)."""
    from orbitai.io import read_volume
    from orbitai.mrml import new_scene, volume_node_from_volume
    from orbitai.app.annotation.logic import AnnotationLogic

    ctx = new_scene()
    try:
        volume = volume_node_from_volume(ctx, read_volume(scan), name="ct")
        seg = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        seg.SetReferenceImageGeometryParameterFromVolumeNode(volume)
        sid = seg.GetSegmentation().AddEmptySegment("eyeball_right", "eyeball_right")
        logic = AnnotationLogic(ctx.scene, ctx.app_logic)
        logic.setInputs(seg, volume, sid)
        times = []
        for i, p in enumerate(points):
            t = time.perf_counter()
            result = logic.smartPencilClick(ras=p, remove=i > 0 and i % 2 == 0)
            if not result.ok:
                raise RuntimeError(result.message)
            if i > 0:
                times.append(time.perf_counter() - t)
        return times
    finally:
        ctx.close()


_FRAMES_JS = "const S = window.orbitaiSlices; return S ? (S.frames[arguments[0]] || 0) : 0;"
_CANVAS_JS = "return document.getElementById('orbitai-slice-' + arguments[0]).toDataURL('image/png');"


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _canvas(driver, view: str):
    import base64
    import io

    import numpy as np
    from PIL import Image

    url = driver.execute_script(_CANVAS_JS, view)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def _client_frame(driver, view: str, frames: int, before, timeout_s: float = 30.0) -> float:
    """Wait for the page's canvas to draw a frame after frame number ``frames`` whose pixels differ from ``before``;
    the time that frame's number was seen (time.monotonic(), before its pixels were read to check)."""
    import numpy as np

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        n = driver.execute_script(_FRAMES_JS, view)
        if n > frames:
            seen = time.monotonic()
            after = _canvas(driver, view)
            # the page draws exactly (no lossy encoding): any changed pixel is the input's effect; the server's
            # images are JPEG, hence its threshold of 40 (`_changed_frame`)
            if after.shape != before.shape or int(np.abs(after.astype(int) - before.astype(int)).max()) > 2:
                return seen
            frames = n
        time.sleep(0.005)
    raise TimeoutError(f"no changed frame of the page's {view} canvas within {timeout_s:.0f} s")


def _timed_frame(driver, act: Callable[[], Any], view: str = "Red") -> float:
    """Seconds from ``act()`` to the page's ``view`` canvas drawing a frame whose pixels differ from those before it
    (`_client_frame`; TimeoutError when none comes)."""
    before, n = _canvas(driver, view), driver.execute_script(_FRAMES_JS, view)
    t = time.monotonic()
    act()
    return _client_frame(driver, view, n, before) - t


def _interactions(driver, el) -> dict[str, Any]:
    """Each interaction as (press, act, release, whole): ``act(i)`` is the timed input on the page's canvas; a drag's
    button press before it and its release after it are not timed (the press changes nothing on screen; WebDriver
    keeps the button down between the calls), so a drag is timed like a key press, from the one input that changes
    the view to its pixels. ``whole(i)``: the interaction in one WebDriver call (the server's view, timed whole)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.mouse_button import MouseButton
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.keys import Keys

    def pointer(build) -> None:
        ab = ActionBuilder(driver, duration=0)
        build(ab.pointer_action)
        ab.perform()

    def drag(button: int, dx: int, dy: int) -> tuple[Any, Any, Any, Any]:
        def whole(i: int) -> None:              # one WebDriver call, as the earlier runs timed every drag
            sx, sy = (dx, dy) if i % 2 == 0 else (-dx, -dy)
            pointer(lambda p: p.move_to(el, 0, 0).pointer_down(button).pause(0.02).move_by(sx // 2, sy // 2)
                    .pause(0.02).move_by(sx - sx // 2, sy - sy // 2).pause(0.02).pointer_up(button))

        return (lambda i: pointer(lambda p: p.move_to(el, 0, 0).pointer_down(button).pause(0.02)),
                lambda i: pointer(lambda p: p.move_by(dx if i % 2 == 0 else -dx, dy if i % 2 == 0 else -dy)),
                lambda i: pointer(lambda p: p.pointer_up(button)), whole)

    def key(i: int) -> None:
        ActionChains(driver, duration=0).send_keys(Keys.ARROW_UP if i % 2 == 0 else Keys.ARROW_DOWN).perform()

    def wheel(i: int) -> None:
        ActionChains(driver, duration=0).scroll_from_origin(ScrollOrigin.from_element(el), 0,
                                                            100 if i % 2 == 0 else -100).perform()

    return {
        "slice_step": (None, key, None, key),
        "slice_step_wheel": (None, wheel, None, wheel),
        "zoom": drag(MouseButton.RIGHT, 0, 20),
        "pan": drag(MouseButton.MIDDLE, 25, 0),
        "window_level": drag(MouseButton.LEFT, 80, 30),
    }


#: A window preset set as the page's select sets it, timed in the page: the state's change to the end of the page's
#: drawing (the preset is drawn in the same turn: ``presetInPage`` in static/orbitai_slices.js) and to the next frame.
_PRESET_JS = """const done = arguments[arguments.length - 1], t0 = performance.now();
window.trame.state.set('wl_preset', arguments[0]);
const t1 = performance.now();
requestAnimationFrame(() => done([t1 - t0, performance.now() - t0]));"""


def _page_only_interactions(driver, el, presets: list[str]) -> dict[str, Any]:
    """What only the page's canvas answers, as (press, act, release, whole) with no ``whole``: the crosshair (Shift +
    move, Slicer's linked cursor; the page records its input-to-frame time) and a window preset (two presets in turn,
    each timed in the page by `_PRESET_JS` into ``preset_times``)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    preset_times: list[list[float]] = []

    def cross(i: int) -> None:
        dx, dy = (30, 15) if i % 2 == 0 else (-30, -15)
        ActionChains(driver, duration=0).key_down(Keys.SHIFT).move_to_element_with_offset(el, dx, dy) \
            .key_up(Keys.SHIFT).perform()

    def preset(i: int) -> None:
        preset_times.append(driver.execute_async_script(_PRESET_JS, presets[i % 2]))

    def crosshair_on(i: int) -> None:       # the crosshair shown (the toolbar's toggle), so that a move redraws it
        driver.execute_script("window.trame.state.set('crosshair', true);")

    return {"crosshair": (crosshair_on, cross, None, None), "window_preset": (None, preset, None, None),
            "_preset_times": preset_times}


def _slices_phase(head: Path) -> dict[str, Any]:
    """One launch of ``orbitai web HEAD``: launch to the server's and to the page's first frame, then every interaction
    `VIEWER_REPEATS` times on the page's canvas, then on the server's view (``client_slices`` off)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from orbitai.testing.web import WebPage, browser, web_server

    out: dict[str, Any] = {"uptime": [_uptime()]}
    with browser() as driver, web_server(str(head)) as srv:
        page = WebPage(driver, srv.url)
        page.wait_views(120)
        out["server_launch_s"] = time.monotonic() - srv.started
        page.wait(lambda: driver.execute_script(_FRAMES_JS, "Red") > 0, 120, "the page's first drawn slice",
                  interval_s=0.02)
        out["client_launch_s"] = time.monotonic() - srv.started
        time.sleep(2.0)
        el = driver.find_element(By.ID, "orbitai-slice-Red")
        ActionChains(driver, duration=0).move_to_element(el).perform()
        client: dict[str, list[float]] = {}
        in_page: dict[str, list[float]] = {}
        presets = [p for p in page.state("wl_presets") if p in page.state("wl_preset_values")][-2:]
        page_only = _page_only_interactions(driver, el, presets)
        preset_times = page_only.pop("_preset_times")
        for name, (press, act, release, _whole) in {**_interactions(driver, el), **page_only}.items():
            client[name] = []
            driver.execute_script("window.orbitaiSlices.latency = [];")
            for i in range(VIEWER_REPEATS + 1):
                if press:
                    press(i)
                    time.sleep(0.1)
                try:
                    took = _timed_frame(driver, lambda a=act, n=i: a(n))
                except TimeoutError:
                    raise TimeoutError(f"{name}: no changed frame of the page's canvas within 30 s") from None
                if release:
                    release(i)
                if i:
                    client[name].append(took)
                time.sleep(0.3)
            in_page[name] = [x / 1000.0 for x in driver.execute_script("return window.orbitaiSlices.latency;")]
        in_page["window_preset"] = [t[0] / 1000.0 for t in preset_times[1:]]         # the first untimed, as above
        in_page["window_preset_frame"] = [t[1] / 1000.0 for t in preset_times[1:]]
        out["presets"] = presets
        out["uptime"].append(_uptime())
        page.set_state("client_slices", False)
        page.wait(lambda: not el.is_displayed(), 20, "the server's view back")
        time.sleep(1.0)
        server = _server_interactions(page, driver)
        out["uptime"].append(_uptime())
    out["client_s"], out["server_s"], out["in_page_s"] = client, server, in_page
    return out


def _server_interactions(page, driver) -> dict[str, list[float]]:
    from selenium.webdriver.common.action_chains import ActionChains

    el = page.view_element("Red")
    ActionChains(driver, duration=0).move_to_element(el).perform()
    out: dict[str, list[float]] = {}
    for name, (_press, _act, _release, whole) in _interactions(driver, el).items():
        out[name] = []
        for i in range(VIEWER_REPEATS + 1):
            src, img = page.view_image("Red")
            t = time.monotonic()
            whole(i)                               # the server's view: the whole drag timed, as in earlier runs
            try:
                _changed_frame(page, "Red", src, img, 30)
            except TimeoutError:
                raise TimeoutError(f"{name}: no changed frame of the server's Red view within 30 s") from None
            if i:
                out[name].append(time.monotonic() - t)
            time.sleep(0.3)
    return out


def _launch(driver: Any, head: Path) -> tuple[float, float]:
    """One launch of ``orbitai web HEAD`` opened in ``driver``: (server's, page's first frame) seconds from the process
    start, as `_slices_phase` times them."""
    from orbitai.testing.web import WebPage, web_server

    with web_server(str(head)) as srv:
        page = WebPage(driver, srv.url)
        page.wait_views(120)
        server = time.monotonic() - srv.started
        page.wait(lambda: driver.execute_script(_FRAMES_JS, "Red") > 0, 120, "the page's first drawn slice",
                  interval_s=0.02)
        return server, time.monotonic() - srv.started


def _launches(head: Path, n: int, open_browser: bool = False) -> list[tuple[float, float]]:
    """``n`` more launches of ``orbitai web HEAD``: a fresh browser each, or (``open_browser``) one browser already
    running that opens each launch's page (each on its own port, so nothing of the last page is cached)."""
    from orbitai.testing.web import browser

    out = []
    if open_browser:
        with browser() as driver:
            driver.get("about:blank")
            for _ in range(n):
                out.append(_launch(driver, head))
                time.sleep(2.0)
        return out
    for _ in range(n):
        with browser() as driver:
            out.append(_launch(driver, head))
        time.sleep(2.0)
    return out


def _import_seconds(n: int) -> list[float]:
    """Seconds for a Python process to import the web server's modules and exit, ``n`` times."""
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "import orbitai.web.app"], check=True)
        out.append(time.monotonic() - t0)
    return out


def _stored_web() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """results/web.json as stored (empty if none), and copies of its metrics, targets and notes to merge a run into."""
    import json

    from benchmarks.common import RESULTS

    old = json.loads((RESULTS / "web.json").read_text()) if (RESULTS / "web.json").exists() else {}
    return old, dict(old.get("metrics", {})), dict(old.get("targets", {})), dict(old.get("notes", {}))


def slices_main() -> Path:
    """``--slices``: the browser-drawn slices against the server-rendered path, idle then under `LOAD_PROCESSES`
    busy processes; merged into results/web.json (the other figures kept with their own date)."""
    with tempfile.TemporaryDirectory() as tmp:
        head = head_volume(Path(tmp) / "head_1mm.nrrd")
        time.sleep(30.0)                # whatever ran before settles
        idle = _slices_phase(head)
        idle["launches"] = [(idle["server_launch_s"], idle["client_launch_s"]), *_launches(head, LAUNCHES - 1)]
        idle["uptime"].append(_uptime())
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(LOAD_PROCESSES)]
        try:
            time.sleep(5.0)             # the load average climbs
            loaded = _slices_phase(head)
        finally:
            for p in busy:
                p.kill()
                p.wait()
    old, metrics, targets, notes = _stored_web()
    for tag, phase in (("idle", idle), ("loaded", loaded)):
        launches = phase.get("launches", [(phase["server_launch_s"], phase["client_launch_s"])])
        metrics[f"slices_{tag}_client_launch_s"] = statistics.median(c for _, c in launches)
        metrics[f"slices_{tag}_server_launch_s"] = statistics.median(s for s, _ in launches)
        for name, times in phase["in_page_s"].items():         # the page's own input-to-frame time, every event
            if times:
                metrics[f"slices_{tag}_in_page_{name}_median_s"] = statistics.median(times)
                metrics[f"slices_{tag}_in_page_{name}_p90_s"] = _p90(times)
        for path in ("client", "server"):
            for name, times in phase[f"{path}_s"].items():
                metrics[f"slices_{tag}_{path}_{name}_median_s"] = statistics.median(times)
                metrics[f"slices_{tag}_{path}_{name}_p90_s"] = _p90(times)
    for tag in ("idle", "loaded"):
        for name in ("slice_step", "window_level"):
            targets[f"slices_{tag}_client_{name}_median_s"] = "<= 0.1"
            targets[f"slices_{tag}_client_{name}_p90_s"] = "<= 0.2"
    targets["slices_idle_client_launch_s"] = "<= 5"
    targets["slices_loaded_client_launch_s"] = "<= 10"
    notes["slices"] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "what": "slices_*: issue 67's browser-drawn slices (client) against the server-rendered path (server) in the "
                "same server, 1 mm whole head from SynthSeg head 1, 1600x1000 headless Chromium without a GPU; "
                "client/server: WebDriver action to the first changed frame seen by polling (WebDriver's own dispatch "
                "and polling included); in_page: each input event's timeStamp to the end of the page's drawing of it; "
                f"loaded: {LOAD_PROCESSES} busy processes running; the other metrics are from the date above",
        "uptime_idle": idle["uptime"], "uptime_loaded": loaded["uptime"],
        "idle_launches_s": [[round(x, 2) for x in pair] for pair in idle["launches"]],
        "samples_s": {tag: {p: {k: [round(x, 3) for x in v] for k, v in phase[f"{p}_s"].items()}
                            for p in ("client", "server")} for tag, phase in (("idle", idle), ("loaded", loaded))},
    }
    return write_result("web", metrics, targets, notes, measured=old or None,
                        derived="slices_* measured at notes.derived's date (bench_web.py --slices)")


def launches_main() -> Path:
    """``--launches``: idle launch to the page's first slice, `LAUNCHES` times with a fresh browser each and `LAUNCHES`
    times with one browser already running; merged into results/web.json (the other figures kept with their date)."""
    with tempfile.TemporaryDirectory() as tmp:
        head = head_volume(Path(tmp) / "head_1mm.nrrd")
        time.sleep(30.0)                # whatever ran before settles
        uptime = [_uptime()]
        fresh = _launches(head, LAUNCHES)
        uptime.append(_uptime())
        opened = _launches(head, LAUNCHES, open_browser=True)
        uptime.append(_uptime())
        imports = _import_seconds(LAUNCHES)
    old, metrics, targets, notes = _stored_web()
    metrics["slices_idle_client_launch_s"] = statistics.median(c for _, c in fresh)
    metrics["slices_idle_server_launch_s"] = statistics.median(s for s, _ in fresh)
    metrics["slices_idle_client_launch_open_browser_s"] = statistics.median(c for _, c in opened)
    metrics["web_server_imports_s"] = statistics.median(imports)
    targets["slices_idle_client_launch_s"] = "<= 5"
    notes["launches"] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "what": "idle launch of orbitai web (1 mm whole head from SynthSeg head 1) to the page's first drawn slice, from "
                "the server process's start: fresh browser (a new headless Chromium per launch, started before the "
                "server) and open browser (one Chromium already running; each launch's page on its own port)",
        "uptime": uptime, "fresh_browser_s": [[round(x, 2) for x in p] for p in fresh],
        "open_browser_s": [[round(x, 2) for x in p] for p in opened],
        "imports_s": [round(x, 2) for x in imports],
        "imports_what": "python -c 'import orbitai.web.app' (the server's modules: slicer-core, VTK, trame, the app) "
                        "as a whole process, before any app is built or scan read: the floor of any launch"}
    return write_result("web", metrics, targets, notes, measured=old or None,
                        derived="slices_* measured at notes.slices' date (bench_web.py --slices); the idle launch "
                                "(slices_idle_*launch*) at notes.launches' date (--launches)")


if __name__ == "__main__":
    if "--launches" in sys.argv[1:]:
        launches_main()
    elif "--slices" in sys.argv[1:]:
        slices_main()
    else:
        main()
