"""A module Logic's failing child reaches the user as one line (#14): no ``Traceback``, no stack lines.

`check_child_errors_are_one_line` runs a module's real Logic and child ``orbitai`` process three ways:
an unavailable device (``cuda:99``), an input the child refuses (non-finite voxels) and a child that
crashes (torch dies with a segmentation fault while loading, as a broken GPU driver does). Each must
raise `JobError` with one line that says what failed (a crash: how it stopped and where to read more)
and leave the scene as it was.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from orbitai.errors import JobError
from orbitai.jobs.child import OrbitaiJob
from orbitai.testing import node_ids, patched

#: A ``torch`` that crashes the interpreter on import, reporting it as CPython does (faulthandler).
CRASHING_TORCH = """import ctypes, faulthandler
faulthandler.enable()
ctypes.string_at(0)
"""


def _job_error(ctx, logic, input_node, options: dict[str, Any]) -> str:
    before = node_ids(ctx)
    try:
        logic.run(input_node, **options)
    except JobError as exc:
        message = str(exc)
    else:
        raise AssertionError(f"{type(logic).__name__}.run({options}) did not fail")
    assert node_ids(ctx) == before, "the failed job changed the scene"
    assert "\n" not in message and "Traceback" not in message, message
    assert 'File "' not in message and ", line " not in message, f"stack lines in: {message}"
    return message


def check_child_errors_are_one_line(ctx, logic, input_node, options: dict[str, Any], tmp_path: Path) -> None:
    """``logic.run(input_node, **options)`` succeeds normally; three failures of its child are one line each."""
    from orbitai.mrml import volume_from_volume_node, volume_node_from_volume

    what = logic.job_title
    message = _job_error(ctx, logic, input_node, {**options, "device": "cuda:99"})
    assert message.startswith(f"{what} failed: ") and "cuda" in message.lower(), message
    assert "orbitai" not in message, message     # the child's own line, without its 'orbitai ...: error:' prefix

    vol = volume_from_volume_node(input_node)
    broken = vol.array.astype(np.float32)
    broken[tuple(s // 2 for s in broken.shape)] = np.nan
    nan_node = volume_node_from_volume(ctx, vol.with_array(broken), name=f"{input_node.GetName()} with NaN")
    try:
        message = _job_error(ctx, logic, nan_node, options)
    finally:
        ctx.scene.RemoveNode(nan_node)
    assert message.startswith(f"{what} failed: ") and "finite" in message, message

    fake = Path(tmp_path) / "crashing-torch"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text(CRASHING_TORCH)
    with patched(logic, "makeJob", lambda args: OrbitaiJob(args, env={"PYTHONPATH": str(fake)})):
        message = _job_error(ctx, logic, input_node, options)
    assert message.startswith(f"{what} stopped unexpectedly (killed by signal SIGSEGV: Fatal Python error: "
                              "Segmentation fault)"), message
    assert "application log" in message and "--debug" in message, message
