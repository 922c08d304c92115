"""Driving ``orbitai web`` in a real browser for the tests and the benchmark: the server as its own process (as a user
starts it) and headless Chromium through Selenium.

Chromium and its WebDriver are test tools (Debian ``chromium``, ``chromium-driver``), installed by ``make test`` as root
(the Makefile's ``test-tools``); elsewhere the tests say what to install and skip, and in CI (``CI=true``) they fail.
The page's state is read through trame's client (``window.trame.state``), the views as the images trame-slicer
sends (``img.image-display-area``, one per view, marked ``#orbitai-view-<Red|Yellow|Green>`` beside it).
"""
from __future__ import annotations

import base64
import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

from orbitai.testing.servers import free_port, wait_until_listening

__all__ = ["BROWSER_INSTALL", "find_browser", "web_server", "WebServer", "browser", "WebPage", "centre_ras", "colored"]

BROWSER_INSTALL = "install Debian's chromium and chromium-driver (make test does it as root)"


def find_browser() -> Optional[tuple[str, str]]:
    """``(chromium, chromedriver)`` when both are installed."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or next(
        (p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if os.path.exists(p)), None)
    return (exe, driver) if exe and driver else None


@dataclass
class WebServer:
    url: str                # the page's address, with the server's secret (``?secret=``) as a user opens it
    process: subprocess.Popen
    started: float          # time.monotonic() when the process was started
    log: Path
    token: str = ""         # the secret the server was started with (ORBITAI_WEB_TOKEN)

    def log_tail(self, n: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-n:]


@contextlib.contextmanager
def web_server(data: Optional[str] = None, *args: str, start_timeout_s: float = 90.0,
               env: Optional[dict] = None) -> Iterator[WebServer]:
    """Run ``orbitai web [DATA] --port P`` on 127.0.0.1 for the block (its own process group; stopped with SIGINT,
    then killed after 15 s, however the block ends), with a fresh secret (``ORBITAI_WEB_TOKEN``). Yields when the
    server listens. A crash of the server's Python writes its traceback to the log (``PYTHONFAULTHANDLER``)."""
    import secrets

    port = free_port()
    token = secrets.token_urlsafe(16)
    cmd = [sys.executable, "-m", "orbitai", "web", *([data] if data else []), "--port", str(port), *args]
    with tempfile.TemporaryDirectory(prefix="orbitai-web-test-") as d:
        log = Path(d) / "server.log"
        with open(log, "wb") as out:
            started = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, "ORBITAI_WEB_TOKEN": token, "PYTHONFAULTHANDLER": "1",
                                         **(env or {})})
        try:
            url = f"http://127.0.0.1:{port}/?secret={token}"
            wait_until_listening(port, proc, "orbitai web", log, start_timeout_s - (time.monotonic() - started))
            yield WebServer(url, proc, started, log, token)
        finally:
            if proc.poll() is not None:         # it ended on its own: say how, for the failing test's report
                tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else []
                print(f"orbitai web ended on its own (exit {proc.returncode}); the end of its log:", *tail,
                      sep="\n", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextlib.contextmanager
def browser(downloads: Optional[Path] = None, width: int = 1600, height: int = 1000) -> Iterator[Any]:
    """Headless Chromium (Selenium WebDriver); files the page downloads go to ``downloads``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_browser()
    if found is None:
        raise FileNotFoundError(f"Chromium or its WebDriver is missing: {BROWSER_INSTALL}")
    exe, driver_path = found
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.binary_location = exe
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def centre_ras(seg_file: str | os.PathLike, label: int) -> list[float]:
    """The RAS centre of a label of a segmentation file (a phantom's truth)."""
    from orbitai.io.segfile import read_segmentation

    truth, _ = read_segmentation(seg_file)
    k, j, i = (c.mean() for c in np.nonzero(truth.array == label))
    return [float(x) for x in (truth.ijk_to_ras() @ np.array([i, j, k, 1.0]))[:3]]


def colored(img: np.ndarray, level: int = 60) -> int:
    """Pixels with a colour (segments, heat maps) rather than grey (the scan): max - min channel over ``level`` (a
    segment's 2D fill at Slicer's opacity 0.5 halves its colour's spread: 30 finds a muted one)."""
    img = img.astype(int)
    return int(np.count_nonzero(img.max(axis=-1) - img.min(axis=-1) > level))


_VIEWS_JS = """
return Array.from(document.querySelectorAll('.orbitai-view-marker')).map(m => {
  const img = m.parentElement.querySelector('img.image-display-area');
  return [m.id.replace('orbitai-view-', ''), img ? img.src : '', img ? img.naturalWidth : 0,
          img ? getComputedStyle(img).display : 'none'];
});"""

_IMAGE_JS = """
const img = document.querySelector('#orbitai-view-' + arguments[0]).parentElement.querySelector('img.image-display-area');
const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
c.getContext('2d').drawImage(img, 0, 0);
return [img.src, c.toDataURL('image/png')];"""


class WebPage:
    """The OrbitAI page in a Selenium driver."""

    def __init__(self, driver: Any, url: str) -> None:
        self.driver = driver
        driver.get(url)

    @classmethod
    def fresh(cls, driver: Any, url: str) -> "WebPage":
        """The page opened afresh on a closed scene, with every view's first frame shown."""
        p = cls(driver, url)
        p.wait_views()
        p.click("orbitai-close-scene")
        p.wait_state("volumes", lambda v: v == [], 20)
        return p

    # ------------------------------------------------------------ waiting
    def wait(self, condition: Callable[[], Any], timeout_s: float = 60.0, what: str = "the condition",
             interval_s: float = 0.1) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
            time.sleep(interval_s)

    def views(self) -> dict[str, tuple[str, int, str]]:
        """View name -> (image src, natural width, CSS display)."""
        return {name: (src, w, disp) for name, src, w, disp in self.driver.execute_script(_VIEWS_JS)}

    def views_rendered(self) -> bool:
        v = self.views()
        return bool(v) and all(src.startswith("blob:") and w > 0 and disp != "none" for src, w, disp in v.values())

    def wait_views(self, timeout_s: float = 60.0) -> None:
        self.wait(self.views_rendered, timeout_s, "every view's first frame")

    # ------------------------------------------------------------ state
    def state(self, name: str) -> Any:
        return self.driver.execute_script("return window.trame.state.get(arguments[0]);", name)

    def choose_tool(self, tool: str, timeout_s: float = 30.0) -> None:
        """Choose an annotation tool (``ann_tool``) and wait until the server's views have it (``ann_tool_active``)
        and the page's own slices have stepped aside: a drag before that lands on the page's canvas, not the tool."""
        self.set_state("ann_tool", tool)
        self.wait_state("ann_tool_active", lambda v: v == tool, timeout_s)
        self.wait(lambda: self.driver.execute_script(
            "return Array.from(document.querySelectorAll('canvas.orbitai-slice'))"
            ".every((c) => c.style.display === 'none');"), timeout_s, f"the server's views for {tool}")

    def set_state(self, name: str, value: Any) -> None:
        """Set a state variable as a field would, and wait until the page has sent it: the page holds changes back
        while it waits on the server, and a click sent meanwhile would reach the server first."""
        self.driver.execute_script("window.trame.state.set(arguments[0], arguments[1]);", name, value)
        self.wait(lambda: self.driver.execute_script("return window.trame.state.dirtyKeys.size === 0;"), 60,
                  f"the page to send {name}")

    def wait_state(self, name: str, predicate: Callable[[Any], bool], timeout_s: float = 60.0) -> Any:
        box: list = []

        def check() -> bool:
            value = self.state(name)
            box[:] = [value]
            return bool(predicate(value))
        try:
            self.wait(check, timeout_s, f"state {name}")
        except TimeoutError:
            raise TimeoutError(f"waited {timeout_s:.0f} s for state {name}; it is {box[0] if box else None!r}") from None
        return box[0]

    # ------------------------------------------------------------ page
    def element(self, element_id: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def click(self, element_id: str) -> None:
        self.element(element_id).click()

    def text(self, element_id: str) -> str:
        return str(self.element(element_id).text)

    def load(self, relative: str) -> str:
        """Load a scan of the server's data folder as the input volume; its node ID."""
        before = self.state("input_volume")
        self.set_state("data_choice", relative)
        self.click("orbitai-load-data")
        try:
            return self.wait_state("input_volume", lambda v: bool(v) and v != before, 180)  # a hang guard: CI is loaded
        except TimeoutError as exc:
            raise TimeoutError(f"{exc} (load_busy {self.state('load_busy')!r}, "
                               f"load_error {self.state('load_error')!r})") from None

    # ------------------------------------------------------------ views
    def new_segment(self, name: str, timeout_s: float = 30.0) -> None:
        """Open Annotate, make a new segmentation of the shown scan and add an empty segment ``name`` to it, waiting
        for the server after each step."""
        self.set_state("module", "annotate")
        self.click("orbitai-ann-new")
        self.wait_state("ann_segmentation", bool, timeout_s)
        self.set_state("ann_new_name", name)
        self.click("orbitai-ann-add")
        self.wait_state("ann_voxels", lambda v: v == 0, timeout_s)

    def jump(self, ras: list[float], view: str = "Red") -> None:
        """Move the views to a RAS point (``jump_to``) and wait until ``view`` shows the slice through it."""
        self.set_state("jump_to", ras)
        self.wait(lambda: self._on_slice(ras, view), 20, f"{view} through {ras}")

    def steady_geometry(self, view: str = "Red", quiet_s: float = 1.0, timeout_s: float = 60.0) -> None:
        """Wait until ``view``'s geometry (size and XY-to-RAS) has not changed for ``quiet_s``: a view fitted to its
        scan after a load, or to the page's size, moves what a computed drag point lands on (issue 80: a SmartFill
        stroke that the panel then did not find inside the structure)."""
        last: list[Any] = [None, time.monotonic()]

        def quiet() -> bool:
            g = (self.state("slice_geometry") or {}).get(view)
            if g != last[0]:
                last[0], last[1] = g, time.monotonic()
            return g is not None and time.monotonic() - last[1] >= quiet_s

        self.wait(quiet, timeout_s, f"{view}'s geometry to settle")

    def _xy(self, ras: list[float], view: str) -> Optional[tuple[np.ndarray, dict]]:
        g = (self.state("slice_geometry") or {}).get(view)
        if not g:
            return None
        return np.linalg.solve(np.array(g["xy_to_ras"]).reshape(4, 4), np.array([*ras, 1.0])), g

    def _on_slice(self, ras: list[float], view: str) -> bool:
        found = self._xy(ras, view)
        return found is not None and abs(found[0][2]) < 0.5

    def to_css(self, ras: list[float], view: str = "Red") -> tuple[float, float]:
        """The CSS position in a view's image of a RAS point (the view's XY-to-RAS matrix; XY from the bottom left)."""
        found = self._xy(ras, view)
        assert found is not None, f"no geometry for {view}"
        xy, g = found
        width, height = g["size"]
        css = self.view_element(view).size
        return float(xy[0]) * css["width"] / width, (height - float(xy[1])) * css["height"] / height

    def view_image(self, view: str) -> tuple[str, np.ndarray]:
        """(image src, RGB array) of the frame a view shows now."""
        from PIL import Image

        src, data_url = self.driver.execute_script(_IMAGE_JS, view)
        png = base64.b64decode(data_url.split(",", 1)[1])
        return src, np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))

    def new_frame(self, view: str, after_src: str, timeout_s: float = 30.0) -> tuple[str, np.ndarray]:
        """The view's first frame whose image differs from ``after_src``."""
        self.wait(lambda: self.views()[view][0] not in ("", after_src), timeout_s, f"a new frame of {view}")
        return self.view_image(view)

    def frame_where(self, view: str, after_src: str, ok: Callable[[np.ndarray], bool],
                    timeout_s: float = 60.0) -> tuple[str, np.ndarray]:
        """The view's first frame after ``after_src`` whose image ``ok`` accepts: a frame drawn before the change
        reached the view (a loaded server renders more than once) is passed over. The last frame seen when none is
        accepted in time, for the caller's assertion to judge."""
        deadline = time.monotonic() + timeout_s
        src, img = self.new_frame(view, after_src, timeout_s)
        while not ok(img) and time.monotonic() < deadline:
            try:
                src, img = self.new_frame(view, src, max(0.5, deadline - time.monotonic()))
            except TimeoutError:
                break
        return src, img

    def view_element(self, view: str) -> Any:
        from selenium.webdriver.common.by import By

        marker = self.driver.find_element(By.ID, f"orbitai-view-{view}")
        return marker.find_element(By.XPATH, "..").find_element(By.CSS_SELECTOR, "img.image-display-area")

    def drag(self, view: str, points_css: list[tuple[float, float]], shift: bool = False, pause_s: float = 0.05) -> None:
        """A left-button drag (a click for one point) through points given in CSS pixels from the view's top-left."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        el = self.view_element(view)
        size = el.size
        chain = ActionChains(self.driver, duration=10)
        if shift:
            chain.key_down(Keys.SHIFT)
        points = [(round(x), round(y)) for x, y in points_css]     # WebDriver moves by whole CSS pixels
        x0, y0 = points[0]
        chain.move_to_element_with_offset(el, x0 - size["width"] // 2, y0 - size["height"] // 2).pause(pause_s)
        chain.click_and_hold().pause(pause_s)
        for (xa, ya), (xb, yb) in zip(points, points[1:]):
            chain.move_by_offset(xb - xa, yb - ya).pause(pause_s)
        chain.release().pause(pause_s)
        if shift:
            chain.key_up(Keys.SHIFT)
        chain.perform()

    # ------------------------------------------------------------ the page cut off from the server
    def cut_off(self) -> None:
        """Hold every trigger the page sends (answered only at `reconnect`) and count the page's websocket messages
        (`sent`): what the page draws meanwhile is its own, with no round trip to the server."""
        self.driver.execute_script(_CUT_OFF_JS)

    def sent(self) -> tuple[list[str], int]:
        """The triggers held since `cut_off` (their names) and how many websocket messages the page sent since."""
        return tuple(self.driver.execute_script(
            "return [window.orbitaiHeld.map((c) => c[0]), window.orbitaiSent];"))

    def reconnect(self) -> None:
        """Send the held triggers now, in their order (each answered as the server answers it), and stop counting."""
        self.driver.execute_script(
            "window.trame.trigger = window.orbitaiTrigger; WebSocket.prototype.send = window.orbitaiSend;"
            "delete window.orbitaiSend; const held = window.orbitaiHeld; window.orbitaiHeld = [];"
            "for (const [name, args, answer] of held) window.trame.trigger(name, args).then(answer, answer);")


_CUT_OFF_JS = """
window.orbitaiHeld = []; window.orbitaiSent = 0;
window.orbitaiTrigger = window.trame.trigger;
window.trame.trigger = (name, args) => new Promise((answer) => window.orbitaiHeld.push([name, args, answer]));
if (!window.orbitaiSend) {
  window.orbitaiSend = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) { window.orbitaiSent += 1; return window.orbitaiSend.call(this, data); };
}"""
