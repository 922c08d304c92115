"""IVGC radiomics features: one patient's six ROI strategies, and a cohort on Dask.

One case: :func:`load_case` reads the coronal T2 MRI and the recti segmentation and checks them
(3D, finite, MRI not CT, labels of the orbit scheme, segmentation on the image's grid within half a
voxel -- on another grid refused, or resampled by nearest neighbour when the user asks for it,
:func:`orbitai.io.segmentation_on_image`); :func:`case_features` gives
``{"<strategy>_<pyradiomics name>": value}`` with each filtered image computed once
(:class:`orbitai.radiomics.shared.SharedExtractor`).

A cohort: :func:`extract_cohort` runs the cases on a ``dask.distributed`` cluster (a local one of
worker processes by default, or a scheduler's address), keeps each finished case in a checksummed
per-case cache beside the output (``<out>.cache/``, written as :mod:`orbitai.training.checkpoint` writes
caches) so that a rerun does only the missing cases, and reports a failed case by id without
losing the others. The table (:class:`WideTable`) is one row per case, one column per feature.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
from tqdm import tqdm  # type: ignore[import-untyped]

from orbitai import staging
from orbitai.bundle.core import sha256_input
from orbitai.cohort.cluster import dask_map
from orbitai.cohort.manifest import ManifestError, read_labels, read_manifest
from orbitai.errors import InputError, OrbitAIError, one_line
from orbitai.io import Volume, read_volume, require_values, segmentation_on_image
from orbitai.ivgc.rois import check_label_values, parse_strategies, perturb_labels, strategy_masks
from orbitai.radiomics.protocol import RadiomicsProtocol
from orbitai.radiomics.shared import SharedExtractor
from orbitai.scan import ScanFacts
from orbitai.scan.values import ct_for_an_mr_model
from orbitai.training.checkpoint import load_arrays, save_arrays

log = logging.getLogger(__name__)

#: Manifest column of a second rater's segmentation (reproducibility analysis).
SECOND_RATER_COLUMN = "segmentation_2"
#: Column of ``features.csv`` with the digest of what each row was computed from.
KEY_COLUMN = "inputs_sha256"
#: Columns of ``features.csv`` with the SHA-256 of each row's image and segmentation files: a command
#: reading the table compares them with the manifest's files (:func:`check_table_files`).
FILE_COLUMNS = ("image_sha256", "segmentation_sha256")
#: Share of the segmentation's labelled volume that must fall inside the image after resampling.
MIN_OVERLAP = 0.5


# --------------------------------------------------------------------------------------------- one case
def read_case_image(image_path: str | os.PathLike, case_id: str = "") -> Volume:
    """The case's image, read and checked: 3D, finite, not constant (what :func:`load_case` reads first)."""
    return check_case_image(read_volume(image_path), image_path, case_id)


def check_case_image(vol: Volume, image_path: str | os.PathLike, case_id: str = "") -> Volume:
    """``vol`` (the image ``image_path`` holds) checked as :func:`read_case_image` checks it; returned."""
    who = f"Case {case_id}: " if case_id else ""
    if min(vol.shape) < 3:
        raise InputError(f"{who}the image {Path(image_path).name} is 2D ({' x '.join(map(str, vol.shape))} voxels); "
                         "IVGC radiomics needs a 3D coronal T2 MRI volume.")
    require_values(vol, f"image {Path(image_path).name}", case_id)       # NaN/infinite, absurd magnitudes, constant
    return vol


def load_case(image_path: str | os.PathLike, segmentation_path: str | os.PathLike, case_id: str = "",
              resample_masks: bool = False, warnings: Optional[list[str]] = None,
              facts: Optional[ScanFacts] = None, volume: Optional[Volume] = None) -> tuple[Any, np.ndarray]:
    """(SimpleITK image, [z, y, x] label array on its grid) of one case, checked for IVGC radiomics. A
    segmentation off the image's grid is refused unless ``resample_masks`` (then resampled, and
    ``warnings`` gets a line saying so: :func:`orbitai.io.segmentation_on_image`). A CT is refused as the scan's
    ``facts`` say (:func:`orbitai.scan.values.ct_for_an_mr_model`: what the user states wins); without them (a
    cohort's feature extraction, training: the cases are not judged one by one, a classifier run each), as its
    values say. ``volume``: the image as :func:`read_case_image` read it (a caller that judged it first)."""
    who = f"Case {case_id}: " if case_id else ""
    vol = volume if volume is not None else read_case_image(image_path, case_id)
    if ct_for_an_mr_model(facts, vol):
        raise InputError(f"{who}the image {Path(image_path).name} looks like CT (Hounsfield units: air near -1000); "
                         "IVGC radiomics needs a coronal T2 MRI.")
    labels = read_labels(Path(segmentation_path))
    what = f"{who}the segmentation {Path(segmentation_path).name}"
    check_label_values(labels.array, what[0].upper() + what[1:])
    labels, warning = segmentation_on_image(vol, labels, what, resample_masks, min_inside=MIN_OVERLAP)
    if warning is not None:
        log.info("%s", warning)
        if warnings is not None:
            warnings.append(warning)
    return vol.to_sitk(), np.asarray(labels.array)


def case_features(case_id: str, image: str, segmentation: str, strategies: Sequence[str],
                  protocol: Mapping[str, Any], perturb: bool = False, resample_masks: bool = False) -> dict[str, float]:
    """``{"<strategy>_<pyradiomics name>": value}`` of one case (``perturb``: of the documented
    perturbation of its segmentation, :func:`orbitai.ivgc.rois.perturb_labels`). Plain arguments,
    so that it runs on a Dask worker."""
    chosen = parse_strategies(list(strategies))
    img, labels = load_case(image, segmentation, case_id, resample_masks)
    if perturb:
        labels = perturb_labels(labels, img.GetSpacing()[::-1], case_id)
    who = f"Case {case_id}: the segmentation {Path(segmentation).name}"
    masks = strategy_masks(labels, chosen, who)
    try:
        results = SharedExtractor(RadiomicsProtocol.from_dict(dict(protocol))).execute(img, masks)
    except InputError as exc:
        raise InputError(f"Case {case_id}: {one_line(exc)}") from exc
    return {f"{roi}_{name}": float(value) for roi, feats in results.items() for name, value in feats.items()}


# --------------------------------------------------------------------------------------------- table


@dataclass
class WideTable:
    """Cases x features, the format of ``features.csv``: ``case_id``, ``inputs_sha256`` (what the row
    was computed from: the case's files, strategies, protocol and pyradiomics version; lets a rerun
    keep the row), ``image_sha256`` and ``segmentation_sha256`` (the SHA-256 of the row's two files,
    compared with the manifest's by every command reading the table), then one column per feature.
    ``keys`` / ``files`` are empty for a table without those columns."""

    case_ids: list[str]
    names: list[str]
    X: np.ndarray
    keys: list[str] = field(default_factory=list)
    files: list[tuple[str, str]] = field(default_factory=list)

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write atomically (:func:`orbitai.staging.write_text_atomic`)."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["case_id", *([KEY_COLUMN] if self.keys else []), *(FILE_COLUMNS if self.files else ()),
                    *self.names])
        for i, (cid, row) in enumerate(zip(self.case_ids, self.X)):
            w.writerow([cid, *([self.keys[i]] if self.keys else []), *(self.files[i] if self.files else ()),
                        *(repr(float(v)) for v in row)])
        return staging.write_text_atomic(path, buf.getvalue())

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> "WideTable":
        path = Path(path)
        if not path.is_file():
            raise InputError(f"No feature table {path}; write one with 'orbitai ivgc features'.")
        try:
            with path.open(newline="", encoding="utf-8") as f:
                rows_in = list(csv.reader(f))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"{path} is not a feature table of 'orbitai ivgc features' ({one_line(exc)}).") from None
        header = rows_in[0] if rows_in else []
        skip = 2 if header[1:2] == [KEY_COLUMN] else 1
        has_files = tuple(header[skip:skip + 2]) == FILE_COLUMNS
        first = skip
        skip += 2 if has_files else 0
        if not header or header[0] != "case_id" or len(header) <= skip:
            raise InputError(f"{path} is not a feature table of 'orbitai ivgc features' (first column case_id, "
                             "then one column per feature).")
        ids, keys, files, rows = [], [], [], []
        for i, r in enumerate(rows_in[1:], start=2):
            if len(r) != len(header):
                raise InputError(f"{path} line {i}: {len(r)} values for {len(header)} columns.")
            try:
                rows.append([float(v) for v in r[skip:]])
            except ValueError:
                raise InputError(f"{path} line {i}: a value is not a number.") from None
            ids.append(r[0])
            if first == 2:
                keys.append(r[1])
            if has_files:
                files.append((r[first], r[first + 1]))
        n = len(header) - skip
        return cls(ids, header[skip:], np.array(rows, dtype=np.float64).reshape(len(ids), n), keys, files)

    def columns(self, prefix: str) -> tuple[list[str], np.ndarray]:
        """(names, values) of the features of one ROI strategy (names keep the prefix)."""
        keep = [i for i, n in enumerate(self.names) if n.startswith(prefix + "_")]
        return [self.names[i] for i in keep], self.X[:, keep]

    def rows(self, case_ids: Sequence[str]) -> np.ndarray:
        """The feature rows of ``case_ids`` (InputError naming a case the table lacks)."""
        index = {c: i for i, c in enumerate(self.case_ids)}
        missing = [c for c in case_ids if c not in index]
        if missing:
            raise InputError(f"The feature table has no row for case(s) {', '.join(missing[:5])}.")
        return self.X[[index[c] for c in case_ids]]


# --------------------------------------------------------------------------------------------- cohort
@dataclass
class CohortRun:
    """What :func:`extract_cohort` did."""

    table: Optional[WideTable]
    computed: list[str] = field(default_factory=list)     # cases extracted in this run
    reused: list[str] = field(default_factory=list)       # cases taken from the cache
    failed: dict[str, BaseException] = field(default_factory=dict)


def cache_folder(out: str | os.PathLike) -> Path:
    """The per-case cache beside the output table: ``<out>.cache/``."""
    out = Path(out)
    return out.with_name(out.name + ".cache")


def _cache_file(folder: Path, case_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", case_id)[:80]
    return folder / f"{safe}-{hashlib.sha256(case_id.encode()).hexdigest()[:10]}.npz"


def file_digests(image: Path, segmentation: Path) -> tuple[str, str]:
    """The SHA-256 of a case's image and segmentation (:func:`orbitai.bundle.core.sha256_input`)."""
    return sha256_input(image), sha256_input(segmentation)


def case_key(digests: tuple[str, str], strategies: Sequence[str], protocol: Mapping[str, Any], perturb: bool,
             resample_masks: bool = False) -> str:
    """What a cached case was computed from: its files' digests (:func:`file_digests`), strategies,
    protocol, versions (and ``resample_masks`` when set: a row of a resampled segmentation is not one
    of a run that refuses it)."""
    import radiomics

    image_sha, segmentation_sha = digests
    doc = {"image": image_sha, "segmentation": segmentation_sha, "strategies": list(strategies),
           "protocol": protocol, "perturb": bool(perturb), "pyradiomics": radiomics.__version__}
    if resample_masks:
        doc["resample_masks"] = True
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def check_table_files(table: WideTable, cases: Sequence["CaseFiles"], source: str) -> None:
    """Refuse, in one line naming the case, a row of ``table`` (read from ``source``) computed from other
    files than the case's image and segmentation: the row's ``image_sha256`` / ``segmentation_sha256``
    are compared with the files' (case ids alone would match another cohort's table). Cases without a
    row are left to the caller (it names them); a table without those columns (written by hand or by an
    older version) cannot be checked: one warning says so."""
    if not table.files:
        log.warning("%s has no %s columns: its rows are matched to the manifest by case id alone; rewrite it "
                    "with 'orbitai ivgc features' to have them checked", source, " and ".join(FILE_COLUMNS))
        return
    rows = dict(zip(table.case_ids, table.files))
    for c in cases:
        if c.case_id not in rows:
            continue
        try:
            actual = file_digests(c.image, c.segmentation)
        except OSError as exc:
            raise InputError(f"Case {c.case_id}: {exc.strerror or one_line(exc)}: {exc.filename}") from None
        for what, path, recorded, digest in zip(("image", "segmentation"), (c.image, c.segmentation),
                                                rows[c.case_id], actual):
            if recorded != digest:
                raise InputError(f"Case {c.case_id}: the row of {source} was computed from another {what} than "
                                 f"{path} (SHA-256 {recorded[:12]}... vs {digest[:12]}...); recompute the table "
                                 "with 'orbitai ivgc features' on this manifest.")


def _cached(path: Path, key: str) -> Optional[dict[str, float]]:
    arrays = load_arrays(path, what="radiomics case cache")
    if arrays is None or str(arrays.get("key", np.array(""))) != key:
        return None
    return dict(zip((str(n) for n in arrays["names"]), (float(v) for v in arrays["values"])))


def _store(path: Path, key: str, features: Mapping[str, float]) -> None:
    save_arrays(path, {"key": np.array(key), "names": np.array(list(features)),
                       "values": np.array(list(features.values()), dtype=np.float64)})


@dataclass(frozen=True)
class CaseFiles:
    case_id: str
    image: Path
    segmentation: Path


def cohort_inputs(manifest: str | os.PathLike, column: str = "segmentation") -> tuple[list[CaseFiles], dict[str, InputError]]:
    """The manifest's cases with the segmentation of ``column`` (``segmentation``, or
    :data:`SECOND_RATER_COLUMN` for a second rater), and the cases that have none."""
    manifest = Path(manifest)
    cases = read_manifest(manifest, need_segmentation=True)
    if column not in cases[0].row:
        raise ManifestError(f"Manifest {manifest} has no column {column!r}.")
    files, missing = [], {}
    for c in cases:
        seg = c.row.get(column) or ""
        if not seg:
            missing[c.case_id] = InputError(f"Case {c.case_id}: the manifest gives no {column}.")
            continue
        path = Path(seg) if Path(seg).is_absolute() else manifest.parent / seg
        files.append(CaseFiles(c.case_id, Path(c.image), path))
    return files, missing


@dataclass(frozen=True)
class Compute:
    """Where `extract_cohort` computes: ``workers`` Dask worker processes (``0``: in this process, no Dask), or the
    Dask cluster at ``scheduler``."""

    workers: int = 2
    scheduler: Optional[str] = None


def extract_cohort(cases: Sequence[CaseFiles], strategies: Sequence[str], protocol: Mapping[str, Any],
                   cache: Optional[Path], compute: Compute = Compute(), perturb: bool = False,
                   progress: Optional[Callable[[int, int, str], None]] = None,
                   bar: bool = True, previous: Optional[WideTable] = None,
                   resample_masks: bool = False) -> CohortRun:
    """Features of every case, computed as ``compute`` says (`Compute`: Dask worker processes, none, or a
    cluster). A case whose row in ``previous`` (the last output)
    or whose entry in ``cache`` was computed from the same inputs and settings is reused; every
    finished case is stored in ``cache`` at once (so an interrupted run resumes); failures are
    collected in the result, not raised. ``resample_masks``: a segmentation off its image's grid is
    resampled onto it instead of failing its case (:func:`load_case`)."""
    workers, scheduler = compute.workers, compute.scheduler
    run = CohortRun(table=None)
    earlier: dict[str, tuple[str, np.ndarray]] = {}
    if previous is not None and previous.keys:
        earlier = {c: (k, x) for c, k, x in zip(previous.case_ids, previous.keys, previous.X)}
    inputs = {c.case_id: (c.image, c.segmentation) for c in cases}
    results: dict[str, dict[str, float]] = {}
    keys: dict[str, str] = {}
    digests: dict[str, tuple[str, str]] = {}
    todo: list[str] = []
    for cid, (img, seg) in inputs.items():
        try:
            digests[cid] = file_digests(img, seg)
            keys[cid] = case_key(digests[cid], strategies, protocol, perturb, resample_masks)
        except OSError as exc:
            run.failed[cid] = InputError(f"Case {cid}: {exc.strerror or one_line(exc)}: {exc.filename}")
            continue
        hit = None
        if cid in earlier and earlier[cid][0] == keys[cid] and previous is not None:
            hit = dict(zip(previous.names, (float(v) for v in earlier[cid][1])))
        elif cache is not None:
            hit = _cached(_cache_file(cache, cid), keys[cid])
        if hit is not None:
            results[cid] = hit
            run.reused.append(cid)
        else:
            todo.append(cid)
    total = len(inputs)
    done = len(run.reused)

    def finished(cid: str, value: Optional[dict[str, float]], error: Optional[BaseException]) -> None:
        nonlocal done
        done += 1
        if error is not None:
            run.failed[cid] = error
        else:
            assert value is not None
            results[cid] = value
            run.computed.append(cid)
            if cache is not None:
                _store(_cache_file(cache, cid), keys[cid], value)
        if progress:
            progress(done, total, f"{cid} {'failed' if error is not None else 'done'}")
        pbar.update(1)

    pbar = tqdm(total=total, initial=done, desc="radiomics", unit="case", file=sys.stderr,
                disable=None if bar else True, leave=False)
    try:
        if todo and workers == 0 and scheduler is None:
            for cid in todo:
                try:
                    value = case_features(cid, str(inputs[cid][0]), str(inputs[cid][1]), strategies, protocol, perturb,
                                          resample_masks)
                except (OrbitAIError, OSError, ValueError, RuntimeError, MemoryError) as exc:
                    finished(cid, None, exc)
                else:
                    finished(cid, value, None)
        elif todo:
            _run_dask(todo, inputs, strategies, protocol, perturb, workers, scheduler, finished, resample_masks)
    finally:
        pbar.close()
    order = [c.case_id for c in cases if c.case_id in results]
    if order:
        names = list(results[order[0]])
        for cid in order[1:]:
            if list(results[cid]) != names:    # cannot happen with one protocol; guards a stale cache
                run.failed[cid] = InputError(f"Case {cid}: other features than case {order[0]}.")
        order = [c for c in order if c not in run.failed]
        run.table = WideTable(order, names, np.array([[results[c][n] for n in names] for c in order], np.float64),
                              [keys[c] for c in order], [digests[c] for c in order])
    return run


def _run_dask(todo: Sequence[str], inputs: Mapping[str, tuple[Path, Path]], strategies: Sequence[str],
              protocol: Mapping[str, Any], perturb: bool, workers: int, scheduler: Optional[str],
              finished: Callable[[str, Optional[dict[str, float]], Optional[BaseException]], None],
              resample_masks: bool = False) -> None:
    """Submit every case to a Dask cluster (the cohort runner's, :func:`orbitai.cohort.cluster.dask_map`);
    report each as it completes."""
    dask_map(case_features, {cid: (cid, str(inputs[cid][0]), str(inputs[cid][1]), list(strategies), dict(protocol),
                                   perturb, resample_masks) for cid in todo},
             workers, scheduler, finished, prefix="ivgc-radiomics")
