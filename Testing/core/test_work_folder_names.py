"""The work folders beside a command's output are named in one place (issue 63, item 3: "the work-folder name is
spelled in 12 places"): a training's ``.<OUT name>-training`` (`orbitai.staging.training_work_folder`) and a
fine-tuning's ``.<OUT name>-finetune`` (`orbitai.staging.finetune_work_folder`). Every trainer and every command's
check of its outputs asks those functions, so that a renamed folder can never leave a check looking beside the
wrong one."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from orbitai.staging import finetune_work_folder, training_work_folder

REPO = Path(__file__).resolve().parents[2]
#: A string (or the literal end of an f-string) that spells a work folder's name: "...-training", "...-finetune".
SPELLED = re.compile(r"-(training|finetune)$")


def test_the_work_folders_lie_beside_the_output(tmp_path):
    out = tmp_path / "models" / "mine"
    assert training_work_folder(out) == tmp_path / "models" / ".mine-training"
    assert finetune_work_folder(str(out)) == tmp_path / "models" / ".mine-finetune"
    assert training_work_folder("b") == Path(".b-training")


def _spelled(path: Path) -> list[str]:
    """Where ``path`` spells a work folder's name itself: a string constant, or an f-string's literal part, ending
    in -training or -finetune (a command's name, such as "finetune", does not)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        parts = node.values if isinstance(node, ast.JoinedStr) else [node] if isinstance(node, ast.Constant) else []
        for part in parts:
            if isinstance(part, ast.Constant) and isinstance(part.value, str) and SPELLED.search(part.value) \
                    and part.value.strip().startswith((".", "-")):
                found.add(f"{path.relative_to(REPO).as_posix()}:{node.lineno}")
    return sorted(found)


def test_no_file_of_the_package_spells_a_work_folder_name_itself():
    found = [hit for p in sorted((REPO / "orbitai").rglob("*.py")) if p.name != "staging.py" for hit in _spelled(p)]
    assert not found, ("work folder names spelled outside orbitai/staging.py (use training_work_folder or "
                       f"finetune_work_folder): {found}")
