"""Fixtures of the web app's tests: phantom scans in a data folder, ``orbitai web`` serving it, headless Chromium.

The server runs as its own process, as a user starts it; one server and one browser serve a test module. Without
Chromium or trame-slicer the tests say what to install and skip; in CI (``CI=true``) they fail, since ``make test``
installs both."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

import pytest

from orbitai.testing.cli import run_cli
from orbitai.testing.web import BROWSER_INSTALL, WebPage, browser, find_browser, web_server
from web_cases import PHANTOMS, SEED


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must have it)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def web_tools() -> None:
    try:
        import trame_slicer  # noqa: F401
        import selenium  # noqa: F401
    except ImportError as exc:
        _missing(f"the web extra is missing ({exc.name}): pip install -e '.[web,dev]'")
    if find_browser() is None:
        _missing(f"Chromium or its WebDriver is missing: {BROWSER_INSTALL}")


@pytest.fixture(scope="session")
def web_data(tmp_path_factory) -> Path:
    """A folder of one phantom per kind (the same seed gives the same files)."""
    root = tmp_path_factory.mktemp("web-data")
    for kind in PHANTOMS:       # in this process: the server, not this command, is what the tests start
        r = run_cli(["phantom", kind, "--n", "1", "--seed", str(SEED), "--out", root / kind, "--montage-cases", "0"])
        assert r.returncode == 0, r.stderr
    return root


@pytest.fixture(scope="module")
def server(request, web_tools, web_data):
    """``orbitai web DATA`` (the data folder) for the module. A module whose tests do not annotate gets ``--prepare
    annotate`` (no SmartPencil regions and model prior computed for each scan it shows, which kept a core busy through
    the parallel suite); a module that sets ``PREPARE_ON_SHOW = True`` gets the users' default."""
    prepare = () if getattr(request.module, "PREPARE_ON_SHOW", False) else ("--prepare", "annotate")
    with web_server(str(web_data), *prepare) as srv:
        yield srv


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def driver(web_tools, downloads):
    with browser(downloads=downloads) as d:
        yield d


def _fail_if_ended(server, when: str, wait_s: float = 0.0) -> None:
    """Fail with the end of the server's log (a crash's Python traceback, `web_server`) when its process has ended,
    waiting up to ``wait_s`` for it to end (a crash still under way refuses connections before it exits)."""
    deadline = time.monotonic() + wait_s
    while server.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if server.process.poll() is not None:
        pytest.fail(f"the module's orbitai web ended {when} (exit {server.process.returncode}); the end of its log:\n"
                    f"{server.log_tail(4000)}", pytrace=False)


@pytest.fixture()
def page(server, driver) -> Iterator[WebPage]:
    """The page, opened afresh on a closed scene, with every view's first frame shown. A test whose module's server
    has ended fails at once, and a server that ends while the page opens or during the test is reported at once,
    each with the end of the server's log: the next test's refused connection no longer hides a crash."""
    _fail_if_ended(server, "earlier")
    try:
        opened = WebPage.fresh(driver, server.url)
    except Exception:
        _fail_if_ended(server, "while the page opened", wait_s=5.0)
        raise
    yield opened
    _fail_if_ended(server, "during this test")
