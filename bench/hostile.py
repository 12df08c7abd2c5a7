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
10 minutes on 2 CPU cores (the cases that run work use a tiny random model).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
Check = Callable[["Sandbox", "Outcome"], str]


class ContrastSideJudge:
    """The command tests' judge double (tests/commands/conftest.py): a random tiny model never
    writes verse, so the concept is "present" exactly in the contrast answers of the pairs
    (judged first, originals then contrasts) and in everything judged after them."""

    label = "calls"

    def __init__(self, n_questions: int):
        self.n_questions, self.calls = n_questions, 0

    def __call__(self, text: str) -> bool:
        self.calls += 1
        return self.calls > self.n_questions

    def grade(self, text: str) -> float:
        return 0.0


def launch() -> None:
    """`gcm-edit` with sys.argv; the runs that name --n-train (the tiny model's) are judged by
    the double above."""
    import gcm_edit.commands.run as run
    from gcm_edit.cli.app import app

    args = sys.argv[1:]
    if "--n-train" in args:
        n_train = int(args[max(i for i, a in enumerate(args) if a == "--n-train") + 1])
        run.make_judge = lambda *_args: ContrastSideJudge(n_train)
    app()


@dataclass
class Outcome:
    rc: int
    output: str
    seconds: float

    @property
    def last_line(self) -> str:
        lines = [line for line in self.output.strip().splitlines() if line.strip()]
        return lines[-1] if lines else ""


@dataclass
class Case:
    """`argv` after `gcm-edit`; `expect`: 0 (works), 2 (refused in one line), 130
    (interrupted); `says`: what the last line must contain; `outs`: paths the run may write
    (relative to the sandbox); `prepare` builds inputs; `act` replaces the plain run (kills,
    concurrency); `check` returns a problem the exit code cannot show ("" when none)."""

    group: str
    name: str
    argv: list[str] = field(default_factory=list)
    expect: int = 2
    says: str = ""
    outs: list[str] = field(default_factory=list)
    prepare: Callable[[Sandbox], None] | None = None
    act: Callable[[Sandbox, Case], Outcome] | None = None
    check: Check | None = None
    env: dict[str, str] = field(default_factory=dict)


class Sandbox:
    """A folder standing in for a user's machine: home, work folder, temp, cache, inputs."""

    def __init__(self, root: Path):
        self.root = root
        for name in ("home", "work", "tmp", "cache", "in"):
            (root / name).mkdir(parents=True, exist_ok=True)
        self.home, self.work, self.tmp = root / "home", root / "work", root / "tmp"
        self.cache, self.inputs = root / "cache", root / "in"

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "XDG_", "GCM_"))}
        env.update(
            HOME=str(self.home),
            TMPDIR=str(self.tmp),
            GCM_EDIT_CACHE=str(self.cache),
            HF_HUB_OFFLINE="1",
            PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'bench'}",
            COLUMNS="200",
        )
        env.update({k: self.expand([v])[0] for k, v in extra.items()})
        return env

    def command(self, argv: list[str]) -> list[str]:
        return [sys.executable, "-c", "import hostile; hostile.launch()", *argv]

    def expand(self, argv: list[str]) -> list[str]:
        return [a.replace("{S}", str(self.root)) for a in argv]

    def run(self, argv: list[str], env: dict[str, str], timeout: float = 900) -> Outcome:
        start = time.perf_counter()
        done = subprocess.run(
            self.command(self.expand(argv)),
            cwd=self.work,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Outcome(done.returncode, done.stdout + done.stderr, time.perf_counter() - start)

    def start(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(
            self.command(self.expand(argv)),
            cwd=self.work,
            env=self.env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            # a shell's background job ignores SIGINT, and a child inherits that: restore it
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def files(self) -> set[Path]:
        """Everything under the sandbox but the cache (which the runs own)."""
        return {p for p in self.root.rglob("*") if self.cache not in p.parents and p != self.cache}


def interrupted(sandbox: Sandbox, argv: list[str], env: dict, after: str, sig: int) -> Outcome:
    """Start a run, send `sig` once its output shows `after`, and wait for it to end."""
    start = time.perf_counter()
    process = sandbox.start(argv, env)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if after in line:
            os.killpg(process.pid, sig)
            break
    rest, _ = process.communicate(timeout=600)
    return Outcome(process.returncode, "".join(seen) + rest, time.perf_counter() - start)


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
    sys.path.insert(0, str(ROOT / "bench"))
    from hostile_cases import input_cases
    from hostile_runs import prepare_sandbox, run_cases, unmount

    root = Path(tempfile.mkdtemp(prefix="gcm-hostile-"))
    sandbox = Sandbox(root)
    wanted = args.only.split(",") if args.only else [""]
    everything = [*input_cases(), *run_cases()]
    selected = [c for c in everything if any(w in f"{c.group}/{c.name}" for w in wanted)]
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
