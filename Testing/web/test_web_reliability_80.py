"""Issue 80's defects of the web app, on its server-side functions (no browser): a DICOMweb redirect is checked hop by
hop against the allow-list; the page's copy of a float scan keeps its promised precision far from zero; a decoded
upload is read in bounded memory; the model offer's upload ends with its page and needs an open offer; a probe far
outside the scan says so."""
from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

pytest.importorskip("trame_slicer")

from orbitai.web.client_slices import compact
from orbitai.web.loading import ScanLoader
from orbitai.web.names import DicomWebAllowList
from web_cases import LoaderState

STUDY, SERIES = "1.2.3", "1.2.3.4"
#: What only the server that is not allowed answers: the page must never show it.
SECRET = "SECRET-OF-THE-OTHER-PORT"


@contextlib.contextmanager
def _http(answer: Any) -> Iterator[tuple[str, list[str]]]:
    """A small HTTP server on 127.0.0.1 (a free port) whose GETs ``answer(handler)`` serves; yields (its
    ``/dicom-web`` root, the paths it was asked for). Closed after the block, its thread joined (bounded)."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            answer(self)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dicom-web", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _series_listing(handler: BaseHTTPRequestHandler) -> None:
    """A QIDO-RS answer: one image series whose description is `SECRET`."""
    body = json.dumps([{"0020000E": {"vr": "UI", "Value": ["9.9.9"]}, "00080060": {"vr": "CS", "Value": ["CT"]},
                        "0008103E": {"vr": "LO", "Value": [SECRET]}, "00201209": {"vr": "IS", "Value": [1]}}]).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/dicom+json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _redirect_to(root: str) -> Any:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", root + handler.path.split("/dicom-web", 1)[1])
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return answer


def _loader(allowed: list[str]) -> ScanLoader:
    """`ScanLoader` with what `load` needs (its allow-list as ``orbitai web --dicomweb`` gives it), no server."""
    loader = ScanLoader.__new__(ScanLoader)
    loader.state, loader.dicomweb, loader.data_folder = LoaderState(), DicomWebAllowList(allowed), None
    loader._loading, loader.upload_limit = 0, 1 << 30
    return loader


def _fetch(loader: ScanLoader, root: str) -> str:
    """The page's load error after fetching a series from ``root`` (the way Fetch loads a URL the list allows)."""
    url = f"{root}/studies/{STUDY}/series/{SERIES}"
    loader.dicomweb.check(url)
    asyncio.run(loader.load(url))
    return str(loader.state.load_error)


def test_an_allowed_servers_redirect_to_another_port_is_not_followed():
    with _http(_series_listing) as (other, other_hits), _http(_redirect_to(other)) as (allowed, _):
        error = _fetch(_loader([allowed]), allowed)
    assert other_hits == []                   # nothing was asked of the server that is not allowed
    assert SECRET not in error
    assert "redirect" in error and "is not a DICOMweb server this server fetches from" in error, error
    assert "\n" not in error and "Traceback" not in error


def test_a_redirect_to_another_allowed_server_is_followed():
    """Each hop is checked against the allow-list, not refused as such: a redirect to an allowed server is followed
    (here its answer: the series asked for is not in the study)."""
    with _http(_series_listing) as (other, other_hits), _http(_redirect_to(other)) as (allowed, _):
        error = _fetch(_loader([allowed, other]), allowed)
    assert other_hits and f"No series {SERIES} in study {STUDY}" in error and SECRET in error, error


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_a_scan_far_from_zero_keeps_half_a_16_bit_step(dtype):
    """The page's copy of a float64 scan offset by 1e9 (and of an int64 one) is within half a 16-bit step of its
    values (0.046 for a range of 6000), as `compact` promises; float32 arithmetic put it up to 48 off."""
    rng = np.random.default_rng(80)
    scan = (1e9 + rng.uniform(0, 6000, (6, 20, 30))).astype(dtype)
    scan[0, 0, :2] = (1e9, 1e9 + 6000)
    values, slope, inter = compact(scan)
    assert values.dtype == np.int16 and values.shape == scan.shape
    assert slope / 2 < 0.0459
    error = np.abs(values.astype(np.float64) * slope + inter - scan.astype(np.float64)).max()
    assert error <= slope / 2 * (1 + 1e-6), error


def test_compact_in_chunks_is_the_whole_arrays(monkeypatch):
    """A scan spread over int16 a few rows at a time gives the values of one pass (strided views too)."""
    import orbitai.web.voxel_packing as voxel_packing

    scan = np.random.default_rng(1).normal(0, 300, (9, 8, 7))[::2, :, ::3]
    whole = compact(scan)
    monkeypatch.setattr(voxel_packing, "_CHUNK_VALUES", 10)
    chunked = compact(scan)
    np.testing.assert_array_equal(whole[0], chunked[0])
    assert whole[1:] == chunked[1:]


@pytest.mark.parametrize("ras", [(1e308, 0.0, 0.0), (-1e308, 1e308, -1e308), (0.0, 0.0, 1e300)])
def test_a_probe_far_outside_the_scan_says_so(ctx, ras):
    """The value under the pointer at RAS 1e308 is "outside the scan" (it raised OverflowError in the server)."""
    from types import SimpleNamespace

    from orbitai.io import Volume
    from orbitai.mrml import volume_node_from_volume
    from orbitai.web.viewer import Layouts

    scan = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4) + 100, spacing=(0.5, 0.5, 0.5))
    node = volume_node_from_volume(ctx, scan, "ct")   # RAS to IJK doubles: 1e308 becomes an infinite index
    view = SimpleNamespace(scan=lambda: node, state=LoaderState())
    Layouts.show_probe(view, (-0.5, -1.0, 0.5))        # voxel (1, 2, 1) of the LPS grid: inside
    assert view.state.probe_text.endswith(": 121")
    Layouts.show_probe(view, ras)
    assert view.state.probe_text.endswith(": outside the scan") and len(view.state.probe_text) < 80, view.state


def test_a_scan_switch_clears_the_probe_and_lists_that_scans_rulers(ctx):
    """Issue 81 item 8: the value probe kept the last scan's value after a switch."""
    from types import SimpleNamespace

    from orbitai.io import Volume
    from orbitai.mrml import volume_node_from_volume
    from orbitai.web.viewer import Layouts

    node = volume_node_from_volume(ctx, Volume(np.zeros((2, 3, 4), np.int16)), "t2")
    view = SimpleNamespace(scan=lambda: node, mrml=ctx, state=LoaderState())
    view.state.probe_text, view.state.rulers = "R 1.0 A 2.0 S 3.0: 121", [{"name": "old scan's ruler"}]
    view.refresh_rulers = lambda: Layouts.refresh_rulers(view)
    Layouts.scan_shown(view)
    assert view.state.probe_text == "" and view.state.rulers == []


class _Handler:
    """What `orbitai.web.disconnects.on_close` wraps of wslink's websocket handler."""

    def __init__(self) -> None:
        self.closed: list[str] = []

    async def onClose(self, client_id: str) -> None:
        self.closed.append(client_id)


def _offer_view(tmp_path: Path, monkeypatch: Any) -> Any:
    """A `ModelOfferView` bound to a stand-in of wslink's server (uploads' folders under ``tmp_path``)."""
    import tempfile
    from types import SimpleNamespace

    from orbitai.web.model_offer import ModelOfferView

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    class View(ModelOfferView):
        def __init__(self) -> None:
            self.state, self.answers = LoaderState(), []

        def name(self, var: str) -> str:
            return f"orbit_{var}"

    view = View()
    view.upload_limit = 1 << 20
    view.web_server = SimpleNamespace(last_active_client_id="page-a", _ws_handlers=[_Handler()])
    view.bind_connections(view.web_server)
    view.offer = SimpleNamespace(question=lambda: "Download the model?", entry=SimpleNamespace(asset="m.tar.gz"))
    return view


def _uploads_on_disk(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob("orbitai-*upload-*/*"))


def test_the_model_upload_is_refused_with_no_offer_open(tmp_path, monkeypatch):
    view = _offer_view(tmp_path, monkeypatch)
    view.upload_model([{"name": "m.tar.gz", "content": b"archive bytes"}])
    assert _uploads_on_disk(tmp_path) == []                      # nothing taken, nothing on disk
    view.offerModel(view.offer, lambda *a, **k: view.answers.append((a, k)))
    view.upload_model([])                                        # the end of what was sent before: no archive
    assert view.answers == [] and _uploads_on_disk(tmp_path) == []


def test_the_model_upload_is_dropped_when_its_page_disconnects(tmp_path, monkeypatch):
    view = _offer_view(tmp_path, monkeypatch)
    view.offerModel(view.offer, lambda *a, **k: view.answers.append((a, k)))
    view.upload_model([{"name": "m.tar.gz", "content": b"archive bytes"}])
    assert [p.name for p in _uploads_on_disk(tmp_path)] == ["m.tar.gz"]
    handler = view.web_server._ws_handlers[0]
    asyncio.run(handler.onClose("page-a"))                      # the page closed mid-upload
    assert handler.closed == ["page-a"]                          # wslink's own close still runs
    assert _uploads_on_disk(tmp_path) == []
    view.upload_model([])                                        # a later end adds nothing to the offer
    assert view.answers == [] and view.state["orbit_offer"]


def test_the_model_upload_is_dropped_when_the_offer_closes(tmp_path, monkeypatch):
    view = _offer_view(tmp_path, monkeypatch)
    view.offerModel(view.offer, lambda *a, **k: view.answers.append((a, k)))
    view.upload_model([{"name": "m.tar.gz", "content": b"archive bytes"}])
    view.decline_offered()
    assert _uploads_on_disk(tmp_path) == [] and view.answers == [((None,), {"uploaded": False})]


def _peak_bytes(f: Any, *args: Any) -> tuple[Any, int]:
    """``f(*args)`` and the most bytes it held at once beyond what existed before (tracemalloc: numpy's buffers too)."""
    import tracemalloc

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        out = f(*args)
        return out, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dtype, share", [(np.uint8, 0.1), (np.int16, 0.1), (np.float32, 0.65)])
def test_a_large_scan_is_packed_for_the_page_without_copies_of_it(dtype, share):
    """Packing a decoded 48 MB scan for the page holds no whole copy of it (a uint8 or int16 scan: none at all; a
    float one: its int16 values only): it held the scan twice more (a cast and ``tobytes``), 3 GB for an upload
    that decodes to 488 MB."""
    import gzip

    from orbitai.io import Volume
    from orbitai.web.client_slices import scan_level

    scan = np.zeros((48, 1024, 1024 // np.dtype(dtype).itemsize), dtype)
    scan[::7, ::5, ::3] = 100
    scan[0, 0, 0] = {np.uint8: 1, np.int16: -1000, np.float32: 0.5}[dtype]     # kept as its type / spread over int16
    level, peak = _peak_bytes(scan_level, Volume(scan), 1)
    assert peak < share * scan.nbytes, f"{peak / 2**20:.0f} MB for a {scan.nbytes / 2**20:.0f} MB scan"
    back = np.frombuffer(gzip.decompress(level["data"]), level["dtype"]).reshape(scan.shape)
    np.testing.assert_allclose(back * level["slope"] + level["inter"], scan, atol=level["slope"] / 2 + 1e-9)


def test_an_uploaded_files_chunks_are_written_without_joining_them(tmp_path, monkeypatch):
    """A file the page sends in chunks is written chunk by chunk: 48 MB of chunks take no 48 MB more."""
    import tempfile

    from orbitai.web.uploads import Upload

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    chunks = [bytes([n]) * (1 << 20) for n in range(48)]
    upload = Upload(limit=64 << 20)
    _, peak = _peak_bytes(upload.add, [{"name": "scan.nrrd", "content": chunks}])
    try:
        assert upload.error == "" and peak < 4 << 20, (upload.error, peak)
        assert upload.files[0].read_bytes() == b"".join(chunks)
    finally:
        upload.remove()
