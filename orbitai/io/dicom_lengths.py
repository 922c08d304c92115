"""A DICOM file's element lengths checked against its size, before GDCM (SimpleITK) opens it.

GDCM allocates an element's value at the length its header declares before it reads the value: a damaged file of
1 KB whose bytes happen to declare an element of 1.9 GB made GDCM take 2 GB of memory while it only looked for the
folder's series (found by fuzzing, issue 80). :func:`overlong_element` walks a file's elements (the file meta
group, then the data set in its transfer syntax, into sequences and items, over pixel data fragments) and names the
first one that declares more bytes than the file has left, or a file meta element (group 0002) that follows elements
of other groups (GDCM misreads such a file, allocating hundreds of MB each time it reads the header): such a file is
truncated or damaged, and is refused before GDCM reads it. A file it cannot follow (deflated data set, an ``UN`` of undefined length) is left to the
readers as before.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO, Optional, Sequence

from orbitai.io.volume import VolumeError

__all__ = ["overlong_element", "refuse_damaged", "gdcm_may_read"]

_VRS = frozenset(b"AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US "
                 b"UT UV".split())
#: Explicit VRs whose length has four bytes (after two reserved ones).
_LONG = frozenset(b"OB OD OF OL OV OW SQ UC UN UR UT SV UV".split())
_UNDEFINED = 0xFFFFFFFF
_IMPLICIT_LE, _EXPLICIT_BE, _DEFLATED = "1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"


def _implicit_sq(tag: int) -> bool:
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return False


class _Walk:
    """The position in one file and how its elements are encoded there."""

    def __init__(self, f: BinaryIO, size: int, pos: int, explicit: bool) -> None:
        self.f, self.size, self.pos = f, size, pos
        self.explicit, self.order, self.meta = explicit, "<", True
        self.syntax = ""
        self.fragments = False

    def read(self, n: int) -> bytes:
        self.f.seek(self.pos)
        return self.f.read(n)

    def leave_meta(self) -> bool:
        """Switch to the data set's transfer syntax; False when the data set cannot be followed (deflated)."""
        self.meta = False
        if self.syntax == _DEFLATED:
            return False
        if self.syntax:
            self.explicit = self.syntax != _IMPLICIT_LE
            self.order = ">" if self.syntax == _EXPLICIT_BE else "<"
        return True

    def step(self) -> Optional[str]:
        """Read one element header at `pos` and move past it (into a sequence or item, past any other value);
        the problem when its length runs past the end of the file, "" to go on, None to stop."""
        head = self.read(12)
        if len(head) < 8:
            return None
        group = struct.unpack("<H", head[:2])[0]
        if self.meta and group != 2 and not self.leave_meta():
            return None
        group, elem = struct.unpack(self.order + "HH", head[:4])
        name = f"({group:04X},{elem:04X})"
        if group == 2 and not self.meta:
            # a file meta element after another group's: GDCM then reads the file as one without a file meta group,
            # misreads the data set and allocates its text as a length (808 MB, 1.5 s per header read; found by
            # fuzzing, a first tag of (0008,0000) for (0002,0000))
            return f"its file meta element {name} follows elements of other groups (the file meta group is damaged)"
        vr = head[4:6] if self.explicit and group != 0xFFFE else b""
        if vr in _VRS and vr in _LONG and len(head) >= 12:
            length, self.pos = struct.unpack(self.order + "I", head[8:12])[0], self.pos + 12
        elif vr in _VRS and vr not in _LONG:
            length, self.pos = struct.unpack(self.order + "H", head[6:8])[0], self.pos + 8
        else:                    # implicit, an item or delimiter, or an unknown VR (GDCM reads it as implicit)
            length, self.pos = struct.unpack(self.order + "I", head[4:8])[0], self.pos + 8
            vr = b"SQ" if not self.explicit and group != 0xFFFE and _implicit_sq(group << 16 | elem) else b""
        if length == _UNDEFINED:
            if (group, elem) == (0x7FE0, 0x0010):
                self.fragments = True            # encapsulated pixel data: items whose values are skipped
            return None if vr == b"UN" else ""
        if length > self.size - self.pos:
            return f"its element {name} declares {length} bytes where {self.size - self.pos} are left"
        if group == 0xFFFE:
            if elem == 0xE0DD:
                self.fragments = False
            if self.fragments and elem == 0xE000:
                self.pos += length
            return ""
        if vr == b"SQ":
            return ""                            # its items follow
        if (group, elem) == (0x0002, 0x0010):
            self.syntax = self.read(length).rstrip(b"\0 ").decode("ascii", "replace")
        self.pos += length
        return ""


def _first_problem(f: BinaryIO, size: int, start: int, encoding: tuple[bool, str], most: int) -> Optional[str]:
    walk = _Walk(f, size, start, encoding[0])
    walk.order = encoding[1]
    for _ in range(most):
        found = walk.step()
        if found is None:
            return None
        if found:
            return found
    return None


def overlong_element(path: str | os.PathLike, most: int = 100_000) -> Optional[str]:
    """The first element of DICOM file ``path`` that declares more bytes than the file has left after it (what it
    declares and what is left, as words), or None (none does, or the file cannot be followed; at most ``most``
    elements are looked at). A file without a file meta group says nothing of its encoding: it is refused only when
    every encoding (explicit or implicit VR little endian, explicit VR big endian) runs past its end."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(136)
            start = 132 if head[128:132] == b"DICM" else 0
            if start or head[:2] == b"\x02\x00":
                return _first_problem(f, size, start, (True, "<"), most)
            found = [_first_problem(f, size, start, encoding, most)
                     for encoding in ((True, "<"), (False, "<"), (True, ">"))]
            return found[0] if all(found) else None
    except OSError:
        return None


def gdcm_may_read(path: Path) -> bool:
    """True when GDCM's series scan may parse ``path`` as DICOM although it has no preamble and no DICOM suffix: it
    starts with a group 0002 or 0008 tag (a file meta group, or an ACR-NEMA style data set). A 110-byte upload named
    ``a,dcm`` starting (0002,0010) with an unknown VR made GDCM allocate 2.2 GB while it looked for the series (found
    by fuzzing the upload protocol)."""
    try:
        with open(path, "rb") as f:
            return f.read(2) in (b"\x02\x00", b"\x08\x00")
    except OSError:
        return False


def refuse_damaged(paths: Sequence[Path], folder: Path) -> None:
    """Refuse (`VolumeError`, one line) the DICOM files of ``folder`` among ``paths`` whose elements run past their
    end (:func:`overlong_element`), before GDCM reads any of them."""
    bad = [(p, why) for p, why in ((p, overlong_element(p)) for p in paths) if why]
    if bad:
        names = ", ".join(p.name for p, _ in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise VolumeError(f"{folder}: {names} cannot be read as DICOM (truncated or damaged): in {bad[0][0].name} "
                          f"{bad[0][1]}. Re-copy or re-export the series.")
