"""The README's Python example runs as written (on the real default model), and the package
docstring shows the same code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import gcm_edit

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    section = (ROOT / "README.md").read_text().split("## Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def code_lines(text: str) -> list[str]:
    """Statements without comments or indentation: what must agree between the two copies."""
    lines = (line.split("  #", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def test_docstring_shows_the_readme_example():
    docstring = gcm_edit.__doc__.split("line starts fast):", 1)[1].split("`ge.export(", 1)[0]
    assert code_lines(docstring) == code_lines(readme_example())


@pytest.mark.integration
def test_readme_example_runs(integration_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("GCM_EDIT_CACHE", str(integration_cache))  # the converted default model
    script = tmp_path / "example.py"
    script.write_text(readme_example())
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "greedy_identical=True" in result.stdout
    assert (tmp_path / "verse-model" / "model.safetensors").is_file()
