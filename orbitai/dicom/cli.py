"""``orbitai dicom push`` and ``orbitai dicom fetch``: results to a PACS and a series from it (DICOMweb)."""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser("dicom", help=help_text,
                       description="DICOMweb (STOW-RS, QIDO-RS, WADO-RS) with a PACS such as Orthanc or dcm4chee. "
                                   "A predict command can also read a series straight from a DICOMweb URL: "
                                   "http(s)://HOST/ROOT/studies/<StudyUID>/series/<SeriesUID>.")
    s = p.add_subparsers(dest="dicom_command", metavar="<dicom command>")

    push = s.add_parser("push", help="store a result folder's DICOM files (SEG, SR, a derived source series)",
                        description="Store every DICOM file under OUT (a predict command's output folder: "
                                    "segmentation.dcm, report.dcm and, with --dicom-attributes, its source series) on "
                                    "the DICOMweb server (STOW-RS, one request per study). Prints what was stored.")
    push.add_argument("out", metavar="OUT", nargs="+", help="result folder(s) or DICOM file(s)")
    push.add_argument("--url", required=True, help="DICOMweb service root, e.g. http://127.0.0.1:8042/dicom-web")
    push.set_defaults(func=run_push)

    fetch = s.add_parser("fetch", help="download one series of a study into a folder",
                         description="Retrieve one image series (WADO-RS) into a new folder that any predict command "
                                     "then takes as its image. Without --series the study must hold one image series; "
                                     "otherwise its series are listed.")
    fetch.add_argument("--url", required=True, help="DICOMweb service root, e.g. http://127.0.0.1:8042/dicom-web")
    fetch.add_argument("--study", required=True, metavar="UID", help="StudyInstanceUID")
    fetch.add_argument("--series", metavar="UID", help="SeriesInstanceUID (default: the study's only image series)")
    fetch.add_argument("--out", required=True, help="a new (or empty) folder for the series")
    fetch.set_defaults(func=run_fetch)


def run_push(args: argparse.Namespace) -> int:
    from orbitai.dicom.web import push

    summary = push(args.out, args.url)
    print(f"stored {summary['stored']} instance(s) in {len(summary['studies'])} study(ies) on {args.url}: "
          + ", ".join(summary["studies"]))
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from orbitai.dicom.web import fetch_series

    folder = fetch_series(args.url, args.study, args.series, Path(args.out))
    print(f"fetched {sum(1 for _ in folder.iterdir())} instance(s) into {folder}")
    return 0
