"""The image classifier of what a scan is: small MLP ensembles over :mod:`orbitai.scan.features`, run with NumPy.

Trained with scikit-learn (:mod:`orbitai.commands.scan_train`, beside the phantoms it renders: not in this package,
which the input checks import) and stored as plain arrays (``classifier.npz``, read with
``allow_pickle=False`` after its SHA-256 is checked against ``classifier.json``), so that the Slicer side can ask what
a scan is without scikit-learn or torch. Each question (CT or MR, the MR weighting, fat suppression, orbits in view,
brain in view) has its own ensemble; its answer is the ensemble's mean probability.
"""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from orbitai.errors import OrbitAIError
from orbitai.io.checksums import sha256_file
from orbitai.io.volume import Volume
from orbitai.scan.features import FEATURE_NAMES, block_factors, coarse_values, describe
from orbitai.staging import strict_json

#: The questions and their answers, in the order of each ensemble's outputs.
#: Fat suppression's third answer, None, is "no fat in view to tell" (a skull-stripped brain).
QUESTIONS = {"modality": ("CT", "MR"), "weighting": ("T1", "T2", "FLAIR", "PD"), "fat_suppressed": (False, True, None),
             "orbits_in_view": (False, True), "brain_in_view": (False, True)}


def classifier_dir() -> Path:
    return Path(str(resources.files("orbitai") / "resources" / "scan"))


@dataclass(frozen=True)
class Ensemble:
    """Standardisation and the layers of each member: ``layers[m]`` = [(W, b), ...] with ReLU between."""

    mean: np.ndarray
    scale: np.ndarray
    layers: tuple[tuple[tuple[np.ndarray, np.ndarray], ...], ...]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Mean class probabilities of the members for the rows of ``x``."""
        z0 = (np.atleast_2d(x) - self.mean) / self.scale
        out = []
        for member in self.layers:
            z = z0
            for i, (w, b) in enumerate(member):
                z = z @ w + b
                if i < len(member) - 1:
                    z = np.maximum(z, 0)
            if z.shape[1] == 1:                       # scikit-learn's binary output: P(second class)
                p1 = 1 / (1 + np.exp(-z[:, 0]))
                out.append(np.stack([1 - p1, p1], 1))
            else:
                e = np.exp(z - z.max(1, keepdims=True))
                out.append(e / e.sum(1, keepdims=True))
        return np.mean(out, 0)


@dataclass(frozen=True)
class ScanClassifier:
    ensembles: dict[str, Ensemble]
    meta: dict

    def answer(self, vol: Volume, coarse: np.ndarray | None = None) -> dict[str, tuple[object, float]]:
        """Each question's most probable answer and its probability (``coarse``: see :func:`describe`).

        A scan finer than the 2 mm grid has its weighting (tissue contrast) read from its voxels averaged in 2 mm
        blocks (:func:`coarse_values` ``average``), as a 2 mm acquisition measures them: point samples keep a fine
        scan's noise, which read a noisy 0.5 mm orbit T2 as T1 (issue 66). The other answers stay on the point samples
        their ensembles were fit on (averaged, a fine CT phantom read as MR) until the classifier is refit on the
        averages.

        A fine scan's two descriptions are computed side by side in two threads (NumPy's and SciPy's array work lets
        go of the GIL for most of it: 1.43 -> 0.80 s on a 1 mm head on 2 cores, the same numbers)."""
        if max(block_factors(vol)) == 1:
            return self.answer_features(describe(vol, coarse))
        with ThreadPoolExecutor(2, thread_name_prefix="orbitai-describe") as pool:
            averaged = pool.submit(lambda: describe(vol, coarse_values(vol, average=True)))
            result = self.answer_features(describe(vol, coarse))
            result["weighting"] = self.answer_features(averaged.result())["weighting"]
        return result

    def answer_features(self, x: np.ndarray) -> dict[str, tuple[object, float]]:
        result: dict[str, tuple[object, float]] = {}
        for q, ens in self.ensembles.items():
            p = ens.probabilities(x)[0]
            k = int(np.argmax(p))
            result[q] = (QUESTIONS[q][k], float(p[k]))
        return result


def save(ensembles: dict[str, Ensemble], meta: dict, folder: Path) -> None:
    """Write ``classifier.npz`` and ``classifier.json`` (with the npz's SHA-256) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for q, ens in ensembles.items():
        arrays[f"{q}.mean"], arrays[f"{q}.scale"] = ens.mean, ens.scale
        for m, member in enumerate(ens.layers):
            for i, (w, b) in enumerate(member):
                arrays[f"{q}.{m}.{i}.w"], arrays[f"{q}.{m}.{i}.b"] = w.astype(np.float32), b.astype(np.float32)
    tmp = folder / "classifier.tmp.npz"
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]   # (numpy's stub takes the keys for its options)
    tmp.replace(folder / "classifier.npz")
    info = dict(meta, features=FEATURE_NAMES, sha256=sha256_file(folder / "classifier.npz"),
                questions={q: [str(a) for a in QUESTIONS[q]] for q in ensembles})
    (folder / "classifier.json").write_text(strict_json(info, indent=1))


@functools.lru_cache(maxsize=2)
def load(folder: str | None = None) -> ScanClassifier:
    """The scan classifier in ``folder`` (default: the bundled one), after its checksum is checked."""
    where = Path(folder) if folder else classifier_dir()
    try:
        meta = json.loads((where / "classifier.json").read_text())
    except (OSError, ValueError) as exc:
        raise OrbitAIError(f"The scan classifier in {where} cannot be read ({exc}); reinstall OrbitAI.") from None
    if meta.get("features") != FEATURE_NAMES:
        raise OrbitAIError(f"The scan classifier in {where} was trained on other image features than this "
                           "version computes; train it again (orbitai scan train).")
    if sha256_file(where / "classifier.npz") != meta.get("sha256"):
        raise OrbitAIError(f"The scan classifier's weights in {where} do not match their checksum (damaged or "
                           "changed); reinstall OrbitAI or train it again (orbitai scan train).")
    with np.load(where / "classifier.npz", allow_pickle=False) as z:
        arrays = dict(z)
    ensembles = {}
    for q in meta["questions"]:
        members = []
        m = 0
        while f"{q}.{m}.0.w" in arrays:
            layers, i = [], 0
            while f"{q}.{m}.{i}.w" in arrays:
                layers.append((arrays[f"{q}.{m}.{i}.w"], arrays[f"{q}.{m}.{i}.b"]))
                i += 1
            members.append(tuple(layers))
            m += 1
        ensembles[q] = Ensemble(arrays[f"{q}.mean"], arrays[f"{q}.scale"], tuple(members))
    return ScanClassifier(ensembles, meta)
