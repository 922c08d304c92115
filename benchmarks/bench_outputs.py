"""Outputs of every task's prediction on fixed phantoms, as digests: the check that a change which should
not alter results (a refactor, a reliability fix for other input) leaves them byte-identical.

Each command runs as ``python -m orbitai ...`` with the checkout under test first on ``PYTHONPATH``
(``ORBITAI_CHECKOUT``, default this one), on phantoms made once by the same checkout's ``orbitai phantom``
(held-out seeds). Every output file is reduced to a digest: JSON files after removing what differs from
run to run (timings, the device, absolute paths), ``.npz`` files array by array less the same, everything else
byte for byte. The digests go to
``benchmarks/results/outputs.json``; when that file already holds digests of another checkout (its
``checkout`` commit differs), the run also says which files differ.

``ORBITAI_CHECKOUT=/path/to/old/worktree python -m benchmarks outputs`` then ``python -m benchmarks outputs``
compares an earlier commit with this one.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from benchmarks.common import RESULTS, write_result

HERE = Path(__file__).resolve().parent.parent
#: (cohort kind, seed): one held-out phantom each (training cohorts use other seeds; see the Makefile).
PHANTOMS = {"orbit-ct": 9100, "orbit-mri": 9100, "tao": 3990, "ivgc": 7000, "brain-flair": 17000}
#: name -> (phantom kind, orbitai arguments; IMAGE / SEG are the phantom's image and segmentation).
COMMANDS: dict[str, tuple[str, list[str]]] = {
    "seg_ct": ("orbit-ct", ["seg", "predict", "IMAGE", "--labelmap", "--uncertainty"]),
    "seg_mri": ("orbit-mri", ["seg", "predict", "IMAGE", "--labelmap"]),
    "seg_prior": ("orbit-ct", ["seg", "prior", "IMAGE"]),
    "tao_b": ("tao", ["tao", "predict", "IMAGE", "--segmentation", "SEG", "--model", "B"]),
    "ivgc_svm": ("ivgc", ["ivgc", "predict", "IMAGE", "--segmentation", "SEG", "--model", "svm"]),
    "ivgc_resnet50": ("ivgc", ["ivgc", "predict", "IMAGE", "--segmentation", "SEG", "--model", "resnet50"]),
    "neuro_lesions": ("brain-flair", ["neuro", "lesions", "IMAGE"]),
    "neuro_predict": ("brain-flair", ["neuro", "predict", "IMAGE", "--lesions", "SEG"]),
}
#: JSON keys whose values differ between identical runs.
VOLATILE = ("seconds", "timing", "time_s", "elapsed", "device", "started", "finished", "path", "out")


def _run(checkout: Path, args: list[str], cwd: Path, extra_env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(checkout), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="2", **(extra_env or {}))
    return subprocess.run([sys.executable, "-m", "orbitai", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1800)


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in sorted(value.items())
                if not any(word in k.lower() for word in VOLATILE)}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return os.path.basename(value)
    return value


def digest(path: Path) -> str:
    """SHA-256 of a file; of its stable content for JSON (see module docstring)."""
    if path.suffix == ".json":
        data = json.dumps(_stable(json.loads(path.read_text(encoding="utf-8"))), sort_keys=True).encode()
    elif path.suffix == ".npz":   # arrays by name, less the volatile ones (a prior records its run time)
        import numpy as np

        h = hashlib.sha256()
        with np.load(path, allow_pickle=False) as f:
            for name in sorted(n for n in f.files if not any(word in n.lower() for word in VOLATILE)):
                a = f[name]
                h.update(f"{name}:{a.dtype.str}:{a.shape}:".encode() + np.ascontiguousarray(a).tobytes())
        return h.hexdigest()
    else:
        data = path.read_bytes()
    return hashlib.sha256(data).hexdigest()


def key_digests(path: Path) -> dict[str, str]:
    """A JSON file's top-level keys, each with the SHA-256 of its stable value: which keys a differing file changed."""
    data = _stable(json.loads(path.read_text(encoding="utf-8")))
    if not isinstance(data, dict):
        return {}
    return {k: hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest() for k, v in data.items()}


def checkout_commit(checkout: Path) -> str:
    res = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return res.stdout.strip() or "unknown"


def run_outputs(checkout: Path, work: Path, outputs: str = "outputs", extra_env: dict[str, str] | None = None,
                device: str = "cpu", commands: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Make the phantoms and run every command (or those named in ``commands``) with ``checkout`` (and ``extra_env``:
    e.g. ``ORBITAI_MODEL_PATH``) on ``device``, each into ``work/<outputs>/<command>``; digests per command and file."""
    names = list(COMMANDS) if commands is None else list(commands)
    inputs: dict[str, dict[str, str]] = {}
    for kind, seed in PHANTOMS.items():
        if not any(COMMANDS[n][0] == kind for n in names):
            continue
        folder = work / "phantoms" / kind
        if not (folder / "manifest.csv").is_file():
            res = _run(checkout, ["phantom", kind, "--n", "1", "--seed", str(seed), "--out", str(folder),
                                  "--montage-cases", "0"], work)
            if res.returncode != 0:
                raise RuntimeError(f"phantom {kind}: {res.stderr.strip().splitlines()[-1:]}")
        with open(folder / "manifest.csv", newline="", encoding="utf-8") as f:
            row = next(csv.DictReader(f))
        inputs[kind] = {"IMAGE": str(folder / row["image"]), "SEG": str(folder / row["segmentation"])}
    out: dict[str, Any] = {}
    for name in names:
        kind, args = COMMANDS[name]
        dest = work / outputs / name
        argv = [inputs[kind].get(a, a) for a in args] + ["--out", str(dest), "--device", device]
        t0 = time.perf_counter()
        res = _run(checkout, argv, work, extra_env)
        if res.returncode != 0:
            out[name] = {"error": (res.stderr.strip().splitlines() or ["?"])[-1]}
            continue
        files = sorted(p for p in dest.rglob("*") if p.is_file())
        out[name] = {"seconds": round(time.perf_counter() - t0, 1),
                     "files": {p.relative_to(dest).as_posix(): digest(p) for p in files},
                     "json_keys": {p.relative_to(dest).as_posix(): key_digests(p) for p in files if p.suffix == ".json"}}
    return out


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The files whose digests differ (or that one side lacks), per command."""
    diffs = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name, {}), new.get(name, {})
        if "error" in a or "error" in b:
            if a.get("error") != b.get("error"):
                diffs.append(f"{name}: error {a.get('error')!r} -> {b.get('error')!r}")
            continue
        fa, fb = a.get("files", {}), b.get("files", {})
        ka, kb = a.get("json_keys", {}), b.get("json_keys", {})
        for f in sorted(set(fa) | set(fb)):
            if fa.get(f) == fb.get(f):
                continue
            keys = ka.get(f), kb.get(f)
            if keys[0] is not None and keys[1] is not None:     # which top-level keys changed, added or went
                changed = sorted(k for k in set(keys[0]) | set(keys[1]) if keys[0].get(k) != keys[1].get(k))
                diffs.append(f"{name}/{f} (keys: {', '.join(changed)})")
            else:
                diffs.append(f"{name}/{f}")
    return diffs


def main() -> None:
    checkout = Path(os.environ.get("ORBITAI_CHECKOUT", HERE)).resolve()
    commit = checkout_commit(checkout)
    previous_path = RESULTS / "outputs.json"
    previous = (json.loads(previous_path.read_text(encoding="utf-8")).get("notes")
                if previous_path.is_file() else None)
    with tempfile.TemporaryDirectory(prefix="orbitai-bench-outputs-") as tmp:
        outputs = run_outputs(checkout, Path(tmp))
    notes: dict[str, Any] = {"checkout": commit, "outputs": outputs}
    metrics: dict[str, float] = {"commands_failed": float(sum("error" in v for v in outputs.values()))}
    targets = {"commands_failed": "== 0"}
    if previous and previous.get("checkout") != commit:
        diffs = differences(previous["outputs"], outputs)
        notes["compared_with"] = {"checkout": previous["checkout"], "differing_files": diffs}
        metrics["files_differing_from_" + previous["checkout"]] = float(len(diffs))
        targets["files_differing_from_" + previous["checkout"]] = "== 0"
        print(f"outputs of {commit} vs {previous['checkout']}: "
              + ("identical" if not diffs else f"{len(diffs)} differ: {', '.join(diffs)}"))
    write_result("outputs", metrics, targets, notes)
