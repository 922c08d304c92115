"""Fuzz target: the browser's upload protocol (`orbitai.web.uploads`), then the load of what arrived.

The input is what the page's connection delivers, msgpack-encoded as on the wire (wslink): a list of groups, each
what ``upload_chunk`` gets (a list of ``{"name": str, "content": bytes | [bytes, ...]}``; anything else the wire can
carry is fair game). The groups go to `Uploads.add` for one connection; at the end the upload's `Upload.source` is
read as the page's load reads it (`read_segmentation` for a ``.seg.nrrd``, else `read_scan` and `read_identity`),
under the upload's size limit. An input that is not msgpack is not what the wire delivers (trame refuses it)."""
from __future__ import annotations

from fuzzlib import check, main

MODULES = ("orbitai.web.uploads", "orbitai.web.names", "orbitai.web.identity", "orbitai.io.files",
           "orbitai.io.segfile")
#: The upload limit of these runs (bytes; the server's is --max-upload-mb).
LIMIT = 4 << 20


def read(data: bytes) -> object:
    import msgpack

    from orbitai.io.files import read_scan
    from orbitai.io.segfile import read_segmentation
    from orbitai.web.identity import read_identity
    from orbitai.web.uploads import Uploads

    try:
        groups = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException):      # TypeError: a list as a map key
        return None
    uploads = Uploads(LIMIT, max_files=64)
    try:
        for group in groups if isinstance(groups, list) else [groups]:
            uploads.add("client", group)
        upload = uploads.finish("client")
        if upload is None:
            return None
        try:
            source, _shown = upload.source()
            if source.lower().endswith(".seg.nrrd"):
                return read_segmentation(source, LIMIT)
            vol, _acquisition = read_scan(source, LIMIT)
            return vol, read_identity(source)
        finally:
            upload.remove()
    finally:
        uploads.remove_all()


def TestOneInput(data: bytes) -> None:  # the name Atheris gives a target's entry
    check(read, data)


if __name__ == "__main__":
    main("fuzz_upload")
