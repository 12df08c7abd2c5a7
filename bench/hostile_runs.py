"""The export cases of bench/hostile.py that run work or break it midway: interruptions,
cache tampering, the hub without a network, concurrent exports, full disks; and the sandbox
every case shares (the tiny model, a reference export). The runs on the tiny model name the
recipe judged by the bench's double (hostile_kit.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import yaml
from hostile_kit import (
    BENCH_JUDGE,
    CONTRAST_RECIPE,
    Case,
    Outcome,
    Sandbox,
    export,
    interrupted,
    jsonl,
    verse,
    write,
)

from gcm_edit.model.tiny import save_tiny_model_dir

REFERENCE_ENTRIES: list[str] = []  # the run folder's entries right after the reference export


def partial_appears(sb: Sandbox, argv: list[str], sig: int, out: Path) -> Outcome:
    """Start an export and send `sig` as soon as its staging folder exists (bake + write)."""
    start = time.perf_counter()
    process = sb.start(argv, {})
    while process.poll() is None:
        if list(out.parent.glob(f".{out.name}.partial-*")):
            os.killpg(process.pid, sig)
            break
        time.sleep(0.02)
    output, _ = process.communicate(timeout=600)
    return Outcome(process.returncode, output, time.perf_counter() - start)


def interruptions() -> list[Case]:
    def kill_then_rerun(sb: Sandbox, case: Case) -> Outcome:
        out = Path(sb.expand(["{S}/work/killed"])[0])
        first = partial_appears(sb, case.argv, signal.SIGKILL, out)
        left = sorted(p.name for p in out.parent.glob(".killed.*"))
        second = sb.run(case.argv, {})
        again = sorted(p.name for p in out.parent.glob(".killed.*"))
        note = f"first exit {first.rc}, left {left}; second left {again}\n"
        return Outcome(second.rc, note + second.output, first.seconds + second.seconds)

    def cold(*argv: str) -> list[str]:  # other training questions: the stages are not cached
        return export(*argv, "--n-train", "6")

    def signalled(name: str, out: str, after: str, sig: int) -> Case:
        act = lambda sb, c: interrupted(sb, c.argv, {}, after, sig)  # noqa: E731
        return Case("interrupt", name, cold("--out", out), expect=130, act=act)

    argv = export("--out", "{S}/work/killed", "--force")
    return [
        signalled("SIGINT while loading", "{S}/work/a/b/int", "load model", signal.SIGINT),
        signalled("SIGTERM while scoring", "{S}/work/c/d/term", "pairs", signal.SIGTERM),
        Case(
            "interrupt",
            "SIGINT during bake + write",
            cold("--out", "{S}/work/e/bake"),
            expect=130,
            act=lambda sb, c: partial_appears(
                sb, c.argv, signal.SIGINT, Path(sb.expand(["{S}/work/e/bake"])[0])
            ),
        ),
        Case(
            "interrupt",
            "SIGKILL during bake + write, then a rerun cleans",
            argv,
            expect=0,
            outs=["{S}/work/killed"],
            act=kill_then_rerun,
            check=lambda sb, o: "" if "second left []" in o.output else "leftover after rerun",
        ),
    ]


def run_folder(sb: Sandbox) -> Path:
    (folder,) = [p for p in (sb.cache / "runs").iterdir() if p.name.startswith("tiny-")]
    return folder


def same_result(sb: Sandbox, out: str) -> str:
    """The rerun's results against the untampered reference export's: its plan, KL, factual
    answers and sample answers (the held-out verdicts come from the judge double, whose
    answers depend on how many calls came before, so they are not compared)."""

    def figures(folder: Path) -> dict:
        m = json.loads((folder / "gcm_edit.json").read_text())
        return {k: m[k] for k in ("steering", "retention", "capability", "samples")}

    fresh = figures(Path(sb.expand([out])[0]))
    reference = figures(sb.inputs / "ref-export")
    return "" if fresh == reference else "wrong: figures differ from the reference export"


def tamper_case(name: str, tamper, says: str = "cache: discarded") -> Case:
    out = "{S}/work/tamper-" + str(abs(hash(name)) % 10**6)

    def act(sb: Sandbox, case: Case) -> Outcome:
        tamper(run_folder(sb))
        return sb.run(case.argv, {})

    return Case(
        "cache",
        name,
        export("--out", out),
        expect=0,
        says=says,
        outs=[out],
        act=act,
        check=lambda sb, o: same_result(sb, out),
    )


def cache() -> list[Case]:
    def entries(folder: Path, prefix: str) -> list[Path]:
        """The entries of this kind that the reference export wrote (and a rerun reads)."""
        return [folder / name for name in REFERENCE_ENTRIES if name.startswith(f"{prefix}-")]

    def copy_over(folder: Path) -> None:
        a, b = entries(folder, "answers")[:2]
        shutil.copy(a, b)

    def truncate(folder: Path) -> None:
        path = entries(folder, "deltas")[0]
        path.write_bytes(path.read_bytes()[:100])

    def to_folder(folder: Path) -> None:
        path = entries(folder, "measured")[0]
        path.unlink()
        (path / "x").mkdir(parents=True)

    def to_link(folder: Path) -> None:
        path = entries(folder, "retention")[0]
        path.unlink()
        path.symlink_to("/dev/null")

    def garbage(folder: Path) -> None:
        entries(folder, "pairs")[0].write_text('{"kind": "pairs", garbage')

    def other_kind(folder: Path) -> None:
        shutil.copy(entries(folder, "scores")[0], entries(folder, "deltas")[0])

    def whole_folder(folder: Path) -> None:
        shutil.rmtree(folder)

    return [
        tamper_case("answers entry copied over another", copy_over, "written for key"),
        tamper_case("δ entry truncated", truncate),
        tamper_case("judged figures entry replaced by a folder", to_folder, "not a regular file"),
        tamper_case("retention entry a link to /dev/null", to_link),
        tamper_case("pairs entry garbled", garbage),
        tamper_case("scores copied over δ", other_kind),
        tamper_case("run folder deleted", whole_folder, ""),
        *(
            Case(
                "cache",
                name,
                export("--out", "{S}/work/c"),
                says="cannot use the cache folder",
                env={"GCM_EDIT_CACHE": root},
                prepare=prepare,
            )
            for name, root, prepare in (
                (
                    "GCM_EDIT_CACHE is a file",
                    "{S}/in/cache-file",
                    lambda sb: write(sb.inputs / "cache-file", "x"),
                ),
                ("GCM_EDIT_CACHE in /proc", "/proc/gcm-cache", None),
            )
        ),
    ]


def hub() -> list[Case]:
    return [
        Case(
            "hub",
            "--push-to-hub without a token",
            export("--push-to-hub", "me/x", "--out", "{S}/work/hub1"),
            says="needs a Hugging Face token",
        ),
        Case(
            "hub",
            "--push-to-hub without a network",
            export("--push-to-hub", "me/x", "--out", "{S}/work/hub2"),
            env={"HF_TOKEN": "hf_fake"},
            says="upload it later",
            outs=["{S}/work/hub2"],
        ),
    ]


def concurrency() -> list[Case]:
    def two(sb: Sandbox, case: Case) -> Outcome:
        start = time.perf_counter()
        runs = [sb.start(case.argv, {}) for _ in range(2)]
        outputs = [r.communicate(timeout=900)[0] for r in runs]
        codes = sorted(r.returncode for r in runs)
        text = "\n".join(outputs) + f"\nexit codes {codes}"
        return Outcome(0 if codes == [0, 2] else 1, text, time.perf_counter() - start)

    return [
        Case(
            "concurrent",
            "two exports to one --out: one wins, one refused",
            export("--out", "{S}/work/both"),
            expect=0,
            outs=["{S}/work/both"],
            act=two,
            says="being written by another gcm-edit run",
        ),
    ]


def full_disk() -> list[Case]:
    def mount(path: Path, size: str) -> None:
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True
        )

    return [
        Case(
            "disk",
            "--out on a full disk",
            export("--out", "{S}/full/out"),
            says="no space left",
            prepare=lambda sb: mount(sb.root / "full", "200k"),
        ),
        Case(
            "disk",
            "cache on a full disk",
            export("--out", "{S}/work/fc"),
            expect=0,
            says="could not store",
            outs=["{S}/work/fc", "{S}/fullc"],  # the cache, there
            env={"GCM_EDIT_CACHE": "{S}/fullc"},
            prepare=lambda sb: mount(sb.root / "fullc", "64k"),
        ),
    ]


def unmount(sb: Sandbox) -> None:
    for name in ("full", "fullc"):
        subprocess.run(["umount", str(sb.root / name)], capture_output=True)


def prepare_sandbox(sb: Sandbox) -> None:
    """The tiny model (also under a path with spaces and ümlauts), a copied .gguf model, the
    verse recipe judged by the double, a copy with data files, and a reference export that
    tampered runs must reproduce."""
    save_tiny_model_dir(sb.inputs / "tiny")
    shutil.copytree(sb.inputs / "tiny", sb.inputs / "mödel dir")
    from gcm_edit.inputs.default_model import GGUF_FILE, gguf_location

    write(sb.inputs / "gg" / "m.gguf", (gguf_location() / GGUF_FILE).read_bytes())
    judged = {**verse(), "judge": BENCH_JUDGE}
    write(Path(sb.expand([CONTRAST_RECIPE])[0]), yaml.safe_dump(judged))
    data = sb.inputs / "rr" / "data"
    write(data / "v.jsonl", jsonl(judged["validation"]))
    write(data / "h.jsonl", jsonl(judged["heldout"]))
    recipe = {**judged, "validation": {"file": "data/v.jsonl"}, "heldout": {"file": "data/h.jsonl"}}
    write(sb.inputs / "rr" / "r.yaml", yaml.safe_dump(recipe))
    done = sb.run(export("--out", "{S}/in/ref-export"), {})
    if done.rc != 0:
        raise SystemExit(f"the reference export failed:\n{done.output}")
    REFERENCE_ENTRIES[:] = sorted(p.name for p in run_folder(sb).iterdir())
