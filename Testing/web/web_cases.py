"""The phantom scans of the web tests' data folder (one per kind, seed `SEED`), by kind: their paths inside it."""
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
