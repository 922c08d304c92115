"""A job's input files: the volumes a front end hands to an ``orbitai`` child, written into the job's temporary
folder as uncompressed NRRD.

`write_job_input` writes one at once, or adds it to the job's `JobInputs` when given them; `JobInputs` writes its
files across the ticks of a GUI timer (`JobInputWriter`: a slab at a time), so that Slicer's main thread is never
blocked for a whole scan (issue 63). A start hook (`orbitai.mrml.jobs.JobLogic.jobArguments`) gets the folder and
the job's `JobInputs` together, as a `JobFolder`.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Optional

import numpy as np

__all__ = ["SLAB_BYTES", "TICK_BYTES", "TICK_SECONDS", "JobFolder", "JobInputWriter", "JobInputs", "write_job_input"]


def write_job_input(vol, path: str | os.PathLike, inputs: Optional[JobInputs] = None) -> Path:
    """Write a volume handed to a job (a scene volume in the job's temporary folder), uncompressed: the
    file lives seconds, and compressing a 512x512x100 CT costs about a second to write and 0.2 s to read.
    ``vol``: a `Volume`, a label map made a slab at a time (`orbitai.mrml.label_slabs.LabelSlabs`: a segmentation's,
    read from its layers as each slab is written), or a function returning either, called when the file is written
    (e.g. a segmentation that only its whole export gives: exported in a poll tick of its own, not in the press).

    ``inputs``: the job's `JobInputs` (a Logic started from a GUI thread: `orbitai.mrml.jobs.JobLogic.start` hands
    it to the start hook in its `JobFolder`): nothing is written now, the file is added there, written a slab per
    timer tick before the job starts. None: written now. The path is returned either way."""
    if inputs is not None:
        return inputs.add(vol, path)
    return _write_now(vol, path)


def _write_now(vol, path: str | os.PathLike) -> Path:
    from orbitai.io import write_volume

    vol = vol() if callable(vol) else vol
    if _is_slabs(vol):                           # made a slab at a time: written so (all of it now)
        writer = JobInputWriter(vol, path)
        while not writer.step():
            pass
        return writer.path
    return write_volume(vol, path, compress=False)


def _is_slabs(vol) -> bool:
    """``vol`` is a label map made a k-slab at a time (e.g. `orbitai.mrml.label_slabs.LabelSlabs`): ``shape``,
    ``dtype``, geometry and ``slab(k0, k1)``, not a whole array."""
    return callable(getattr(vol, "slab", None))


#: NRRD type names of the voxel types `JobInputWriter` writes (others go through `write_job_input` at once).
_NRRD_TYPES = {"int8": "signed char", "uint8": "uchar", "int16": "short", "uint16": "ushort", "int32": "int",
               "uint32": "uint", "int64": "longlong", "uint64": "ulonglong", "float32": "float", "float64": "double"}


def _nrrd_type(vol) -> Optional[str]:
    """The NRRD type `JobInputWriter` writes ``vol`` as itself; None: the ordinary writer writes it (another voxel
    type, not 3D, or header fields it cannot write: see `_header_fields`)."""
    shape, dtype = (vol.shape, np.dtype(vol.dtype)) if _is_slabs(vol) else (np.shape(vol.array), np.asarray(vol.array).dtype)
    if len(shape) != 3 or _header_fields(vol) is None:
        return None
    return _NRRD_TYPES.get(dtype.name)


def _header_fields(vol) -> Optional[list[str]]:
    """``vol``'s metadata (the DICOM tags a scan keeps: `orbitai.io.dicom_tags.header_tags`) as NRRD ``key:=value``
    lines, escaped as teem reads them back (a backslash doubled, a newline as backslash-n); None where a key or value
    is not plain ASCII (the ordinary writer writes those)."""
    lines = []
    for key, value in (getattr(vol, "metadata", None) or {}).items():
        text = str(value).replace("\\", "\\\\").replace("\n", "\\n")
        if not (str(key).isascii() and text.isascii() and str(key).isprintable() and text.isprintable()) \
                or ":=" in str(key) or not str(key).strip():
            return None
        lines.append(f"{key}:={text}")
    return lines


class JobInputWriter:
    """`write_job_input`'s file (uncompressed NRRD with the volume's geometry), written a slab at a time by
    `step`, so that a caller on a GUI thread (a module's Apply, the annotation effects' model prior) writes a large
    scan across its timer's ticks instead of blocking for it: 0.36 s for a 512x512x300 CT written at once. Written by
    hand because SimpleITK writes a whole image in one call; the file is read back by SimpleITK (tests compare it
    with `write_job_input`'s). The file appears under its name only when complete (temporary name, then rename);
    nothing is opened (and a function given as ``vol`` is not called) before the first `step`. ``vol`` may also be
    a label map made a k-slab at a time (`orbitai.mrml.label_slabs.LabelSlabs`: a segmentation's, read from its
    layers): each step makes and writes the slices of one slab (at least one slice), never the whole map."""

    def __init__(self, vol, path: str | os.PathLike, chunk_bytes: int = 16 * 2**20) -> None:
        self.path = Path(path)
        self.chunk_bytes = max(int(chunk_bytes), 1)
        self._source = vol
        self._data: Optional[memoryview] = None
        self._slabs = None                       # a label map made a slab at a time, and its next slice
        self._k = 0
        self._tmp = self.path.with_name(f".tmp-{self.path.name}")
        self._file: Optional[IO[bytes]] = None
        self._offset = 0
        self.written = 0                         # bytes of voxels written so far
        self.done = False
        if not callable(vol) and _nrrd_type(vol) is None:
            self._open()                         # written at once, as the first step would

    def _open(self) -> bool:
        """Read the volume, start the file (its header); True when it was written at once instead."""
        vol, self._source = self._source, None
        vol = vol() if callable(vol) else vol
        nrrd_type = _nrrd_type(vol)
        if nrrd_type is None:
            if _is_slabs(vol):
                vol = vol.volume()               # (a 2D or 4D map: not made by a GUI's Logic)
            _write_now(vol, self.path)           # another voxel type, or header fields: the ordinary writer, at once
            self.written, self.done = np.asarray(vol.array).nbytes, True
            return True
        if _is_slabs(vol):
            self._slabs, shape = vol, tuple(vol.shape)
        else:
            array = np.asarray(vol.array)
            little = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
            self._data, shape = little.reshape(-1).view(np.uint8).data, array.shape
        self._file = open(self._tmp, "wb")       # kept open across steps; closed when done or by close()
        self._file.write(self._header(vol, shape, nrrd_type).encode("ascii"))
        return False

    @staticmethod
    def _header(vol, shape: tuple[int, ...], nrrd_type: str) -> str:
        d = np.asarray(vol.direction, float).reshape(3, 3)
        axes = " ".join("(" + ",".join(repr(float(d[r, c] * vol.spacing[c])) for r in range(3)) + ")" for c in range(3))
        lines = ["NRRD0004", f"type: {nrrd_type}", "dimension: 3", "space: left-posterior-superior",
                 f"sizes: {shape[2]} {shape[1]} {shape[0]}", f"space directions: {axes}",
                 "kinds: domain domain domain", "endian: little", "encoding: raw",
                 "space origin: (" + ",".join(repr(float(o)) for o in vol.origin) + ")", *(_header_fields(vol) or [])]
        return "\n".join(lines) + "\n\n"

    def step(self) -> bool:
        """Write the next slab (at most ``chunk_bytes``; the first step also writes the header); True once the
        file is complete and in place."""
        if self.done:
            return True
        try:
            if self._file is None and self._open():
                return True
            assert self._file is not None
            if self._slabs is not None:
                if not self._write_slab():
                    return False
            else:
                assert self._data is not None
                end = min(self._offset + self.chunk_bytes, len(self._data))
                self._file.write(self._data[self._offset:end])
                self.written += end - self._offset
                self._offset = end
                if end < len(self._data):
                    return False
            self._file.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.close()
            raise
        self.done, self._data, self._slabs = True, None, None
        return True

    def _write_slab(self) -> bool:
        """Make and write the next slab of a label map made a slab at a time; True once its last slice is written."""
        slabs = self._slabs
        assert slabs is not None and self._file is not None
        depth, slice_bytes = slabs.shape[0], int(np.prod(slabs.shape[1:])) * np.dtype(slabs.dtype).itemsize
        end = min(self._k + max(self.chunk_bytes // max(slice_bytes, 1), 1), depth)
        slab = slabs.slab(self._k, end)
        data = np.ascontiguousarray(slab.astype(slab.dtype.newbyteorder("<"), copy=False))
        self._file.write(data.reshape(-1).view(np.uint8).data)
        self.written += data.nbytes
        self._k = end
        return end >= depth

    def close(self) -> None:
        """Stop writing; an incomplete file is removed."""
        if not self.done:
            if self._file is not None:
                self._file.close()
            self._tmp.unlink(missing_ok=True)
            self.done, self._data, self._source, self._slabs = True, None, None, None


#: What one tick of a GUI timer writes of a job's inputs (`JobInputs.step`) at most: bytes, and seconds (checked
#: after each slab; the first slab is always written, so that the writing goes on however slow the disk).
TICK_BYTES = 32 * 2**20
TICK_SECONDS = 0.03
#: The slab `JobInputs` writes at a time.
SLAB_BYTES = 4 * 2**20


class JobInputs:
    """The input files of one job, written across the ticks of a GUI timer (`step`) before the job starts, so that
    Slicer's main thread is never blocked for a whole scan (issue 63): at most `TICK_BYTES` per tick, and no further
    slab once `TICK_SECONDS` have passed. One writer per file (`JobInputWriter`, shared with the annotation effects'
    model prior). `write_job_input` adds files here when given them (a `JobFolder`'s)."""

    def __init__(self, slab_bytes: int = SLAB_BYTES) -> None:
        self.slab_bytes = slab_bytes
        self.writers: list[JobInputWriter] = []
        self.last_tick_bytes = 0                 # what the last `step` wrote (tests: the bound per tick)

    def add(self, vol, path: str | os.PathLike) -> Path:
        """Add ``vol`` (a `Volume` or a function returning one) to be written to ``path``; returns the path."""
        writer = JobInputWriter(vol, path, self.slab_bytes)
        self.writers.append(writer)
        return writer.path

    @property
    def done(self) -> bool:
        return all(w.done for w in self.writers)

    @property
    def progress(self) -> tuple[int, int]:
        """(files written, files)."""
        return sum(w.done for w in self.writers), len(self.writers)

    def step(self, max_bytes: int = TICK_BYTES, max_s: float = TICK_SECONDS) -> bool:
        """One tick's writing (see the class docstring); True once every file is complete and in place. A failure
        (disk full) removes what was written and raises."""
        t0 = time.monotonic()
        total = sum(w.written for w in self.writers)
        wrote = False
        try:
            for w in self.writers:
                while not w.done:
                    tick = sum(x.written for x in self.writers) - total
                    if wrote and (tick + self.slab_bytes > max_bytes or time.monotonic() - t0 >= max_s):
                        return False
                    w.step()
                    wrote = True
            return True
        except BaseException:
            self.close()
            raise
        finally:
            self.last_tick_bytes = sum(w.written for w in self.writers) - total

    def finish(self) -> None:
        """Write everything now (scripts and tests, never a GUI thread)."""
        self.step(max_bytes=2**62, max_s=float("inf"))

    def close(self) -> None:
        """Stop writing: incomplete files are removed (complete ones stay, in the job's folder)."""
        for w in self.writers:
            w.close()


@dataclass(frozen=True)
class JobFolder:
    """A job's temporary input folder as a start hook (`orbitai.mrml.jobs.JobLogic.jobArguments`) gets it: ``path``,
    where its files go, and ``inputs``, the job's `JobInputs` its volumes are added to (`JobLogic.start`: written
    by the job's poll, a slab per timer tick, before the child starts); None (a hook called directly: scripts,
    tests): written at once."""

    path: Path
    inputs: Optional[JobInputs] = None

    def write_input(self, vol, name: str) -> Path:
        """`write_job_input` of ``vol`` to the file ``name`` in this folder (now, or added to ``inputs``)."""
        return write_job_input(vol, self.path / name, self.inputs)
