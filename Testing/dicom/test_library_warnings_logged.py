"""Issue 63: on DICOM inputs highdicom's ``check_person_name`` warning (a single-component PatientName) was printed
into the user's output. A library's warnings go to the log (``orbitai.library``, shown with --verbose); the
command's own warnings stay its printed ``warning:`` lines."""
from __future__ import annotations

import logging
import warnings

import pytest

from orbitai.cli import library_warnings_logged


def test_a_library_warning_is_logged_not_printed(capsys, caplog):
    valuerep = pytest.importorskip("highdicom.valuerep")
    with caplog.at_level(logging.DEBUG, logger="orbitai.library"):
        with warnings.catch_warnings():
            warnings.simplefilter("always")            # as a fresh process shows it the first time
            with library_warnings_logged():
                valuerep.check_person_name("Anonymous")
    captured = capsys.readouterr()
    assert "Anonymous" not in captured.err and "Anonymous" not in captured.out
    logged = [r for r in caplog.records if r.name == "orbitai.library"]
    assert len(logged) == 1 and "UserWarning" in logged[0].getMessage() and "Anonymous" in logged[0].getMessage()
