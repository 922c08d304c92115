"""Where a launch of ``orbitai web SCAN`` spends its seconds (issue 81: "launch 16-20 s to the first frame at load
3.5-6"; bar: the first frame <= 6 s idle, <= 10 s with a job running, the printed address within 2 s).

Each launch: a fresh headless Chromium (1600x1000) started first, then ``orbitai web HEAD`` as a process (a 1 mm T1-like
whole head from SynthSeg head 1, 256^3 float32, `benchmarks.bench_web.head_volume`) with ``ORBITAI_WEB_TIMES=1``, so
that it writes a line per phase of its launch (`orbitai.web.launch`); the page is opened as soon as the server answers
and the launch ends when the page has drawn its first slice (the axial canvas's first frame). Every phase is in
seconds from the process's start: ``cli`` (Python and the command line), ``listening`` (the address printed),
``imports`` (the web app's modules), ``app`` (the app built), ``scan_read``, ``scan_shown``, ``first_pack`` (the
scan's first resolution step packed), ``first_pack_sent`` (the page fetched it), ``server_frame`` (every server view
has an image in the page) and ``first_frame`` (the page's own first slice).

The 1-minute load average (/proc/loadavg) is recorded before and after each launch. ``--busy N`` runs N CPU-bound
processes beside the launches (a model job); ``--launches N`` sets the count (default 3); ``--tag NAME`` names the
row in results/web_launch.json (default ``busyN``), whose other rows are kept.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_web import _FRAMES_JS, head_volume
from benchmarks.common import RESULTS, write_result

PHASES = ("cli", "listening", "imports", "app", "serving", "scan_read", "scan_shown", "first_pack", "page_connected",
          "first_pack_sent")
_MARK = re.compile(r"orbitai web: launch (\w+) ([0-9.]+)")


def load1() -> float:
    """The 1-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def one_launch(head: Path, tree: str = "") -> dict[str, Any]:
    """One launch of ``orbitai web HEAD`` in a fresh browser: each phase's seconds from the process start, and the
    load before and after. ``tree``: a checkout whose orbitai the server runs (PYTHONPATH; default this one)."""
    from orbitai.testing.web import WebPage, browser, web_server

    out: dict[str, Any] = {"load_before": load1()}
    with browser() as driver:
        t0 = time.time()
        with web_server(str(head), env={"ORBITAI_WEB_TIMES": "1",
                                             # PYTHONSAFEPATH: the working folder's orbitai does not come first
                                             **({"PYTHONPATH": tree, "PYTHONSAFEPATH": "1"} if tree else {})},
                        start_timeout_s=120) as srv:
            out["answers"] = time.time() - t0
            page = WebPage(driver, srv.url)
            page.wait(lambda: driver.execute_script(_FRAMES_JS, "Red") > 0, 120, "the page's first drawn slice",
                      interval_s=0.02)
            out["first_frame"] = time.time() - t0
            page.wait_views(120)
            out["server_frame"] = time.time() - t0
            time.sleep(0.5)
            for phase, at in _MARK.findall(srv.log.read_text(errors="replace")):
                out.setdefault(phase, float(at) - t0)
    out["load_after"] = load1()
    return {k: round(v, 3) for k, v in out.items()}


def tree_name(tree: str) -> str:
    """``tree`` as its commit, and whether it has changes of its own (e.g. the phase lines added to an older commit)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", tree, *args], capture_output=True, text=True).stdout.strip()
    changed = git("status", "--porcelain", "--untracked-files=no")
    return f"{tree} at {git('rev-parse', '--short', 'HEAD')}{' with local changes' if changed else ''}"


def main() -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--busy", type=int, default=0, help="CPU-bound processes run beside the launches")
    ap.add_argument("--launches", type=int, default=3)
    ap.add_argument("--tag", default=None)
    ap.add_argument("--head", default=None, help="a head scan to launch with (default: made here)")
    ap.add_argument("--against", default=None, metavar="TREE",
                    help="another checkout (e.g. main's, with the phase lines added): its launches alternate with "
                         "this one's, under the same load, as the row TAG_against")
    args = ap.parse_args()
    tag = args.tag or f"busy{args.busy}"
    with tempfile.TemporaryDirectory() as tmp:
        head = Path(args.head) if args.head else head_volume(Path(tmp) / "head_1mm.nrrd")
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
        try:
            time.sleep(5.0 if busy else 0.0)
            rows: dict[str, list[dict[str, Any]]] = {tag: [], **({f"{tag}_against": []} if args.against else {})}
            for _ in range(args.launches):
                for row, tree in ((tag, ""), (f"{tag}_against", args.against or "")):
                    if row in rows:
                        rows[row].append(one_launch(head, tree))
                        print(row, json.dumps(rows[row][-1]), flush=True)
                        time.sleep(2.0)
        finally:
            for p in busy:
                p.kill()
                p.wait()
    path = RESULTS / "web_launch.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    metrics, notes = dict(old.get("metrics", {})), dict(old.get("notes", {}))
    for row, launches in rows.items():
        for phase in (*PHASES, "answers", "server_frame", "first_frame", "load_before", "load_after"):
            values = [x[phase] for x in launches if phase in x]
            if values:
                metrics[f"{row}_{phase}_s" if not phase.startswith("load") else f"{row}_{phase}"] = statistics.median(
                    values)
        notes[row] = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "busy_processes": args.busy,
                      "tree": tree_name(str(Path(__file__).parents[1]) if row == tag else args.against),
                      "launches": launches}
    rows = [t for t in notes if t != "what"]
    # issue 81: 6 s on a quiet machine (a busy0 row measured with nothing else running: its load_before says), 10 s
    # with a job running (every other row; the morning's rows ran beside other work)
    targets = {**{f"{t}_first_frame_s": "<= 6" if t == "busy0" else "<= 10" for t in rows},
               **{f"{t}_listening_s": "<= 2" for t in rows}}
    notes["what"] = (__doc__.split("\n\n")[1].replace("\n", " ") + " Medians per row; the phases of every launch "
                     "under notes.<row>.launches, with the checkout it ran (notes.<row>.tree; a row *_against ran "
                     "alternately with its row, under the same load). Load: the 1-minute load average; a machine "
                     "whose cores other work keeps busy (a training job) is never idle, and its rows say so.")
    return write_result("web_launch", metrics, targets, notes)


if __name__ == "__main__":
    main()
