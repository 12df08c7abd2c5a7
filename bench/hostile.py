"""A hostile battery against the `gcm-edit` command line (issue 25): bad recipes, models,
options and outputs, interruptions, cache tampering, hostile folders for `verify` and `eval`,
`sweep`, `calibrate`, `--push-to-hub` without a network, concurrent exports to one --out,
paths with spaces and non-ASCII, and a full disk.

    .venv/bin/python bench/hostile.py [--only SUBSTRING] [--keep]

Each case runs `gcm-edit` in a subprocess inside a sandbox (its own HOME, working folder,
TMPDIR and GCM_EDIT_CACHE, so anything written outside --out and the cache is seen) and is
classed by what a user would call a defect: a traceback, an internal error (exit 1) on bad
input, a silent wrong result, or a leftover (a file outside --out and the cache, a lock or a
staging folder after the run). Prints one table and writes bench/results/hostile.csv; about
10 minutes on 2 CPU cores (the cases that run work use a tiny random model, judged by a
double: hostile_kit.py). The cases: hostile_cases.py (recipes, models, outputs),
hostile_options.py, hostile_runs.py (export runs) and hostile_commands.py (other commands).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hostile_cases import models, outputs, recipes
from hostile_commands import sweep_calibrate, verify_eval
from hostile_kit import ROOT, Case, Outcome, Sandbox
from hostile_options import options
from hostile_runs import (
    cache,
    concurrency,
    full_disk,
    hub,
    interruptions,
    prepare_sandbox,
    unmount,
)

RESULTS = ROOT / "bench" / "results"


def all_cases() -> list[Case]:
    """Every case, in the table's order: inputs first, then the runs."""
    inputs = [*recipes(), *models(), *options(), *outputs()]
    return [*inputs, *interruptions(), *cache(), *verify_eval(), *sweep_calibrate(), *hub()] + [
        *concurrency(),
        *full_disk(),
    ]


def classify(sandbox: Sandbox, case: Case, outcome: Outcome, before: set[Path]) -> list[str]:
    """The defects this outcome shows (empty: the case passed)."""
    problems = []
    if "Traceback" in outcome.output:
        problems.append("traceback")
    if outcome.rc == 1 or "internal error" in outcome.output:
        problems.append("internal error")
    if outcome.rc != case.expect:
        problems.append(f"exit {outcome.rc}, expected {case.expect}")
    if case.says and case.says not in " ".join(outcome.output.split()):
        problems.append(f"message lacks {case.says!r}")
    allowed = [Path(out) for out in sandbox.expand(case.outs)]

    def written_for(path: Path) -> bool:
        return any(
            path == out or out in path.parents or (path in out.parents and out.exists())
            for out in allowed
        )

    new = [path for path in sorted(sandbox.files() - before) if not written_for(path)]
    leftovers = [path for path in new if not any(q in path.parents for q in new)]
    if leftovers:
        shown = ", ".join(str(path.relative_to(sandbox.root)) for path in leftovers[:3])
        problems.append(f"leftover: {shown}")
    if case.check is not None and (problem := case.check(sandbox, outcome)):
        problems.append(problem)
    return problems


def run_case(sandbox: Sandbox, number: int, case: Case) -> dict:
    """Run one case and print its line; its row of the table."""
    if case.prepare:
        case.prepare(sandbox)
    before = sandbox.files()
    try:
        act = case.act or (lambda sb, c: sb.run(c.argv, c.env))
        outcome = act(sandbox, case)
    except subprocess.TimeoutExpired:
        outcome = Outcome(-1, "timed out", 900.0)
    problems = classify(sandbox, case, outcome, before)
    verdict = "pass" if not problems else "; ".join(problems)
    print(f"{number:3d} {case.group:10s} {case.name:58s} {outcome.rc:4d} {verdict}")
    print(f"    {outcome.last_line[:160]}", flush=True)
    return {
        "#": number,
        "group": case.group,
        "case": case.name,
        "exit": outcome.rc,
        "seconds": f"{outcome.seconds:.1f}",
        "verdict": verdict,
        "last line": outcome.last_line[:150],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=None, help="comma-separated: run the cases whose group/name has one"
    )
    parser.add_argument("--keep", action="store_true", help="keep the sandbox folder")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="gcm-hostile-"))
    sandbox = Sandbox(root)
    wanted = args.only.split(",") if args.only else [""]
    selected = [c for c in all_cases() if any(w in f"{c.group}/{c.name}" for w in wanted)]
    try:
        prepare_sandbox(sandbox)
        rows = [run_case(sandbox, number, case) for number, case in enumerate(selected, 1)]
    finally:
        unmount(sandbox)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "hostile.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    failed = [r for r in rows if r["verdict"] != "pass"]
    kinds = {
        kind: sum(kind in r["verdict"] for r in rows)
        for kind in ("traceback", "internal error", "wrong", "leftover")
    }
    print(
        f"\n{len(rows)} cases, {len(rows) - len(failed)} passed; "
        + ", ".join(f"{k}: {v}" for k, v in kinds.items())
    )
    if args.keep:
        print(f"sandbox kept: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
