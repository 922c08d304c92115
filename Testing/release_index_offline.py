"""Run the Extensions Index's own ``scripts/check_description_files.py`` on a release repository, offline.

Not a test (Testing/test_release.py runs it). Run with the index's Python (3.12, with its scripts/requirements.txt:
requests and jsonschema), in a folder laid out as the index's checkout (its ``*.json`` descriptions, ``scripts/``)
with the release's description file added, exactly as the index's CI runs it
(``python scripts/check_description_files.py OrbitAI.json``). The script itself is used unmodified; what needs the
network is answered here, and nothing else is replaced:

* ``git clone <scm_url>``: git's own ``url.<base>.insteadOf`` sends the repository address to the local release
  repository (``file://``), so the clone (and the size measured on it) is a real clone of it;
* ``requests`` (the description's JSON schema, the icon and screenshot addresses, the GitHub topics API): answered by
  an adapter in place of requests' HTTP adapter, from local files: the schema from ``--schema``, a raw-file address
  ``https://raw.githubusercontent.com/<owner>/<name>/<ref>/<path>`` from the release repository's ``git show
  <ref>:<path>`` (404 where it has no such file; Content-Type by extension, as that host serves images), the topics
  from ``--topics`` (a repository setting the release step asks for; no file holds it). Any other address, and any
  socket, is refused.

    python release_index_offline.py --release REPO --repository URL --schema FILE --topics T [T ...] -- ARGS
"""
from __future__ import annotations

import argparse
import json
import mimetypes
import os
import re
import runpy
import socket
import subprocess
import sys

import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--release", required=True, help="the release repository (a local git repository)")
    ap.add_argument("--repository", required=True, help="its public address, the description's scm_url")
    ap.add_argument("--schema", required=True, help="the description's JSON schema, a local file")
    ap.add_argument("--topics", nargs="*", default=[], help="the GitHub repository's topics")
    ap.add_argument("args", nargs="*", help="the check's arguments (description files)")
    a = ap.parse_args()
    m = re.match(r"^https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?$", a.repository)
    if not m:
        raise SystemExit(f"--repository {a.repository!r} is not https://github.com/<owner>/<name>")
    owner, name = m.groups()
    release = os.path.abspath(a.release)
    raw = re.compile(rf"^https://raw\.githubusercontent\.com/{re.escape(owner)}/{re.escape(name)}/([^/]+)/(.+)$")
    topics_url = f"https://api.github.com/repos/{owner}/{name}/topics"

    def answer(url: str) -> tuple[int, bytes, str]:
        if url.split("#")[0].rsplit("/", 1)[-1] == os.path.basename(a.schema):
            with open(a.schema, "rb") as f:
                return 200, f.read(), "application/json"
        if url == topics_url:
            return 200, json.dumps({"names": a.topics}).encode(), "application/json"
        hit = raw.match(url)
        if hit:
            ref, path = hit.groups()
            proc = subprocess.run(["git", "-C", release, "show", f"{ref}:{path}"], capture_output=True)
            if proc.returncode != 0:
                return 404, b"404: Not Found", "text/plain; charset=utf-8"
            return 200, proc.stdout, mimetypes.guess_type(path)[0] or "text/plain; charset=utf-8"
        raise requests.ConnectionError(f"offline: no answer for {url}")

    def send(self, request, **kwargs):  # the HTTPAdapter's send, from local files
        status, body, ctype = answer(request.url)
        r = requests.models.Response()
        r.status_code, r._content, r.url, r.request = status, body, request.url, request
        r.reason = "OK" if status == 200 else "Not Found"
        r.headers = CaseInsensitiveDict({"Content-Type": ctype, "Content-Length": str(len(body))})
        return r

    def no_network(self, address):
        raise OSError(f"offline: no connection to {address}")

    requests.adapters.HTTPAdapter.send = send
    socket.socket.connect = no_network
    os.environ.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_COUNT": "1",
                       "GIT_CONFIG_KEY_0": f"url.file://{release}.insteadOf", "GIT_CONFIG_VALUE_0": a.repository})
    sys.argv = ["scripts/check_description_files.py", *a.args]
    runpy.run_path("scripts/check_description_files.py", run_name="__main__")


if __name__ == "__main__":
    main()
