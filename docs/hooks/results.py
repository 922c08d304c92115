"""The measured-results pages of the docs site, made from ``benchmarks/results/*.json`` at build time.

A mkdocs hook (``mkdocs.yml``: ``hooks: [docs/hooks/results.py]``): ``on_files`` adds one generated page per
results file (``results/<area>.md``) and an overview (``results/index.md``). No number on these pages is typed
by hand: every figure is read from the JSON (``Testing/test_docs.py`` checks that each number on a generated
page occurs in the results files, and that no results page is committed). Pure standard library, so
``python docs/hooks/results.py OUT_DIR`` writes the same pages without mkdocs (to read them, or diff them).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
#: Where the generated pages live in the site (never committed under docs/).
FOLDER = "results"

#: The overview's key figures: (what, results file, metric, where the JSON names the cohort or scan).
#: The cohort is read from the JSON too: a notes key, or ``ci95:<metric>`` for the n of its interval.
KEY_FIGURES: List[Tuple[str, str, str, str]] = [
    ("Orbit CT, SV-net demo: mean IoU of the five thin structures", "segmentation", "svnet_miou_five",
     "ci95:svnet_iou_eyeball"),
    ("Orbit CT, SV-net demo: eyeball Dice", "segmentation", "svnet_dice_eyeball", "ci95:svnet_iou_eyeball"),
    ("TAO activity, Network B: AUC", "tao", "tao_b_auc", "test_cohort"),
    ("TAO activity, Network A: AUC", "tao", "tao_a_auc", "test_cohort"),
    ("IVGC response, radiomics SVM (MR+LR): AUC", "ivgc", "svm_mrlr_auc", "heldout_cohort"),
    ("IVGC response, RDINet + clinical: AUC", "ivgc", "rdinet_clinical_auc", "heldout_cohort"),
    ("NMOSD vs MS, two-view ResNet-18: held-out accuracy", "neuro_classifier", "twoview18_heldout_accuracy",
     "cohorts"),
    ("Browser: SmartPencil click to the updated view, seconds", "web", "smartpencil_click_to_view_s", "scan"),
    ("White-matter lesions: Dice over all held-out real-map cases", "neuro_lesions", "all_dice", "bundle"),
    ("Trust: share of TAO Network B test eyes flagged", "trust", "tao_B_test_flagged_share", "cohorts"),
]


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def num(v: Any) -> str:
    """A value as the JSON file writes it (so the page's digits are the file's)."""
    return json.dumps(v, ensure_ascii=False)


def cell(v: Any) -> str:
    """A table cell: text as it is, other values in JSON, pipes escaped."""
    text = v if isinstance(v, str) else num(v)
    return text.replace("|", "\\|").replace("\n", " ")


def standard(data: Any) -> bool:
    """The benchmarks' common shape (``benchmarks/common.py``): area, date, machine, metrics, targets, notes."""
    return isinstance(data, dict) and isinstance(data.get("metrics"), dict) and "machine" in data


def interval(notes: Dict[str, Any], metric: str) -> str:
    ci = (notes.get("ci95") or {}).get(metric) if isinstance(notes.get("ci95"), dict) else None
    if not isinstance(ci, dict) or not isinstance(ci.get("ci95"), list) or len(ci["ci95"]) != 2:
        return ""
    low, high = ci["ci95"]
    return f"{num(low)}-{num(high)} (n = {num(ci.get('n'))}; {cell(ci.get('method', ''))})"


def cohort(name: str, data: Any, key: str) -> str:
    """What the JSON says the figure was measured on; '' where it does not say."""
    if not standard(data):
        return ""
    notes = data.get("notes") or {}
    if key.startswith("ci95:"):
        ci = (notes.get("ci95") or {}).get(key[5:])
        if isinstance(ci, dict) and "n" in ci:
            return f"n = {num(ci['n'])} cases (`notes.ci95`; the JSON does not name the cohort)"
        return ""
    value = notes.get(key)
    return "" if value is None else cell(value)


def met(value: Any, target: Optional[str]) -> str:
    if not target or not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    for op in ("<=", ">=", "==", "<", ">"):
        if target.startswith(op):
            try:
                bound = float(target[len(op):])
            except ValueError:
                return ""
            ok = {"<=": value <= bound, ">=": value >= bound, "==": value == bound,
                  "<": value < bound, ">": value > bound}[op]
            return "met" if ok else "**not met**"
    return ""


def leaves(value: Any, path: str = "") -> List[Tuple[str, Any]]:
    """Scalar leaves of a nested JSON value as (dotted path, value)."""
    if isinstance(value, dict):
        out: List[Tuple[str, Any]] = []
        for k, v in value.items():
            out += leaves(v, f"{path}.{k}" if path else str(k))
        return out
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        out = []
        for i, v in enumerate(value):
            out += leaves(v, f"{path}[{i}]")
        return out
    return [(path, value)]


def area_page(name: str, data: Any) -> str:
    src = f"benchmarks/results/{name}.json"
    lines = [f"# {name}", ""]
    if standard(data):
        m = data.get("machine") or {}
        lines += [f"Read from `{src}` at build time. Area `{cell(data.get('area', name))}`, measured "
                  f"{cell(data.get('date', 'at an unrecorded date'))} on {cell(m.get('cpu'))}, "
                  f"{cell(m.get('cores'))} cores, GPU {cell(m.get('gpu'))}.", ""]
        notes = data.get("notes") or {}
        said = [(k, v) for k, v in notes.items() if isinstance(v, str)] if isinstance(notes, dict) else []
        lines += ["## What was measured", ""]
        if said:
            lines += ["The JSON's own words (its `notes`): the cohort, scan or set each figure belongs to.", ""]
            lines += [f"- **{cell(k)}**: {cell(v)}" for k, v in said]
        else:
            lines += ["The JSON's notes hold no sentence naming the cohort; see the full notes below."]
        lines += ["", "## Metrics", "",
                  "| metric | value | interval (from `notes.ci95`) | target | |", "|---|---|---|---|---|"]
        targets = data.get("targets") or {}
        for k, v in data["metrics"].items():
            t = targets.get(k)
            lines.append(f"| `{k}` | {cell(v)} | {interval(notes, k) if isinstance(notes, dict) else ''} | "
                         f"{cell(t) if t else ''} | {met(v, t)} |")
        missing = [k for k in targets if k not in data["metrics"]]
        if missing:
            lines += ["", "Targets without a measured value in this file: " + ", ".join(f"`{k}`" for k in missing)
                      + "."]
        if notes:
            lines += ["", "## All notes, as stored", "", "```json", json.dumps(notes, indent=1, ensure_ascii=False),
                      "```"]
    else:
        lines += [f"Read from `{src}` at build time. This file does not follow the benchmarks' common shape "
                  "(no machine or date): its values, as stored.", "", "| value | |", "|---|---|"]
        for path, v in leaves(data):
            lines.append(f"| `{path}` | {cell(v)} |")
    return "\n".join(lines) + "\n"


def index_page(all_data: Dict[str, Any]) -> str:
    lines = ["# Measured results", "",
             "Every figure on these pages is read from `benchmarks/results/*.json` when the site is built "
             "(`docs/hooks/results.py`); none is typed by hand. The benchmarks (`make bench`, `python -m "
             "benchmarks AREA`) write those files. All figures are on **phantoms** or the project's few real "
             "scans, never on a patient cohort of the papers; the page of each file names what it was "
             "measured on, in the JSON's own words.", "", "## Key figures", "",
             "| figure | value | interval | measured on | file |", "|---|---|---|---|---|"]
    for what, name, metric, key in KEY_FIGURES:
        data = all_data.get(name)
        if not standard(data) or metric not in data["metrics"]:
            lines.append(f"| {what} | not in the results | | | `{name}.json` |")
            continue
        notes = data.get("notes") or {}
        lines.append(f"| {what} | {cell(data['metrics'][metric])} | {interval(notes, metric)} | "
                     f"{cohort(name, data, key)} | [{name}]({name}.md) |")
    lines += ["", "## Every results file", "", "| file | measured | shape |", "|---|---|---|"]
    for name, data in all_data.items():
        when = cell(data.get("date", "")) if standard(data) else "(no date stored)"
        shape = "metrics, targets, notes" if standard(data) else "values only"
        lines.append(f"| [{name}]({name}.md) | {when} | {shape} |")
    return "\n".join(lines) + "\n"


def pages(results: Path = RESULTS) -> Dict[str, str]:
    """``{site path: markdown}`` of every generated results page."""
    all_data = {p.stem: load(p) for p in sorted(results.glob("*.json"))}
    out = {f"{FOLDER}/index.md": index_page(all_data)}
    for name, data in all_data.items():
        out[f"{FOLDER}/{name}.md"] = area_page(name, data)
    return out


def nav(results: Path = RESULTS) -> List[Any]:
    return [{"Overview": f"{FOLDER}/index.md"}] + [{p.stem: f"{FOLDER}/{p.stem}.md"}
                                                    for p in sorted(results.glob("*.json"))]


# --- the modules' panels ------------------------------------------------------------------------------------

#: ``<!-- panel: orbitai.app.tao_activity -->`` on a page becomes that module's panel: its input and options,
#: read from its one declaration (``PANEL``, ``orbitai/app/panel_spec.py``), so the page cannot drift from it.
PANEL_MARK = re.compile(r"<!-- panel: ([\w.]+) -->")
#: Options whose choices are the models installed on the machine that builds the site: not listed.
MODEL_OPTIONS = ("model", "lesion_model")


def panel_markdown(module_path: str) -> str:
    import importlib

    spec = importlib.import_module(module_path).PANEL
    lines = [f"The **{spec.title}** panel takes {spec.input_hint}. Its options (read from `{module_path}.PANEL` "
             "when this site is built):", "", "| option | kind | choices | default | what it does |",
             "|---|---|---|---|---|"]
    for opt in spec.options:
        if opt.name in MODEL_OPTIONS:
            choices, default = "the installed models, each by its label", ""
        else:
            listed = opt.choices() if opt.choices else []
            choices = ", ".join(f"`{c}`" for c in listed)
            value = opt.default_value()
            default = "" if value is None else f"`{value}`"
        lines.append(f"| {cell(opt.label)} | {opt.kind} | {choices} | {default} | {cell(opt.hint)} |")
    sections = [getattr(s, "title", str(s)) for s in (spec.sections or [])]
    if sections:
        lines += ["", "Further sections of the panel: " + ", ".join(f"*{s}*" for s in sections) + "."]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return PANEL_MARK.sub(lambda m: panel_markdown(m.group(1)), markdown)


# --- mkdocs hook -------------------------------------------------------------------------------------------

def on_config(config: Any) -> Any:
    """Fill the "Measured results" entry of the nav (left empty in mkdocs.yml) with the generated pages."""
    for item in config["nav"] or []:
        if isinstance(item, dict) and "Measured results" in item:
            item["Measured results"] = nav()
    return config


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for src_uri, text in pages().items():
        files.append(File.generated(config, src_uri, content=text))
    return files


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/hooks/results.py OUT_DIR")
    for rel, text in pages().items():
        target = Path(sys.argv[1]) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
