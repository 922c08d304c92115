"""``orbitai web`` as a user starts it: a scan given on the command line, the warning when it listens beyond this
machine, and one-line errors for bad options, a busy port or a wrong host (before anything is built: no VTK output)."""
from __future__ import annotations

import socket
import subprocess
import sys

from orbitai.testing.web import WebPage, web_server
from web_cases import PHANTOMS


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orbitai", "web", *args], capture_output=True, text=True, timeout=60)


def test_bad_options_are_refused_in_one_line(tmp_path):
    r = _run(str(tmp_path / "missing.nrrd"))
    assert r.returncode == 2 and "does not exist" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _run("--port", "70000")
    assert r.returncode == 2 and "--port must be between 0 and 65535" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_number_like_secret_is_refused_in_one_line():
    import os

    r = subprocess.run([sys.executable, "-m", "orbitai", "web", "--port", "0"], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "ORBITAI_WEB_TOKEN": "12345678901234567890"})
    assert r.returncode == 2 and "ORBITAI_WEB_TOKEN" in r.stderr and "letter" in r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1


def _one_line_naming(r: subprocess.CompletedProcess, option: str) -> None:
    assert r.returncode == 2, r.stderr[-2000:]
    assert option in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
    assert "vtk" not in (r.stdout + r.stderr).lower()


def test_a_busy_port_or_a_wrong_host_is_one_line_naming_the_option():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        _one_line_naming(_run("--port", str(busy.getsockname()[1])), "--port")
    _one_line_naming(_run("--host", "no-such-host.invalid"), "--host")
    _one_line_naming(_run("--host", "192.0.2.1"), "--host")         # TEST-NET: not an address of this machine
    _one_line_naming(_run("--max-upload-mb", "0"), "--max-upload-mb")
    _one_line_naming(_run("--allow-origin", "file:///etc"), "--allow-origin")


def test_a_scan_on_the_command_line_opens_in_the_views_and_other_hosts_are_warned(web_tools, web_data, driver):
    scan = str(web_data / PHANTOMS["orbit-ct"])
    with web_server(scan, "--host", "0.0.0.0", "--encoder", "png") as srv:
        page = WebPage(driver, srv.url)
        page.wait_views()
        assert [v["title"] for v in page.wait_state("volumes", bool, 30)] == ["orbit_ct_0000"]
        assert page.state("input_volume") == page.state("volumes")[0]["value"]
        log = srv.log.read_text()
        assert "listens on 0.0.0.0" in log and f"?secret={srv.token}" in log
        assert page.state("orbit_apply_enabled")


def test_the_address_is_printed_before_the_app_is_imported_or_the_scan_read_and_answers(web_tools, web_data):
    """Issue 81 (a launch in seconds): ``orbitai web SCAN`` prints its address as soon as its socket listens, before it
    imports the web app's modules, builds the app or reads the scan (the order of its launch's phase lines,
    ``ORBITAI_WEB_TIMES``; no clock), and that address answers once the page is served (a request made at once waits
    in the socket's queue rather than being refused)."""
    import os
    import secrets
    import signal
    import urllib.request

    token = secrets.token_urlsafe(16)
    proc = subprocess.Popen([sys.executable, "-m", "orbitai", "web", str(web_data / PHANTOMS["orbit-ct"]), "--port",
                             "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "ORBITAI_WEB_TOKEN": token, "ORBITAI_WEB_TIMES": "1"})
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if "orbitai web: open http" in line:
                break
        address = lines[-1].split("open ", 1)[1].split()[0]
        assert address.endswith(f"?secret={token}"), lines
        with urllib.request.urlopen(address.replace("localhost", "127.0.0.1"), timeout=120) as answer:
            assert answer.status == 200 and b"<html" in answer.read().lower()
        for line in proc.stdout:            # until the scan is shown (then stopped)
            lines.append(line.strip())
            if "orbitai web: launch scan_shown" in line:
                break
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    lines += rest.splitlines()
    assert not any("Traceback" in line for line in lines), lines
    phase = {line.split()[3]: i for i, line in enumerate(lines) if line.startswith("orbitai web: launch ")}
    printed = next(i for i, line in enumerate(lines) if "orbitai web: open http" in line)
    assert {"imports", "app", "serving", "scan_read", "scan_shown"} <= set(phase), lines
    assert printed < phase["imports"] < phase["app"] < phase["serving"], lines
    assert printed < phase["scan_read"] < phase["scan_shown"], lines


def test_the_web_app_imports_no_model_stack_scan_judge_or_annotation_algorithm(web_tools):
    """Issue 81 (a launch in seconds): the app's modules, imported before the address answers, leave out what the
    first frame does not need: torch, the scan judge (scipy.ndimage), the annotation algorithms (``orbitai.annotate``,
    imported at the first edit or the scan's preparation) and the orbit prior's engine (``orbitai.orbit.prior``; the
    panels read priors with ``orbitai.orbit.prior_file``). The page's smoothing list is the algorithms' own."""
    code = ("import sys, orbitai.web.app; print(sorted(m for m in ('torch', 'monai', 'scipy.ndimage', 'orbitai.scan', "
            "'orbitai.annotate', 'orbitai.orbit.prior', 'orbitai.orbit.predict', 'matplotlib', 'sklearn', 'radiomics') "
            "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "[]", (r.stdout, r.stderr[-2000:])
    from orbitai.annotate.edits import SMOOTHING_METHODS
    from orbitai.web.edit_tools import SMOOTHING_LABELS

    assert tuple(SMOOTHING_LABELS) == SMOOTHING_METHODS
