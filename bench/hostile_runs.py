"""The cases of bench/hostile.py that run work or break it midway: interruptions, cache
tampering, hostile folders for verify and eval, sweep and calibrate, the hub without a
network, concurrent exports, full disks; and the sandbox they share (a reference export)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import yaml
from hostile import Case, Outcome, Sandbox, interrupted
from hostile_cases import NO_MODEL, TINY, VERSE, export, jsonl, write

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


def verify_eval() -> list[Case]:
    def tamper_weights(sb: Sandbox) -> None:
        import torch
        from safetensors.torch import load_file, save_file

        target = sb.inputs / "tampered"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(sb.inputs / "ref-export", target)
        weights = load_file(str(target / "model.safetensors"))
        name = next(n for n in weights if n.endswith("o_proj.weight"))
        weights[name] = weights[name] + 0.01 * torch.ones_like(weights[name])
        save_file(weights, str(target / "model.safetensors"), metadata={"format": "pt"})

    def garbage_manifest(sb: Sandbox) -> None:
        write(sb.inputs / "garbage" / "gcm_edit.json", "{oops")

    def missing_base(sb: Sandbox) -> None:
        target = sb.inputs / "lost-base"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(sb.inputs / "ref-export", target)
        manifest = json.loads((target / "gcm_edit.json").read_text())
        manifest["base_model"].update(source="/nowhere/model", name="/nowhere/model")
        (target / "gcm_edit.json").write_text(json.dumps(manifest))

    def mkdir(name: str):
        return lambda sb: (sb.root / name).mkdir(parents=True, exist_ok=True)

    two = ["--n-questions", "2"]
    ref = "{S}/in/ref-export"
    table = [  # (case, command line, what the one line says, how to prepare, exit)
        ("verify a missing folder", ["verify", "{S}/in/nothing"], "", None, 2),
        ("verify an empty folder", ["verify", "{S}/in/empty"], "", mkdir("in/empty"), 2),
        ("verify a garbled gcm_edit.json", ["verify", "{S}/in/garbage"], "", garbage_manifest, 2),
        (
            "verify tampered weights: fails",
            ["verify", "{S}/in/tampered"],
            "verification failed",
            tamper_weights,
            2,
        ),
        ("verify a file", ["verify", "{S}/in/fake.gguf"], "", None, 2),
        (
            "verify --runtime llama.cpp without model.gguf",
            ["verify", ref, "--runtime", "llama.cpp"],
            "has no model.gguf",
            None,
            2,
        ),
        (
            "verify, base model gone",
            ["verify", "{S}/in/lost-base"],
            "base model not found",
            missing_base,
            2,
        ),
        ("verify the reference export", ["verify", ref], "", None, 0),
        ("eval an empty folder", ["eval", "{S}/in/empty", *two], "", mkdir("in/empty"), 2),
        ("eval a file", ["eval", "{S}/in/fake.gguf", *two], "", None, 2),
        (
            "eval --out an existing folder",
            ["eval", ref, "--out", "{S}/work/evdir", *two],
            "is a folder",
            mkdir("work/evdir"),
            2,
        ),
        (
            "eval --runtime llama.cpp without model.gguf",
            ["eval", ref, "--runtime", "llama.cpp", *two],
            "",
            None,
            2,
        ),
        ("eval a garbled gcm_edit.json", ["eval", "{S}/in/garbage", *two], "", garbage_manifest, 2),
    ]
    return [
        Case("verify", name, argv, expect=expect, says=says, prepare=prepare)
        for name, argv, says, prepare, expect in table
    ]


def sweep_calibrate() -> list[Case]:
    fast = ["--n-train", "4", "--n-validation", "2", "--max-new-tokens", "8", "--batch-size", "3"]
    refused = [  # (case, command line, what the one line says)
        (
            "calibrate --out a recipe data file",
            [
                "calibrate",
                *TINY,
                "--concept",
                "{S}/in/rr/r.yaml",
                "--out",
                "{S}/in/rr/data/v.jsonl",
            ],
            "is a recipe data file",
        ),
        ("calibrate --alphas 1,1", ["calibrate", *NO_MODEL, "--alphas", "1,1"], "1 is given twice"),
        ("sweep --methods bogus", ["sweep", *NO_MODEL, "--methods", "bogus"], "--methods"),
        ("sweep --out .", ["sweep", *TINY, "--out", ".", "--force"], "is the current folder"),
    ]
    calibrate = ["calibrate", *TINY, *fast, "--alphas", "1", "--positions-grid", "response"]
    sweep = ["sweep", *TINY, *fast, *["--methods", "attribution", "--ks", "25", "--alphas", "1"]]
    return [
        *(Case("sweep", name, argv, says=says) for name, argv, says in refused),
        Case(
            "sweep",
            "calibrate on the tiny model",
            [*calibrate, "--out", "{S}/work/cal.csv"],
            expect=0,
            outs=["{S}/work/cal.csv"],
        ),
        Case(
            "sweep",
            "sweep on the tiny model",
            [*sweep, "--rank-by", "effect", "--out", "{S}/work/sweep"],
            expect=0,
            outs=["{S}/work/sweep"],
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
    """The tiny model (also under a path with spaces and ümlauts), a copied .gguf model, a
    recipe with data files, and a reference export that tampered runs must reproduce."""
    from tiny import save_tiny_model_dir

    save_tiny_model_dir(sb.inputs / "tiny")
    shutil.copytree(sb.inputs / "tiny", sb.inputs / "mödel dir")
    from gcm_edit.inputs.default_model import GGUF_FILE, gguf_location

    write(sb.inputs / "gg" / "m.gguf", (gguf_location() / GGUF_FILE).read_bytes())
    data = sb.inputs / "rr" / "data"
    write(data / "v.jsonl", jsonl(VERSE["validation"]))
    write(data / "h.jsonl", jsonl(VERSE["heldout"]))
    recipe = {**VERSE, "validation": {"file": "data/v.jsonl"}, "heldout": {"file": "data/h.jsonl"}}
    write(sb.inputs / "rr" / "r.yaml", yaml.safe_dump(recipe))
    done = sb.run(export("--out", "{S}/in/ref-export"), {})
    if done.rc != 0:
        raise SystemExit(f"the reference export failed:\n{done.output}")
    REFERENCE_ENTRIES[:] = sorted(p.name for p in run_folder(sb).iterdir())


def run_cases() -> list[Case]:
    return [
        *interruptions(),
        *cache(),
        *verify_eval(),
        *sweep_calibrate(),
        *hub(),
        *concurrency(),
        *full_disk(),
    ]
