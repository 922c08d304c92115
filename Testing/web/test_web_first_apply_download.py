"""Issue 64 (download on first use, the browser): ``orbitai web`` run from a release tree (`make release`: no bundled
weights) with an empty user folder, on a raw websocket (what the page sends). The first Apply of the orbit panel offers
the model under Apply (its name, size and source); Cancel starts nothing and downloads nothing; Download fetches the
release asset from a local HTTP server on 127.0.0.1 as the panel's job, installs it with the registry's SHA-256, and
the segmentation goes on; Choose file... installs only the registry's own archive. The release tree is made from the
commit HEAD (`make release`), so the server runs the committed code."""
from __future__ import annotations

import asyncio
import functools
import http.server
import os
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from orbitai.bundle import registry
from orbitai.io import write_volume
from orbitai.io.checksums import sha256_file
from orbitai.phantoms import orbit_case
from orbitai.testing.web import web_server
from ws_client import click_trigger, connect, load_data, wait_state

REPO = Path(__file__).resolve().parents[2]
MODEL = "orbit_svnet_mri_demo"        # what "Automatic (by modality)" picks for an MRI
REPOSITORY = "https://github.com/example/SlicerOrbitAI"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def release_site(tmp_path_factory) -> Iterator[Any]:
    try:
        import trame_slicer  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the web extra is missing ({exc.name}) (CI must have it)")
        pytest.skip(f"the web extra is missing ({exc.name}): pip install -e '.[web,dev]'")
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import make_release
    finally:
        sys.path.remove(str(REPO / "scripts"))
    root = tmp_path_factory.mktemp("web-release")
    tree, assets = root / "SlicerOrbitAI", root / "assets"
    make_release.make_release(tree, REPOSITORY, assets=assets)
    assert (assets / registry.registry_entry(MODEL).asset).is_file()
    assert not list((tree / "orbitai" / "resources" / "models").glob("*/metadata.json")), "the release has weights"
    data = root / "data"
    data.mkdir()
    write_volume(orbit_case(778321, "t2", oblique=False).image, data / "orbitT2.nrrd")
    asked: list[str] = []

    class Handler(_Quiet):
        def do_GET(self) -> None:
            asked.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(assets)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    user = root / "user_models"
    env = {"ORBITAI_USER_MODELS": str(user), registry.BASE_URL_ENV: f"http://127.0.0.1:{httpd.server_address[1]}",
           "ORBITAI_WARM_WORKER": "0", "PYTHONPATH": str(tree)}
    cwd = os.getcwd()
    os.chdir(tree)                     # `python -m orbitai` of the server and its children: the release's package
    try:
        with web_server(str(data), env=env) as srv:
            os.chdir(cwd)
            yield srv, user, asked, assets
    finally:
        os.chdir(cwd)
        httpd.shutdown()
        httpd.server_close()




def test_first_apply_in_the_browser_offers_the_model_and_downloads_it_on_download(release_site):
    srv, user, asked, _assets = release_site
    entry = registry.registry_entry(MODEL)

    async def go() -> dict:
        out: dict = {}
        async with connect(srv.url) as c:
            await c.hello(srv.token)
            state = await load_data(c, "orbitT2.nrrd", timeout_s=60)
            assert state["orbit_apply_enabled"], state["orbit_apply_tip"]
            await c.trigger(click_trigger(state, "orbitai-orbit-apply"), {})
            out["offer"] = await wait_state(c, lambda s: s["orbit_offer"], 20, "offer")
            await c.trigger(click_trigger(out["offer"], "orbitai-orbit-offer-cancel"))
            out["declined"] = await wait_state(c, lambda s: not s["orbit_offer"], 20, "declined")
            await c.trigger(click_trigger(await c.state(), "orbitai-orbit-apply"), {})
            state = await wait_state(c, lambda s: s["orbit_offer"], 20, "offer again")
            await c.trigger(click_trigger(state, "orbitai-orbit-offer-download"))
            statuses = []
            state = await c.state()
            while True:
                statuses.append(state["orbit_status"])
                if not state["orbit_running"] and "structures segmented" in state["orbit_status"] or state["orbit_error"]:
                    break
                await asyncio.sleep(0.2)
                state = await c.state()
                assert len(statuses) < 3000, statuses[-3:]
            out["done"], out["statuses"] = state, statuses
        return out

    out = asyncio.run(go())
    offer = out["offer"]["orbit_offer"]
    assert MODEL in offer and registry.human_size(entry.size) in offer and "127.0.0.1" in offer, offer
    assert out["declined"]["orbit_status"].startswith(f"Not started: the model '{MODEL}' is not installed"), \
        out["declined"]["orbit_status"]
    done = out["done"]
    assert done["orbit_error"] == "", done["orbit_error"]
    assert "structures segmented" in done["orbit_status"], out["statuses"][-3:]
    assert any(f"The model '{MODEL}' was installed" in s for s in out["statuses"]), out["statuses"]
    assert asked == [f"/{entry.asset}"], asked
    for name, facts in entry.files.items():
        assert sha256_file(user / MODEL / name) == facts["sha256"], name
    assert MODEL in done["orbit_model_items"]
    assert "Traceback" not in srv.log_tail(20000)


async def _until_idle(c: Any) -> dict:
    state = await c.state()
    for _ in range(3000):
        if not state["orbit_running"]:
            return state
        await asyncio.sleep(0.2)
        state = await c.state()
    raise TimeoutError(state["orbit_status"])


@pytest.mark.slow  # the default suite's 20-minute budget; ~10 s: the Slicer replay's choose-file test keeps it
def test_choose_file_in_the_browser_installs_only_the_registrys_archive(release_site):
    """The offer's Choose file...: a file that is no archive is refused in one line at once; an archive that is not
    the registry's (another SHA-256) is refused by the install job, nothing installed; the registry's archive installs
    with no download and the segmentation goes on."""
    import shutil

    srv, user, asked, assets = release_site
    entry = registry.registry_entry(MODEL)
    shutil.rmtree(user / MODEL, ignore_errors=True)          # as after 'orbitai models remove' (or a first run)
    before = list(asked)
    good = (assets / entry.asset).read_bytes()

    async def go() -> dict:
        out: dict = {}
        async with connect(srv.url) as c:
            await c.hello(srv.token)
            state = await c.state()
            if not state["volumes"]:
                await c.set_state(load_error="", data_choice="orbitT2.nrrd")
                await c.trigger(click_trigger(state, "orbitai-load-data"))
                await wait_state(c, lambda s: not s["load_busy"] and s["volumes"], 60, "load")

            async def offer_and_upload(name: str, content: bytes) -> dict:
                await c.trigger(click_trigger(await c.state(), "orbitai-orbit-apply"), {})
                await wait_state(c, lambda s: s["orbit_offer"], 20, "offer")
                await c.trigger("orbitai_orbit_model_upload", [{"name": name, "content": content}])
                await c.trigger("orbitai_orbit_model_upload", [])
                return await c.state()

            out["text"] = await offer_and_upload("notes.txt", b"not an archive")
            await c.trigger(click_trigger(out["text"], "orbitai-orbit-offer-cancel"))
            await wait_state(c, lambda s: not s["orbit_offer"], 20, "declined")
            await offer_and_upload(entry.asset, good[:-100] + bytes(100))
            out["wrong"] = await _until_idle(c)
            await offer_and_upload(entry.asset, good)
            statuses = []
            state = await c.state()
            while state["orbit_running"] or not statuses:
                statuses.append(state["orbit_status"])
                await asyncio.sleep(0.2)
                state = await c.state()
                assert len(statuses) < 3000, statuses[-3:]
            out["done"], out["statuses"] = state, statuses
        return out

    out = asyncio.run(go())
    refused = out["text"]["orbit_offer_error"]
    assert refused.startswith("The archive was refused:") and "notes.txt" in refused and "\n" not in refused, refused
    assert not out["text"]["orbit_running"]
    wrong = out["wrong"]
    assert f"The model '{MODEL}' was not installed" in wrong["orbit_status"] and "SHA-256" in wrong["orbit_error"], \
        (wrong["orbit_status"], wrong["orbit_error"])
    done = out["done"]
    assert done["orbit_error"] == "" and "structures segmented" in done["orbit_status"], (done["orbit_error"],
                                                                                        out["statuses"][-3:])
    assert asked == before, "Choose file downloaded"
    for name, facts in entry.files.items():
        assert sha256_file(user / MODEL / name) == facts["sha256"], name
    assert "Traceback" not in srv.log_tail(20000)
