"""Convert brainchop's MindGrab (tfjs layers model) into an OrbitAI bundle (issue 65).

    git clone https://github.com/neuroneural/brainchop && git -C brainchop checkout 4c87885
    python scripts/convert_mindgrab.py --source brainchop/public/models/mindgrab --license brainchop/LICENSE

Reads ``model.json`` (layer list, dilations, weight manifest) and the ``model.bin`` shard(s) (float32, little
endian, in manifest order), checks that the layers are the MeshNet of `orbitai.neuro.mindgrab`, transposes each
tfjs kernel [kd, kh, kw, in, out] to PyTorch's [out, in, kd, kh, kw], stores the weights in float16
(`half_precision_state`, the project's norm) and writes ``orbitai/resources/models/mindgrab_meshnet`` with the
licence notice (MIT) beside the weights.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orbitai.bundle.core import BUILTIN_DIR, WEIGHTS, half_precision_state, write_bundle
from orbitai.io.checksums import sha256_file
from orbitai.neuro.mindgrab import BUNDLE, mindgrab_meshnet

SOURCE_COMMIT = "4c87885"
SOURCE_URL = "https://github.com/neuroneural/brainchop/tree/4c87885/public/models/mindgrab"


def read_tfjs(folder: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The conv layers' configs and the weights by tfjs name."""
    spec = json.loads((folder / "model.json").read_text())
    topo = spec["modelTopology"]
    layers = (topo.get("model_config") or topo)["config"]["layers"]
    weights: dict[str, np.ndarray] = {}
    for group in spec["weightsManifest"]:
        blob = b"".join((folder / p).read_bytes() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            if w["dtype"] != "float32":
                raise SystemExit(f"{w['name']}: dtype {w['dtype']} not handled")
            n = int(np.prod(w["shape"]))
            weights[w["name"]] = np.frombuffer(blob, "<f4", n, off).reshape(w["shape"]).copy()
            off += 4 * n
        if off != len(blob):
            raise SystemExit(f"weights shard size {len(blob)} != {off} bytes in the manifest")
    return [lyr for lyr in layers if lyr["class_name"] == "Conv3D"], weights


def state_dict(convs: list[dict], weights: dict[str, np.ndarray]) -> tuple[dict, list[int]]:
    import torch

    hidden, out = convs[:-1], convs[-1]
    dil = [int(c["config"]["dilation_rate"][0]) for c in hidden]
    for c in hidden:
        cfg = c["config"]
        if (cfg["kernel_size"] != [3, 3, 3] or cfg["use_bias"] or cfg["padding"] != "same"
                or not cfg["name"].endswith("_gn") or len(set(cfg["dilation_rate"])) != 1):
            raise SystemExit(f"layer {cfg['name']} is not a MindGrab MeshNet layer: {cfg}")
    state = {}
    for i, c in enumerate(hidden):
        k = weights[c["config"]["name"] + "/kernel"]
        state[f"convs.{i}.weight"] = torch.from_numpy(np.ascontiguousarray(k.transpose(4, 3, 0, 1, 2)))
    name = out["config"]["name"]
    state["out.weight"] = torch.from_numpy(np.ascontiguousarray(weights[name + "/kernel"].transpose(4, 3, 0, 1, 2)))
    state["out.bias"] = torch.from_numpy(weights[name + "/bias"])
    return state, dil


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, required=True, help="brainchop's public/models/mindgrab folder")
    ap.add_argument("--license", type=Path, required=True, help="brainchop's LICENSE (MIT)")
    ap.add_argument("--out", type=Path, default=BUILTIN_DIR / BUNDLE)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    licence = args.license.read_text()
    if "MIT License" not in licence:
        raise SystemExit(f"{args.license} is not the MIT licence; refusing to bundle the weights.")
    convs, weights = read_tfjs(args.source)
    state, dil = state_dict(convs, weights)
    channels = int(state["convs.0.weight"].shape[0])
    net = mindgrab_meshnet(channels, dil, int(state["out.bias"].shape[0]))
    net.load_state_dict(state, strict=True)                 # the shapes fit the port
    half, kept = half_precision_state(state)
    src_sha = hashlib.sha256((args.source / "model.bin").read_bytes()).hexdigest()
    meta = {
        "name": BUNDLE, "version": "1.0.0", "task": "brain_extraction",
        "description": ("MindGrab (brainchop): any-modality brain extraction MeshNet, ported to PyTorch from "
                        f"neuroneural/brainchop {SOURCE_COMMIT}. MIT licence (LICENSE in this folder)."),
        "architecture": {"name": "mindgrab_meshnet", "args": {"channels": channels, "dilations": dil, "classes": 2}},
        "parameters": int(sum(v.numel() for v in state.values())),
        "input": {"conform": "256^3 at 1 mm, LIA, linear, 0-255 from min to the 99.9th percentile",
                  "intensity": "min-max to [0, 1]", "crop": "box of voxels > 0.5 with 20 voxels' margin",
                  "axes": "reversed (brainchop enableTranspose)"},
        "source": {"url": SOURCE_URL, "commit": SOURCE_COMMIT, "model_bin_sha256": src_sha,
                   "licence": "MIT", "copyright": "Copyright (c) 2021 neuroneural/brainchop"},
        "weights_precision": "float16",
        "license": "MIT",
        "training_data": ("MindGrab's own training by its authors (brainchop, neuroneural; synthetic and real heads "
                          "of many modalities); not trained by OrbitAI"),
    }
    if kept:
        raise SystemExit(f"float16 cannot hold {kept}; keep the bundle float32 (store_half_precision KEEP_FLOAT32)")

    def write(tmp: Path) -> dict:
        torch.save(half, tmp / WEIGHTS)
        shutil.copyfile(args.license, tmp / "LICENSE")
        return {"weights_sha256": sha256_file(tmp / WEIGHTS)}

    b = write_bundle(args.out, meta, write, args.overwrite)
    print(f"{b.name}: {meta['parameters']} parameters, dilations {dil}, written to {b.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
