"""Annotation ready when the panel says "Ready" (issue 81: "first SmartFill preview 8.9-16.9 s at load 5.6-7.3 although
the panel says Ready"; bar: the first SmartFill preview <= 5 s and the first SmartPencil click <= 2 s after "Ready",
with a job of two CPU-bound processes running).

Each launch: ``orbitai web`` on a CT orbit phantom (users' defaults: the annotation tools prepared when a scan is shown)
in a headless Chromium (1600x1000); a segmentation with one segment is made on the right eyeball, and the clock waits
for the panel's "Ready" (``ann_prepare_ready``). Then, as the first annotation act of the session, either

* ``click``: one SmartPencil click on the globe's centre, timed to the view's first changed frame (the page's image),
* ``preview``: a 3-point brush stroke in the globe (the tool put down once the stroke is in the segment), then the
  SmartFill "Preview" button, timed to the preview in the panel's state (``ann_preview``) and then in the view's frame.

``--busy N`` runs N CPU-bound processes beside the launches (default 2, a model job); ``--reps`` launches per act
(default 2). The 1-minute load average is recorded before each act. Results: ``results/web_ready.json`` (a row per busy
count, ``busy<N>_...``; other rows kept).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_web import _changed_frame
from benchmarks.bench_web_launch import load1
from benchmarks.common import RESULTS, write_result

SEED = 7


def _phantom(root: Path) -> tuple[Path, Path]:
    subprocess.run([sys.executable, "-m", "orbitai", "phantom", "orbit-ct", "--n", "1", "--seed", str(SEED),
                    "--out", str(root / "ct"), "--montage-cases", "0"], check=True, capture_output=True)
    return root / "ct/images/orbit_ct_0000.nrrd", root / "ct/segmentations/orbit_ct_0000.seg.nrrd"


def one_act(driver: Any, scan: Path, truth: Path, act: str) -> dict[str, Any]:
    """One launch, the segment made, "Ready" waited for, then the first ``act`` ("click" or "preview") timed."""
    from orbitai.testing.web import WebPage, centre_ras, web_server

    row: dict[str, Any] = {"act": act}
    with web_server(str(scan), start_timeout_s=120) as srv:
        page = WebPage(driver, srv.url)
        page.wait_views(120)
        page.new_segment("eyeball_right")
        centre = centre_ras(truth, 2)
        page.jump(centre)
        page.steady_geometry("Red")
        t0 = time.monotonic()
        page.wait_state("ann_prepare_ready", bool, 600)
        row["ready_after_segment_s"] = round(time.monotonic() - t0, 3)
        row["ready_text"] = page.state("ann_prepare")
        row["load"] = load1()
        if act == "click":
            page.choose_tool("smartpencil")
            src, img = page.view_image("Red")
            t = time.monotonic()
            page.drag("Red", [page.to_css(centre)])
            _changed_frame(page, "Red", src, img, 300)
            row["first_s"] = round(time.monotonic() - t, 3)
        else:
            page.set_state("ann_brush_mm", 2.0)
            page.choose_tool("paint")
            page.drag("Red", [page.to_css([centre[0] + dx, centre[1], centre[2]]) for dx in (-3.0, 0.0, 3.0)])
            page.wait_state("ann_voxels", bool, 60)
            page.set_state("ann_tool", "none")
            src, img = page.view_image("Red")
            t = time.monotonic()
            page.click("orbitai-ann-preview")
            page.wait_state("ann_preview", bool, 300)
            row["first_state_s"] = round(time.monotonic() - t, 3)
            _changed_frame(page, "Red", src, img, 60)
            row["first_s"] = round(time.monotonic() - t, 3)
        row["load_after"] = load1()
    return row


def main() -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--busy", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    from orbitai.testing.web import browser

    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            scan, truth = _phantom(Path(tmp))
            with browser() as driver:
                for _ in range(args.reps):
                    for act in ("preview", "click"):
                        rows.append(one_act(driver, scan, truth, act))
                        print(json.dumps(rows[-1]), flush=True)
    finally:
        for p in busy:
            p.kill()
    tag = f"busy{args.busy}"
    path = RESULTS / "web_ready.json"
    old = json.loads(path.read_text()) if path.exists() else {"metrics": {}, "notes": {}}
    metrics = {k: v for k, v in old.get("metrics", {}).items() if not k.startswith(tag + "_")}
    notes = {k: v for k, v in old.get("notes", {}).items() if k != tag}
    for act, name in (("preview", "smartfill_first_preview"), ("click", "smartpencil_first_click")):
        times = [r["first_s"] for r in rows if r["act"] == act]
        metrics[f"{tag}_{name}_median_s"] = statistics.median(times)
        metrics[f"{tag}_{name}_max_s"] = max(times)
    metrics[f"{tag}_load_median"] = statistics.median(r["load"] for r in rows)
    notes[tag] = {"busy_processes": args.busy, "scan": f"phantom orbit-ct seed {SEED}", "acts": rows,
                  "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    targets = {f"{tag}_smartfill_first_preview_median_s": "<= 5", f"{tag}_smartpencil_first_click_median_s": "<= 2"}
    return write_result("web_ready", metrics, {**old.get("targets", {}), **targets}, notes)


if __name__ == "__main__":
    print(main())
