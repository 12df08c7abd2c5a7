"""The public API: every name in `gcm_edit.__all__` resolves, lazily; the CLI starts light."""

from __future__ import annotations

import subprocess
import sys

import gcm_edit


def test_every_public_name_resolves():
    for name in gcm_edit.__all__:
        assert getattr(gcm_edit, name) is not None, name
    assert sorted(dir(gcm_edit)) == sorted(gcm_edit.__all__)


def test_unknown_name_is_an_attribute_error():
    try:
        gcm_edit.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_command_line_imports_no_torch():
    """`gcm-edit COMMAND --help` stays fast: building the app imports neither torch nor
    transformers nor lightning (each command's module loads only when it runs)."""
    code = (
        "import sys, gcm_edit, gcm_edit.cli.app; "
        "print(sorted(m for m in ('torch', 'transformers', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
