"""``orbitai demo``: the main job end to end on built-in data.

1. make a synthetic orbital CT (atlas-based phantom with exact ground truth);
2. segment it with the bundled demo model in a child process, exactly as the Slicer module does
   (progress lines, outputs handed over only on success);
3. build a real MRML scene (headless ``slicer-core``): the CT, the predicted and true
   segmentations, a structure-volume table, a metrics table and the model's uncertainty map as a
   heat-map overlay; save it as an ``.mrb`` that opens in 3D Slicer;
4. print what was done and where the outputs are.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from orbitai.arguments import add_device_option
from orbitai.bundle.models import find_task_bundle
from orbitai.device import select_device
from orbitai.errors import UserError
from orbitai.io import write_volume
from orbitai.io.segfile import write_segmentation
from orbitai.jobs.child import OrbitaiJob
from orbitai.orbit.configs import ORBIT_STRUCTURES
from orbitai.orbit.evaluate import score_case
from orbitai.orbit.figure import save_comparison
from orbitai.orbit.result import SegmentationResult
from orbitai.phantoms import orbit_case
from orbitai.staging import staged_folder


def add_parser(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser("demo", help=help_text,
                       description="Segment the orbits of a synthetic CT with the bundled model, compare with "
                                   "the ground truth and save everything as a Slicer scene (.mrb).")
    p.add_argument("--out", default="demo_output", help="output folder (default demo_output)")
    p.add_argument("--seed", type=int, default=20261122, help="phantom seed (default 20261122)")
    add_device_option(p)
    p.add_argument("--model", help="segmentation bundle (default: the bundled CT demo model)")
    p.set_defaults(func=run)


def _bar(done: int, total: int, message: str) -> None:
    width = 30
    n = int(width * done / max(total, 1))
    print(f"\r  [{'#' * n}{'.' * (width - n)}] {done}/{total} {message[:40]:<40}", end="", flush=True)


def run(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}.")
    select_device(args.device)          # refuse a missing device or model before any work
    if args.model:
        find_task_bundle(args.model, "segmentation", "a segmentation model")
    out = Path(args.out).resolve()
    t0 = time.perf_counter()
    print(f"OrbitAI demo -> {out}")
    # Everything is written beside OUT and moved into it only at the end: a failure or a cancel
    # (Ctrl-C, SIGTERM; the child process is stopped too) leaves no file behind.
    with staged_folder(out) as work:
        rows = _demo(args, work)

    print(f"\nDone in {time.perf_counter() - t0:.0f} s. Outputs in {out}:")
    for p in sorted(out.iterdir()):
        print(f"   {p.name}")
    mean_dice = sum(r["dice"] for r in rows) / len(rows)
    print(f"Mean Dice over {len(rows)} structures: {mean_dice:.3f} (demo model trained on phantoms; not for clinical use)")
    return 0


def _demo(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """Steps 1-4 of the demo, writing into ``work``; returns the agreement rows (one per structure)."""
    print("1. Synthetic orbital CT from the SPL/NAC atlas (phantom with exact ground truth)")
    case = orbit_case(args.seed, modality="ct")
    image_path = write_volume(case.image, work / "phantom_ct.nrrd")
    write_segmentation(case.labels, work / "phantom_ct_truth.seg.nrrd")
    sx, sy, sz = case.image.spacing
    print(f"   {image_path.name}: {case.image.size_xyz} voxels at {sx:.2f} x {sy:.2f} x {sz:.2f} mm")

    print("2. Orbit segmentation in a child process (as the Slicer module runs it)")
    cmd = ["seg", "predict", str(image_path), "--out", "{out}", "--uncertainty", "--device", args.device]
    if args.model:
        cmd += ["--model", args.model]
    res = OrbitaiJob(cmd, dest=work).run(_bar)
    print()
    for line in res.stdout:
        if not line.startswith("wrote "):  # the child names its temporary folder; outputs are listed below
            print(f"   {line}")
    result = SegmentationResult.read(work, reference=case.image)   # result.json, segmentation, volumes, checked
    pred = result.labels
    rows = score_case(pred.array, case.labels.array, ORBIT_STRUCTURES, case.image.spacing)

    print("3. Agreement with the ground truth (both orbits pooled)")
    print(f"   {'structure':<26} {'Dice':>6} {'IoU':>6} {'pred cm3':>9} {'true cm3':>9}")
    for r in rows:
        print(f"   {r['structure']:<26} {r['dice']:6.3f} {r['iou']:6.3f} {r['volume_pred_cm3']:9.3f} {r['volume_true_cm3']:9.3f}")

    fig = save_comparison(case.image, case.labels, pred, work / "segmentation_vs_truth.png",
                          title="OrbitAI demo: synthetic orbital CT, bundled demo SV-net")
    print(f"   figure: {fig.name}")

    print("4. Slicer scene (headless MRML)")
    try:
        import orbitai.mrml as mrml
    except ImportError as exc:  # slicer-core missing: the files above are still complete
        print(f"   skipped: slicer-core is not installed ({exc}); pip install slicer-core")
        return rows
    ctx = mrml.new_scene()
    ct_node = mrml.volume_node_from_volume(ctx, case.image, name="Phantom CT")
    seg_node = mrml.segmentation_node_from_labels(ctx, pred, reference_node=ct_node, name="Predicted orbit segmentation")
    mrml.segmentation_node_from_labels(ctx, case.labels, reference_node=ct_node, name="Ground truth")
    vol_rows = [{"structure": r["name"], "side": r["side"], "volume": float(r["volume_cm3"])} for r in result.volumes]
    mrml.table_node_from_rows(ctx, vol_rows, name="Orbit structure volumes", units={"volume": "cm3"})
    mrml.table_node_from_rows(ctx, rows, name="Agreement with ground truth",
                              units={"volume_pred_cm3": "cm3", "volume_true_cm3": "cm3"})
    overlay = mrml.overlay_node_from_volume(ctx, result.uncertainty, reference_node=ct_node, name="Model uncertainty")
    mrml.show_overlay(ctx, overlay, ct_node, opacity=0.4)
    mrb = mrml.save_mrb(ctx, work / "orbitai_demo.mrb")
    n_seg = seg_node.GetSegmentation().GetNumberOfSegments()
    print(f"   scene: CT volume, {n_seg} predicted segments, ground truth, 2 tables, uncertainty overlay")
    print(f"   saved {mrb.name} ({mrb.stat().st_size / 1e6:.1f} MB): open it in 3D Slicer (File > Open Data)")
    return rows
