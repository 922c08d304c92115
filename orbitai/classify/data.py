"""The classifier trainer's dataset hook: every sample is a dict of named inputs plus ``"label"``.

A model names the inputs its ``forward`` takes, in order, in an ``input_names`` attribute
(default ``("image",)``); the trainer calls ``model(*(batch[name] for name in input_names))``.
A dataset is any ``torch.utils.data.Dataset`` whose items are such dicts and which knows its
labels without reading a case (``labels``: ``(N,)`` int array, or ``None`` for unlabelled data).

- :class:`ArrayDataset` holds named arrays in memory (TAO's 2D eye stacks; radiomics and clinical
  vectors beside an image for IVGC).
- :class:`FileDataset` streams: it keeps file paths and reads each case in ``__getitem__``
  (NeuroDifferential's 3D FLAIR volumes), so a cohort never has to fit in memory.

Arrays are channel-first without the batch axis: ``(C, H, W)`` or ``(C, D, H, W)`` images,
``(F,)`` vectors. Strings (e.g. ``"case_id"``) pass through batching as lists.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from orbitai.errors import InputError
from orbitai.io import read_volume

#: One case: named inputs (arrays or tensors), ``"label"`` (int) when known, optional strings.
Sample = dict[str, Any]
#: Named batched inputs: tensors with a leading batch axis; string fields as lists.
Batch = dict[str, Union[torch.Tensor, list]]
#: Per-case transform (deterministic preprocessing in a dataset).
SampleTransform = Callable[[Sample], Sample]
#: Reads one file into a channel-first float32 array.
Reader = Callable[[Path], np.ndarray]

LABEL = "label"
DEFAULT_INPUTS: tuple[str, ...] = ("image",)


class ClassificationDataset(Protocol):
    """What the trainer needs from a dataset."""

    labels: Optional[np.ndarray]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Sample: ...


def input_names(model: torch.nn.Module) -> tuple[str, ...]:
    """The names of ``model``'s inputs in ``forward`` order (``("image",)`` unless it declares them)."""
    return tuple(getattr(model, "input_names", DEFAULT_INPUTS))


def _labels(labels: Optional[Sequence[int] | np.ndarray], n: int) -> Optional[np.ndarray]:
    if labels is None:
        return None
    out = np.asarray(labels)
    if out.shape != (n,):
        raise InputError(f"Got {out.size} labels for {n} cases; give one label per case.")
    return out


class ArrayDataset(Dataset):
    """Named in-memory arrays, the first axis of each being the case (views, no copies)."""

    def __init__(self, inputs: Mapping[str, np.ndarray], labels: Optional[Sequence[int] | np.ndarray] = None):
        if not inputs:
            raise InputError("An ArrayDataset needs at least one named input array.")
        arrays = {}
        for name, a in inputs.items():
            a = np.asarray(a)
            arrays[name] = a.astype(np.float32, copy=False) if a.dtype.kind == "f" else a
        sizes = {name: len(a) for name, a in arrays.items()}
        if len(set(sizes.values())) != 1:
            raise InputError(f"The named inputs hold different numbers of cases ({sizes}); give each one row "
                             "per case.")
        self.inputs = arrays
        self.labels = _labels(labels, next(iter(sizes.values())))

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    def __getitem__(self, index: int) -> Sample:
        sample: Sample = {name: a[index] for name, a in self.inputs.items()}
        if self.labels is not None:
            sample[LABEL] = int(self.labels[index])
        return sample


def read_image(path: Path) -> np.ndarray:
    """A volume file (NRRD, NIfTI, MetaImage) or DICOM folder as a ``(1, D, H, W)`` float32 array."""
    return read_volume(path).array.astype(np.float32)[None]


class FileDataset(Dataset):
    """Streams cases from disk: named file columns are read by ``reader`` when a case is asked for.

    ``files`` maps an input name to one path per case; ``vectors`` adds in-memory per-case arrays
    (e.g. radiomics and clinical features); ``transform`` runs on each loaded sample (crop, resize:
    deterministic preprocessing; random augmentation belongs to the trainer's seeded ``augment``).
    Construction only checks that the files exist.
    """

    def __init__(self, files: Mapping[str, Sequence[str | os.PathLike]],
                 labels: Optional[Sequence[int] | np.ndarray] = None, *,
                 vectors: Optional[Mapping[str, np.ndarray]] = None,
                 transform: Optional[SampleTransform] = None, reader: Reader = read_image,
                 case_ids: Optional[Sequence[str]] = None):
        if not files:
            raise InputError("A FileDataset needs at least one named column of files.")
        self.files = {name: [Path(p) for p in paths] for name, paths in files.items()}
        counts = {name: len(p) for name, p in self.files.items()}
        self.vectors = ArrayDataset(vectors) if vectors else None
        if self.vectors is not None:
            counts.update({name: len(self.vectors) for name in self.vectors.inputs})
        if len(set(counts.values())) != 1:
            raise InputError(f"The named inputs hold different numbers of cases ({counts}); give each one entry "
                             "per case.")
        n = next(iter(counts.values()))
        missing = [str(p) for paths in self.files.values() for p in paths if not p.exists()]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise InputError(f"Missing input file {missing[0]}{more}; check the paths in the manifest.")
        if case_ids is not None and len(case_ids) != n:
            raise InputError(f"Got {len(case_ids)} case ids for {n} cases; give one id per case.")
        self.case_ids = None if case_ids is None else [str(c) for c in case_ids]
        self.labels = _labels(labels, n)
        self.transform = transform
        self.reader = reader

    def __len__(self) -> int:
        return len(next(iter(self.files.values())))

    def __getitem__(self, index: int) -> Sample:
        sample: Sample = {name: self.reader(paths[index]) for name, paths in self.files.items()}
        if self.vectors is not None:
            sample.update(self.vectors[index])
        if self.case_ids is not None:
            sample["case_id"] = self.case_ids[index]
        if self.labels is not None:
            sample[LABEL] = int(self.labels[index])
        return self.transform(sample) if self.transform else sample


def collate(samples: Sequence[Sample]) -> Batch:
    """Stack samples into a batch: arrays and tensors gain a batch axis, labels become int64,
    strings stay lists."""
    batch: Batch = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if key == LABEL:
            batch[key] = torch.from_numpy(np.asarray(values, dtype=np.int64))
        elif isinstance(values[0], str):
            batch[key] = list(values)
        elif isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)
        else:
            batch[key] = torch.from_numpy(np.ascontiguousarray(np.stack(values)))
    return batch


def check_inputs(sample: Sample, names: Sequence[str]) -> None:
    """A clear error when a dataset's samples lack an input the model takes."""
    missing = [n for n in names if n not in sample]
    if missing:
        have = sorted(k for k in sample if k != LABEL)
        raise InputError(f"The model takes inputs {list(names)} but the dataset's samples hold {have}; "
                         f"name the dataset's inputs after the model's (missing: {missing}).")
