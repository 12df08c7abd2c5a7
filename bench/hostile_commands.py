"""The cases of bench/hostile.py for the commands other than export: `verify` and `eval` on
hostile folders (and on the reference export that hostile_runs.prepare_sandbox makes), and
`sweep` and `calibrate`, refused and run on the tiny model."""

from __future__ import annotations

import json
import shutil

from hostile_kit import CONTRAST_RECIPE, NO_MODEL, TINY, Case, Sandbox, write


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
    fast += ["--concept", CONTRAST_RECIPE]
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
            [*sweep, "--rankings", "effect", "--out", "{S}/work/sweep"],
            expect=0,
            outs=["{S}/work/sweep"],
        ),
    ]
