"""Cold and warm end-to-end `gcm-edit export` on the default model; prints each stage's time.

Target: the cold run (empty cache, default-model conversion included) under 10 minutes on
a 2-core CPU. Run with `make bench` or `python bench/e2e.py`. The table names the engine that
generates and its batch.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="gcm-bench-") as tmp:
        os.environ["GCM_EDIT_CACHE"] = str(Path(tmp) / "cache")
        from gcm_edit.commands.export import export
        from gcm_edit.commands.export_settings import ExportSettings
        from gcm_edit.console import quiet_libraries
        from gcm_edit.inputs.default_model import default_model_dir
        from gcm_edit.model.generation import engine

        quiet_libraries()
        start = time.perf_counter()
        default_model_dir()
        convert = time.perf_counter() - start
        out = Path(tmp) / "out"
        settings = ExportSettings(out=out, force=True)
        runs = {}
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            export(settings)
            total = time.perf_counter() - t0
            manifest = json.loads((out / "gcm_edit.json").read_text())
            runs[label] = (manifest["timings_s"], total)

    title = f"gcm-edit export --concept verse, {os.cpu_count()} CPU cores, {engine()}"
    table = Table(title=f"{title}, {settings.generation_batch} sequences a generation batch")
    table.add_column("stage")
    table.add_column("cold (s)", justify="right")
    table.add_column("warm (s)", justify="right")
    table.add_row("convert default model", f"{convert:.1f}", "0.0")
    for stage in runs["cold"][0]:
        table.add_row(
            stage, f"{runs['cold'][0][stage]:.1f}", f"{runs['warm'][0].get(stage, 0):.1f}"
        )
    cold_total = convert + runs["cold"][1]
    table.add_row("[bold]total", f"[bold]{cold_total:.1f}", f"[bold]{runs['warm'][1]:.1f}")
    Console().print(table)
    verdict = "PASS" if cold_total < 600 else "FAIL"
    print(f"cold run {cold_total:.0f}s vs 600s target: {verdict}")


if __name__ == "__main__":
    main()
