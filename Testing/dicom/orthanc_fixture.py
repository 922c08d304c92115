"""A real PACS for the tests: Orthanc with its DICOMweb plugin (Debian ``orthanc``, ``orthanc-dicomweb``),
started on a free port of 127.0.0.1 with its storage in a temporary folder, and stopped afterwards.

Orthanc is a test tool here (GPL, run as a separate program), never a dependency of OrbitAI. ``make test``
installs it as root (the Makefile's ``test-tools``); elsewhere the tests say what to install and skip, and in
CI (``CI=true``) they fail instead, since CI must have it."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

from orbitai.testing.servers import free_port, wait_until_listening

__all__ = ["ORTHANC_INSTALL", "find_orthanc", "orthanc_server"]

ORTHANC_INSTALL = "install Debian's orthanc and orthanc-dicomweb (make test does it as root)"
_PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")


def find_orthanc() -> tuple[str, str] | None:
    """``(Orthanc executable, DICOMweb plugin)`` if both are installed."""
    exe = shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if os.path.exists(p)),
                                          None)
    plugin = next((str(p) for d in _PLUGIN_DIRS for p in sorted(Path(d).glob("libOrthancDicomWeb.so*"))
                   if Path(d).is_dir()), None)
    return (exe, plugin) if exe and plugin else None


@contextlib.contextmanager
def orthanc_server(start_timeout_s: float = 60.0) -> Iterator[str]:
    """Run Orthanc for the block and yield its DICOMweb root URL (``http://127.0.0.1:PORT/dicom-web``). Remote
    access is off (Orthanc then answers 127.0.0.1 only), no DICOM port, no authentication; storage and index in a
    temporary folder removed afterwards; the process is terminated (killed after 10 s) however the block ends."""
    found = find_orthanc()
    if found is None:
        raise FileNotFoundError(f"Orthanc or its DICOMweb plugin is missing: {ORTHANC_INSTALL}")
    exe, plugin = found
    with tempfile.TemporaryDirectory(prefix="orbitai-orthanc-") as d:
        port = free_port()
        config = {"Name": "orbitai-test", "StorageDirectory": f"{d}/storage", "IndexDirectory": f"{d}/index",
                  "HttpPort": port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
                  "DicomServerEnabled": False, "HttpTimeout": 60, "StableAge": 1, "Plugins": [plugin],
                  "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True}}
        (Path(d) / "orthanc.json").write_text(json.dumps(config))
        log = open(Path(d) / "orthanc.log", "wb")
        proc = subprocess.Popen([exe, str(Path(d) / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            wait_until_listening(port, proc, "Orthanc", Path(d) / "orthanc.log", start_timeout_s, interval_s=0.2)
            yield f"http://127.0.0.1:{port}/dicom-web"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            log.close()
