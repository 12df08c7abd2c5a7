"""What bench/hostile.py and its cases (hostile_cases.py, hostile_runs.py) share: a case and
its outcome, the sandbox a case runs in, the command lines they build, and the launcher each
`gcm-edit` subprocess starts from (it registers the bench's judge double first).

`{S}` in a command line is the sandbox folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The judge double's name in recipes; only the bench's subprocesses (launch) register it.
BENCH_JUDGE = "bench-contrast-side"
# The verse recipe judged by the double: every case that runs work on the tiny model uses it.
CONTRAST_RECIPE = "{S}/in/contrast.yaml"
FAST = ["--n-train", "4", "--n-validation", "4", "--n-heldout", "2", "--max-new-tokens", "8"]
FAST += ["--k", "25", "--batch-size", "3", "--edit", "mean-diff"]
TINY = ["--model", "{S}/in/tiny"]
NO_MODEL = ["--model", "{S}/in/no-such-model"]  # valid inputs then end here, in one line
MODEL_MISSING = "model folder not found"


class ContrastSideJudge:
    """The judge double (as in tests/commands/conftest.py): a random tiny model never writes
    verse, so the concept is "present" exactly in the contrast answers of the pairs (judged
    first, originals then contrasts) and in everything judged after them."""

    label = "calls"

    def __init__(self, n_questions: int):
        self.n_questions, self.calls = n_questions, 0

    def __call__(self, text: str) -> bool:
        self.calls += 1
        return self.calls > self.n_questions

    def grade(self, text: str) -> float:
        return 0.0


def launch() -> None:
    """`gcm-edit` with sys.argv, the judge double registered as BENCH_JUDGE for the --n-train
    training questions of this run (a recipe naming it is judged by it)."""
    from gcm_edit.cli.app import app
    from gcm_edit.judges import register_judge

    args = sys.argv[1:]
    named = [i for i, a in enumerate(args[:-1]) if a == "--n-train"]
    n_train = int(args[named[-1] + 1]) if named else 0
    register_judge(BENCH_JUDGE, lambda: ContrastSideJudge(n_train))
    app()


@cache
def verse() -> dict:
    """The built-in verse recipe with its data files read in (a recipe anywhere can hold it)."""
    from gcm_edit.inputs.recipe_files import load_recipe

    return json.loads(load_recipe("verse").model_dump_json(exclude_defaults=True))


def export(*argv: str, model: list[str] = TINY, fast: bool = True) -> list[str]:
    """`gcm-edit export` on `model`, with the fast options and (unless argv names one) the
    recipe judged by the double."""
    concept = [] if "--concept" in argv else ["--concept", CONTRAST_RECIPE]
    return ["export", *model, *(FAST if fast else []), *concept, *argv]


def write(path: Path, blob: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob.encode() if isinstance(blob, str) else blob)


def jsonl(questions: list) -> str:
    return "".join(json.dumps({"question": q}) + "\n" for q in questions)


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
    check: Callable[[Sandbox, Outcome], str] | None = None
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
        return [sys.executable, "-c", "import hostile_kit; hostile_kit.launch()", *argv]

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
