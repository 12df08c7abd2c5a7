"""The tree shows the pipeline: a module imports only from its own stage or from stages below.

foundation ← model ← inputs ← judges ← pairs ← scoring ← steering ← evaluation ← checkpoint
← commands ← cli. The package root (`gcm_edit/__init__.py`, the lazy public API) sits above
all of them, so nothing inside imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gcm_edit"
STAGES = [
    "model",
    "inputs",
    "judges",
    "pairs",
    "scoring",
    "steering",
    "evaluation",
    "checkpoint",
    "commands",
    "cli",
]
FOUNDATION = {"errors", "cache", "keys", "output", "console", "tables", "version", "memory"}


def level(module: str) -> int:
    """0 for the foundation modules, 1.. for the stages in pipeline order."""
    parts = module.split(".")
    if parts[0] != "gcm_edit" or len(parts) == 1:
        raise ValueError(f"not a module inside gcm_edit: {module}")
    if parts[1] in FOUNDATION:
        return 0
    if parts[1] in STAGES:
        return 1 + STAGES.index(parts[1])
    raise ValueError(f"{module} is in no stage: add it to STAGES or FOUNDATION")


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every gcm_edit import in a file, lazy ones inside functions too."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "gcm_edit":  # `from gcm_edit import x`: x is a module or the API
                out += [(node.lineno, f"gcm_edit.{alias.name}") for alias in node.names]
            elif node.module.startswith("gcm_edit."):
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("gcm_edit")]
    return out


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    own = level(module_name(path))
    upward = [f"line {line}: {target}" for line, target in imported(path) if level(target) > own]
    assert upward == [], f"{module_name(path)} (level {own}) imports from above: {upward}"


def test_the_check_sees_an_upward_import(tmp_path):
    """The checker itself: a lazy upward import inside a function is found."""
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from gcm_edit.commands.run import Run\n")
    assert imported(source) == [(2, "gcm_edit.commands.run")]
    assert level("gcm_edit.commands.run") > level("gcm_edit.scoring.engine")
    with pytest.raises(ValueError):
        level("gcm_edit")  # the public API root counts as no stage


def test_every_subpackage_is_a_stage():
    found = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert found == set(STAGES)
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert top == FOUNDATION
