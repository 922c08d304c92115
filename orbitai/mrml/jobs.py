"""A module Logic's running child process (``orbitai ...`` through :class:`orbitai.runner.OrbitaiJob`)
with the temporary folder holding its inputs; shared by every OrbitAI module's Logic."""
from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from orbitai.runner import JobError, JobResult, OrbitaiJob

ProgressFn = Callable[[int, int, str], None]


@dataclass
class ModuleJob:
    """A started child and its temporary input folder; ``cleanup`` removes both."""

    job: OrbitaiJob
    workdir: Path

    def poll(self):
        return self.job.poll()

    @property
    def finished(self) -> bool:
        return self.job.finished

    def cancel(self) -> None:
        self.job.cancel()

    def cleanup(self) -> None:
        self.job.cleanup()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def checked_result(self, what: str) -> JobResult:
        """The finished child's result; raises :class:`JobError` with its last error lines if it failed."""
        res = self.job.result()
        if not res.ok:
            tail = [ln for ln in res.stderr.strip().splitlines() if ln.strip()][-3:]
            raise JobError(f"{what} failed: " + (" | ".join(tail) or f"exit code {res.returncode}"))
        return res

    def wait(self, progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> None:
        """Block until the child ends (scripts and tests); a set ``cancel`` kills it and raises."""
        try:
            self.job.run(progress, cancel=cancel, check=False)
        except BaseException:
            self.cancel()
            self.cleanup()
            raise
        if cancel is not None and cancel.is_set():
            self.cleanup()
            raise JobError("Cancelled; the scene was not changed.")
