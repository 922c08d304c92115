"""Work-arounds for defects of the pinned trame-slicer, each limited to the version that has it.

trame-slicer 2.0.0, Paint and Erase: a brush pipeline made while its view was still being built has no view
(``SegmentationEditor._try_create_effect_pipeline`` calls ``pipeline.SetView(view_manager.get_view(...))`` before the
view factory has stored the view), so ``SegmentationPaintPipeline.SetActive`` finds no widget and raises
``AttributeError: 'NoneType' object has no attribute 'paint_interaction_stopped'``. The web app builds its views before
any effect, and `install` also makes ``SetActive`` look the view up when the brush is activated. Testing/web checks
that painting strokes works (the SmartFill test), so a trame-slicer upgrade that fixes or changes this is noticed.

wslink (the server under trame) binds its address itself (aiohttp's ``TCPSite``) once the app is built; `serve_on`
makes it serve on a socket bound and listening since the launch began, so that the page's address is printed at once
and a browser that opens it waits in the socket's queue (issue 81). `quiet_views` skips the renders trame-slicer makes
while it builds a view (each of its displayable managers' updates renders the view at once until the view's own
scheduler is set; ~60 renders a view, nobody sees them): the views render when the page shows them. Within it, a
view's scheduler also takes its window as it is (trame-rca 2.11's ``window_wrapper`` asks ``isinstance`` of its
runtime Protocol, which reads the window's ``img_cols_rows`` property: a render and a copy of its pixels, thrown
away, per view; trame-slicer's window is trame-rca's own `VtkRemoteControlledArea`, which the check returns as is).
"""
from __future__ import annotations

import contextlib
import socket
import types
from importlib.metadata import version
from typing import Any, Iterator

from aiohttp import web as aiohttp_web
from trame_rca.rca import VtkRemoteControlledArea
from trame_rca.schedulers import image_scheduler
from trame_slicer.views.render_scheduler import DirectRendering
from wslink.backends import aiohttp as wslink_aiohttp

__all__ = ["install", "AFFECTED_VERSIONS", "serve_on", "quiet_views"]

#: trame-slicer versions whose brush pipelines can miss their view (1.12.0 to 2.0.0, from the source).
AFFECTED_VERSIONS = ("1.12.0", "1.12.1", "1.12.2", "1.12.3", "2.0.0")
_installed = False


def install(view_manager: Any) -> bool:
    """Patch the brush pipelines of an affected trame-slicer to find their view from ``view_manager`` on activation
    (once per process; the app has one view manager). Returns True when the patch is in place."""
    global _installed
    if version("trame-slicer") not in AFFECTED_VERSIONS:
        return False
    if _installed:
        return True
    from trame_slicer.segmentation.segmentation_paint_pipeline import SegmentationPaintPipeline

    original = SegmentationPaintPipeline.SetActive

    def SetActive(self: Any, isActive: bool) -> None:
        if isActive and getattr(self, "_view", None) is None:
            view = view_manager.get_view(self.GetViewNode())
            if view is not None:
                self.SetView(view)
        if isActive and not self.widget and getattr(self, "_view", None) is None:
            # Still no view (it is not one of this app's views): nothing to paint in, so no widget.
            super(SegmentationPaintPipeline, self).SetActive(isActive)
            return
        original(self, isActive)

    SegmentationPaintPipeline.SetActive = SetActive
    _installed = True
    return True


class _OnSocket(types.ModuleType):
    """aiohttp.web as wslink's aiohttp backend sees it, but for ``TCPSite``: a site on the given socket."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(aiohttp_web.__name__)
        self._sock = sock

    def __getattr__(self, name: str) -> Any:
        return getattr(aiohttp_web, name)

    def TCPSite(self, runner: Any, _host: Any = None, _port: Any = None, **options: Any) -> Any:
        return aiohttp_web.SockSite(runner, self._sock, **options)


def serve_on(sock: socket.socket) -> None:
    """wslink's aiohttp server serves on ``sock`` (bound and listening) instead of binding its host and port."""
    if not hasattr(wslink_aiohttp, "aiohttp_web"):          # another wslink: it binds again (the address is free)
        sock.close()
        return
    wslink_aiohttp.aiohttp_web = _OnSocket(sock)


@contextlib.contextmanager
def quiet_views() -> Iterator[None]:
    """Within the block, trame-slicer's views do not render on each update while they are being built."""
    render = DirectRendering.schedule_render
    DirectRendering.schedule_render = lambda self: None
    wrap = getattr(image_scheduler, "window_wrapper", None)      # the JPEG/PNG views' scheduler (the default)
    if wrap is not None:
        image_scheduler.window_wrapper = lambda window: (window if isinstance(window, VtkRemoteControlledArea)
                                                         else wrap(window))
    try:
        yield
    finally:
        DirectRendering.schedule_render = render
        if wrap is not None:
            image_scheduler.window_wrapper = wrap
