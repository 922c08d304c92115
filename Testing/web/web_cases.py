"""The web tests' shared cases: the phantom scans of their data folder (one per kind, seed `SEED`), by kind: their paths
inside it; the ranking run; a stand-in for trame's state."""
from __future__ import annotations

from typing import Any

PHANTOMS = {"orbit-ct": "orbit-ct/images/orbit_ct_0000.nrrd", "tao": "tao/images/tao_0000.nrrd",
            "brain-flair": "brain-flair/images/brain_flair_0000.nrrd"}
SEED = 7


def run_ranking(page, timeout_s: float = 300) -> list:
    """Open "Which scan next", rank the loaded scans on the CPU, wait for the end; its table rows (no error)."""
    page.set_state("module", "orbit")
    page.click("orbitai-section-orbit_rank")
    page.wait(lambda: page.element("orbitai-orbit_rank-apply").is_displayed(), 20, "the section")
    page.set_state("orbit_rank_device", "cpu")
    page.wait_state("orbit_rank_apply_enabled", bool, 30)
    page.click("orbitai-orbit_rank-apply")
    page.wait_state("orbit_rank_running", bool, 20)
    page.wait_state("orbit_rank_running", lambda v: not v, timeout_s)
    assert page.state("orbit_rank_error") == "", page.state("orbit_rank_error")
    return page.state("orbit_rank_table_rows")


class LoaderState(dict):
    """What the browser's `ScanLoader.load` uses of trame's state, without a server: attributes, and ``with state:``."""

    __getattr__ = dict.get

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __enter__(self) -> "LoaderState":
        return self

    def __exit__(self, *_: Any) -> None:
        pass
