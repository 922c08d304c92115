"""The front door (issue #64): README.md at most 300 lines, the docs site built with ``mkdocs build --strict``, and
the measured-results pages made from ``benchmarks/results/*.json``, never typed by hand.

* Every number on a generated results page (``docs/hooks/results.py``) occurs in the results files; a page with
  a number of its own is caught (checked on a doctored page too, so the check can fail).
* No results page is committed under ``docs/results/`` (they exist only in the built site).
* The README's results summary states each key figure as its JSON has it (rounded as the README writes it).
* ``mkdocs build --strict`` succeeds into a temporary folder and the built TAO page holds the JSON's AUC.
* The modules' help texts link pages of the site at the address mkdocs.yml gives, and every page exists.
"""
from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest

from orbitai.slicer_versions import SLICER_PYTHON

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
README = REPO / "README.md"

#: A number standing alone (not part of a name such as ``tao_b_auc`` or ``ci95``).
NUMBER = re.compile(r"(?<![\w.\-])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])")
#: Any run of digits in the results files (their numbers, dates, seeds and sentences).
ANY_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")

#: The README's key figures: (results file, metric, decimals the README writes).
README_FIGURES = [
    ("segmentation", "svnet_miou_five", 3),
    ("segmentation", "svnet_dice_eyeball", 3),
    ("tao", "tao_b_auc", 3),
    ("tao", "tao_a_auc", 3),
    ("ivgc", "svm_mrlr_auc", 3),
    ("ivgc", "rdinet_clinical_auc", 3),
    ("neuro_classifier", "twoview18_heldout_accuracy", 3),
    ("neuro_lesions", "all_dice", 3),
    ("lesion_second_look", "test_1mm_lesion_f1", 3),
    ("lesion_second_look", "test_1mm_dice", 3),
    ("lesion_second_look", "test_1mm_light_false_components_median", 1),
    ("lesion_second_look_0.2.0", "test_1mm_lesion_f1", 3),
    ("lesion_second_look_0.2.0", "test_1mm_light_false_components_median", 1),
    ("lesion_second_look", "patient26_lesion_f1", 3),
    ("lesion_second_look_0.2.0", "patient26_lesion_f1", 3),
    ("orbit_mri_ted", "orbit_svnet_mri_gpu_recti_pred_over_truth_median", 3),
    ("orbit_mri_ted", "orbit_svnet_mri_gpu_recti_dice_median", 3),
    ("training_speed", "lesions_speedup", 2),
    ("training_speed", "orbit_mri_speedup", 2),
    ("training_speed", "orbit_ct_speedup", 2),
    ("gpu_training", "lesions_gpu_speedup", 1),
    ("gpu_training", "orbit_mri_gpu_speedup", 1),
]


def _hook():
    spec = importlib.util.spec_from_file_location("orbitai_docs_results_hook", REPO / "docs" / "hooks" / "results.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _json_numbers() -> set[str]:
    out: set[str] = set()
    for p in RESULTS.glob("*.json"):
        out.update(ANY_NUMBER.findall(p.read_text(encoding="utf-8")))
        out.update(m.lstrip("-") for m in ANY_NUMBER.findall(p.read_text(encoding="utf-8")))
    return out


def _typed_numbers(pages: dict[str, str], known: set[str]) -> dict[str, list[str]]:
    """Numbers on the pages that no results file holds: typed by hand."""
    bad: dict[str, list[str]] = {}
    for name, text in pages.items():
        found = [n for n in NUMBER.findall(text) if n not in known and n.lstrip("-") not in known]
        if found:
            bad[name] = sorted(set(found))
    return bad


#: A decimal figure in running text (not a version, date, DOI or name).
DECIMAL = re.compile(r"(?<![\w.\-/])(\d+\.\d+)(?![\w.]\d)")
#: Hand-written pages left out of the prose check, and why.
PROSE_EXEMPT = {
    "reliability.md": "the defect table: test names and inputs, not measurements",
    "notes/web_app_research.md": "a survey of other projects' figures",
    "neuro.md": "the module's development record; says on the page that earlier stages' figures are not in the JSON",
}
#: Decimal numbers on hand-written pages that are not measurements, with the reason.
NOT_MEASUREMENTS = {
    "neuro/anatomy.md": {"1.75": "a rule's threshold"},
}
#: Said beside a figure that has no results file behind it.
NO_JSON = "not in a results file"
#: Version numbers are names, not measurements: the supported Slicer versions and their Pythons (a results file
#: holding a 5.1 s timing once made "5.10" look traced, and its next run made it look typed from nowhere).
VERSIONS = {*SLICER_PYTHON, *(f"{major}.{minor}" for major, minor in SLICER_PYTHON.values())}


def _json_values() -> dict[int, set[float]]:
    """Every number of the results files rounded to 0-4 decimals, also as a percentage."""
    values: list[float] = []

    def walk(x):
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            values.append(float(x))

    for p in RESULTS.rglob("*.json"):
        walk(json.loads(p.read_text(encoding="utf-8")))
    return {d: {round(v, d) for v in values} | {round(100 * v, d) for v in values} for d in range(5)}


def _untraced(text: str, rounded: dict[int, set[float]], exempt: dict[str, str]) -> list[str]:
    """Decimal figures of running text (code, inline code and links' targets left out) that no results file holds
    at the figure's own rounding, unless the line says it has no results file behind it."""
    out, fence = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if fence or NO_JSON in line:
            continue
        line = re.sub(r"`[^`]*`", "", line)
        line = re.sub(r"\]\([^)]*\)", "]", line)
        line = re.sub(r"(doi:|arXiv:)\S+", "", line)
        for n in DECIMAL.findall(line):
            decimals = len(n.split(".")[1])
            if n in exempt or n in VERSIONS or (decimals <= 4 and float(n) in rounded[decimals]):
                continue
            out.append(n)
    return out


def test_figures_in_the_docs_prose_are_in_the_results_files():
    """The hand-written pages (the README's moved sections among them) and the README: each decimal figure occurs,
    at its rounding, in some results file, or its line says it has none. A weak check (any value of any file
    matches), but a figure typed from nowhere, or left when its JSON changed to another value, fails it."""
    rounded = _json_values()
    docs = REPO / "docs"
    bad = {}
    for page in sorted(docs.rglob("*.md")):
        rel = page.relative_to(docs).as_posix()
        if rel in PROSE_EXEMPT:
            continue
        found = _untraced(page.read_text(encoding="utf-8"), rounded, NOT_MEASUREMENTS.get(rel, {}))
        if found:
            bad[rel] = found
    found = _untraced(README.read_text(encoding="utf-8"), rounded, {})
    if found:
        bad["README.md"] = found
    assert not bad, f"figures with no results file behind them (say '{NO_JSON}' beside them, or measure): {bad}"


def test_a_figure_typed_into_the_prose_is_caught():
    rounded = _json_values()
    assert _untraced("SV-net reached a mean IoU of 0.98761 on the phantoms.", rounded, {}) == ["0.98761"]
    assert _untraced("An earlier run gave 0.98761 (not in a results file).", rounded, {}) == []


def test_results_pages_hold_only_numbers_from_the_json():
    pages = _hook().pages(RESULTS)
    assert f"{_hook().FOLDER}/index.md" in pages
    assert len(pages) == len(list(RESULTS.glob("*.json"))) + 1, "one page per results file and an overview"
    bad = _typed_numbers(pages, _json_numbers())
    assert not bad, f"numbers on the results pages that no benchmarks/results/*.json holds: {bad}"


def test_a_number_typed_into_a_results_page_is_caught():
    pages = _hook().pages(RESULTS)
    doctored = dict(pages)
    doctored["results/tao.md"] = pages["results/tao.md"] + "\n| hand-typed AUC | 0.98765 |\n"
    assert _typed_numbers(doctored, _json_numbers()) == {"results/tao.md": ["0.98765"]}


def test_results_pages_name_their_cohort_and_value():
    pages = _hook().pages(RESULTS)
    tao = json.loads((RESULTS / "tao.json").read_text(encoding="utf-8"))
    page = pages["results/tao.md"]
    assert tao["notes"]["test_cohort"] in page, "the TAO page does not name its test cohort"
    assert f"| `tao_b_auc` | {json.dumps(tao['metrics']['tao_b_auc'])} |" in page
    assert tao["targets"]["tao_b_auc"] in page


def test_no_results_page_is_committed():
    tracked = subprocess.run(["git", "ls-files", "docs/results"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    assert not tracked, f"results pages are generated at build time, not committed: {tracked}"
    assert not (REPO / "docs" / "results").exists(), "docs/results/ would shadow the generated results pages"


def test_readme_is_short_and_its_figures_are_the_json():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300, f"README.md has {len(text.splitlines())} lines (at most 300)"
    for name, metric, decimals in README_FIGURES:
        value = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))["metrics"][metric]
        shown = f"{value:.{decimals}f}"
        assert shown in text, f"README.md's results summary does not state {name}.json {metric} as {shown}"
    for command in ("make demo", "make test"):
        assert f"\n{command}    #" in text or f"\n{command}  " in text, f"README.md lost the '{command}' line"


def test_module_help_links_pages_of_the_site():
    info = pytest.importorskip("orbitai.mrml.module_info", reason="headless MRML (slicer-core) is not installed")
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    site_url = re.search(r"^site_url:\s*(\S+)", config, re.M)
    assert site_url and site_url.group(1) == info.DOCS_URL, "mkdocs.yml's site_url and DOCS_URL differ"
    for module, (page, sections) in info.DOCS_PAGES.items():
        assert (REPO / module / f"{module}.py").is_file(), module
        assert (REPO / "docs" / (page.rstrip("/") + ".md")).is_file(), f"{module}'s docs page {page} is missing"
        help_text = info.moduleHelp(module, "Help.")
        assert f"{info.DOCS_URL}{page}" in help_text
        assert all(s in help_text for s in sections)
        source = (REPO / module / f"{module}.py").read_text(encoding="utf-8")
        assert "doi:" in source or "arXiv:" in source, f"{module}'s acknowledgement cites no paper"
        assert "Reproduces paper" not in source


def test_mkdocs_build_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs and mkdocs-material are not installed (pip install -e '.[dev]')")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
                         cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    tao = json.loads((RESULTS / "tao.json").read_text(encoding="utf-8"))["metrics"]["tao_b_auc"]
    built_tao = (site / "results" / "tao" / "index.html").read_text(encoding="utf-8")
    assert json.dumps(tao) in built_tao
    for module, page in (("orbit_segmentation", "orbit-segmentation"), ("tao_activity", "tao-activity"),
                         ("ivgc_response", "ivgc-response"), ("neuro_differential", "neuro-differential")):
        built = html.unescape((site / "modules" / page / "index.html").read_text(encoding="utf-8"))
        for option in import_module(f"orbitai.app.{module}").PANEL.options:
            assert option.label in built, f"the {page} page does not list the panel's option {option.label!r}"
    for page in ("install", "modules/orbit-segmentation", "annotation", "cli", "web", "phantoms", "data", "design",
                 "slicer", "reliability", "results"):
        assert (site / page / "index.html").is_file(), page
