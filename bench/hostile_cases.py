"""The cases of bench/hostile.py, by group: recipes, models, options, outputs, interruptions,
cache, verify/eval, sweep/calibrate, hub, concurrency, disk. `{S}` is the sandbox folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from hostile import ROOT, Case, Outcome, Sandbox, interrupted

sys.path.insert(0, str(ROOT / "tests"))
from tiny import write_tiny_gguf  # noqa: E402  (the tests' tiny-model builders)


def _verse() -> dict:
    """The built-in verse recipe with its data files read in (a recipe anywhere can hold it)."""
    from gcm_edit.inputs.recipe import load_recipe

    return json.loads(load_recipe("verse").model_dump_json(exclude_defaults=True))


VERSE = _verse()
FAST = ["--n-train", "4", "--n-validation", "4", "--n-heldout", "2", "--max-new-tokens", "8"]
FAST += ["--k", "25", "--batch-size", "3", "--edit", "mean-diff"]
TINY = ["--model", "{S}/in/tiny"]
NO_MODEL = ["--model", "{S}/in/no-such-model"]  # valid inputs then end here, in one line
MODEL_MISSING = "model folder not found"
REFERENCE_ENTRIES: list[str] = []  # the run folder's entries right after the reference export


def export(*argv: str, model: list[str] = TINY, fast: bool = True) -> list[str]:
    return ["export", *model, *(FAST if fast else []), *argv]


def write(path: Path, blob: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob.encode() if isinstance(blob, str) else blob)


def recipe_case(name: str, says: str, data: dict | None = None, text=None, **fields) -> Case:
    """Export with the recipe {S}/in/r/NAME.yaml: the verse recipe with `fields` replaced (or
    `text` as the whole file), beside `data` files; the model does not exist, so a recipe that
    loads ends in the one-line 'model folder not found'."""
    folder = f"in/r-{name}"

    def prepare(sb: Sandbox) -> None:
        for file, blob in (data or {}).items():
            write(sb.root / folder / file, blob)
        if text is not None:
            write(sb.root / folder / "recipe.yaml", text)
        else:
            write(sb.root / folder / "recipe.yaml", yaml.safe_dump({**VERSE, **fields}))

    argv = ["export", "--concept", f"{{S}}/{folder}/recipe.yaml", *NO_MODEL]
    return Case("recipe", name, argv, says=says, prepare=prepare)


def sparse(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(size)


def jsonl(questions: list) -> str:
    return "".join(json.dumps({"question": q}) + "\n" for q in questions)


def recipes() -> list[Case]:
    file = {"file": "q.jsonl"}
    cases = [
        recipe_case("recipe not UTF-8", "not UTF-8", text=b"name: caf\xe9\n"),
        recipe_case("recipe binary", "", text=b"\x00\x01\x02\xff" * 64),
        recipe_case("recipe empty", "expected a mapping", text=""),
        recipe_case("recipe a list", "expected a mapping", text="- a\n- b\n"),
        recipe_case(
            "recipe without heldout",
            "field 'heldout'",
            text=yaml.safe_dump({k: v for k, v in VERSE.items() if k != "heldout"}),
        ),
        recipe_case("recipe unknown field", "field 'colour'", colour="blue"),
        recipe_case(
            "recipe billion laughs",
            "",
            text="a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
            "name: x\ndescription: x\njudge: verse\nvalidation: *d\nheldout: *d\n",
        ),
        recipe_case(
            "inline question of 30k characters", "at most 20000 characters", train=["x" * 30_000]
        ),
        recipe_case("max_new_tokens 10**9", "less than or equal to 32768", max_new_tokens=10**9),
        recipe_case("fluency limit NaN", "field 'fluency", fluency={"max_perplexity": "nan"}),
        recipe_case("data file missing", "file not found", validation={"file": "nope.jsonl"}),
        recipe_case(
            "data path outside, not data",
            "is not .jsonl",
            validation={"file": "../../../../etc/passwd"},
        ),
        recipe_case(
            "data jsonl and csv fine",
            MODEL_MISSING,
            {"q.jsonl": jsonl(["Why is the sky blue?"])},
            validation=file,
        ),
        recipe_case("validation = held-out: warned", MODEL_MISSING, validation=VERSE["heldout"]),
    ]
    data_files = [  # (case, what the one line says, the validation file's name and bytes)
        ("data not UTF-8", "not UTF-8 text", "q.jsonl", b'{"question": "\xff?"}\n'),
        (
            "data line of 30k characters",
            "30,000 characters (at most 20,000)",
            "q.jsonl",
            jsonl(["y" * 30_000]),
        ),
        ("data file empty", "is empty (no rows)", "q.jsonl", ""),
        (
            "data jsonl truncated",
            "line 2: not valid JSON",
            "q.jsonl",
            '{"question": "a?"}\n{"question": "b',
        ),
        ("data jsonl binary", "binary data", "q.jsonl", b'{"question": "a?"}\n\x00\x01\x02'),
        ("data numeric column (jsonl)", "holds a number (42)", "q.jsonl", '{"question": 42}\n'),
        ("data numeric column (csv): text", MODEL_MISSING, "q.csv", "question\n42\n7\n"),
        ("data csv without the column", "has no column 'question'", "q.csv", "text\nWhy?\n"),
        ("data fake parquet", "not a parquet file", "q.parquet", b"PAR1junk"),
        ("data json holds an object", "expected a list of objects", "q.json", '{"question": 1}'),
    ]
    cases += [
        recipe_case(name, says, {file: blob}, validation={"file": file})
        for name, says, file, blob in data_files
    ]
    folder_data = recipe_case(
        "data file is a folder", "is a folder, not a file", validation={"file": "dir.jsonl"}
    )
    base = folder_data.prepare
    folder_data.prepare = lambda sb: (
        base(sb),
        (sb.root / "in/r-data file is a folder/dir.jsonl").mkdir(exist_ok=True),
    )
    huge = recipe_case("data file of 300 MB", "more than 256 MB", validation={"file": "big.jsonl"})
    base_huge = huge.prepare
    huge.prepare = lambda sb: (
        base_huge(sb),
        sparse(sb.root / "in/r-data file of 300 MB/big.jsonl", 300 << 20),
    )
    big_recipe = Case(
        "recipe",
        "recipe of 300 MB",
        ["export", "--concept", "{S}/in/big.yaml", *NO_MODEL],
        says="more than 256 MB",
        prepare=lambda sb: sparse(sb.inputs / "big.yaml", 300 << 20),
    )
    directory = Case(
        "recipe",
        "recipe is a folder",
        ["export", "--concept", "{S}/in/d.yaml"],
        says="recipe file not found",
        prepare=lambda sb: (sb.inputs / "d.yaml").mkdir(exist_ok=True),
    )
    unknown = Case(
        "recipe",
        "unknown concept",
        ["export", "--concept", "nosuch"],
        says="unknown concept 'nosuch'",
    )
    overlap = next(c for c in cases if c.name.startswith("validation = held-out"))
    overlap.check = lambda sb, o: (
        "" if "are also validation questions" in o.output else "no warning"
    )
    return [*cases, folder_data, huge, big_recipe, directory, unknown]


def model_folder(files: dict[str, bytes | str]):
    """Prepare {S}/in/m-<n>: the tiny model's files named in `files` (None: copied) or given."""

    def prepare(sb: Sandbox, name: str) -> None:
        folder = sb.inputs / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for file, blob in files.items():
            if blob is None:
                shutil.copy(sb.inputs / "tiny" / file, folder / file)
            else:
                write(folder / file, blob)

    return prepare


def model_case(name: str, says: str, files=None, model: str | None = None, expect: int = 2) -> Case:
    folder = "m-" + "".join(c if c.isalnum() else "-" for c in name)
    prep = model_folder(files) if files is not None else None
    out = "{S}/work/out-" + folder
    argv = export("--out", out, model=["--model", model or f"{{S}}/in/{folder}"])
    return Case(
        "model",
        name,
        argv,
        expect=expect,
        says=says,
        outs=[out] if expect == 0 else [],
        prepare=(lambda sb: prep(sb, folder)) if prep else None,
    )


def models() -> list[Case]:
    gpt2 = json.dumps({"model_type": "gpt2", "n_layer": 1, "n_head": 2, "n_embd": 8})
    tokenizer = {"tokenizer.json": None, "tokenizer_config.json": None}
    cases = [
        model_case("model missing", MODEL_MISSING, model="{S}/in/nothing-here"),
        model_case("folder without config.json", "no config.json", {"readme.txt": "hi"}),
        model_case("folder with only config.json", "no usable tokenizer", {"config.json": None}),
        model_case("config.json garbage", "could not load", {"config.json": "{not json"}),
        model_case(
            "unsupported architecture",
            "architecture 'gpt2' is not supported",
            {"config.json": gpt2},
        ),
        model_case(
            "weights truncated",
            "unreadable weights",
            {"config.json": None, **tokenizer, "model.safetensors": b"\x10\x00" * 8},
        ),
        model_case(
            "pickle weights only",
            "pickle checkpoints are refused",
            {"config.json": None, **tokenizer, "pytorch_model.bin": b"PK\x03\x04junk"},
        ),
        model_case("fake .gguf", "not a GGUF file", model="{S}/in/fake.gguf"),
        model_case("truncated .gguf", "transformers cannot read", model="{S}/in/trunc.gguf"),
        model_case("gguf without tokenizer", "carries no tokenizer", model="{S}/in/no-tok.gguf"),
        model_case("a .bin file as model", "is a file", model="{S}/in/weights.bin"),
        model_case("hub id, no network", "could not load", model="someone/some-model"),
        model_case(
            "model path with spaces and ümlauts", "exported", model="{S}/in/mödel dir", expect=0
        ),
    ]
    cases[7].prepare = lambda sb: write(sb.inputs / "fake.gguf", b"NOPE" + b"\x00" * 60)
    cases[8].prepare = lambda sb: write(sb.inputs / "trunc.gguf", b"GGUF\x03\x00\x00\x00" + b"\x01")
    cases[9].prepare = lambda sb: write_tiny_gguf(sb.inputs / "no-tok.gguf", "llama")
    cases[10].prepare = lambda sb: write(sb.inputs / "weights.bin", b"\x00" * 64)
    return cases


def option_case(name: str, argv: list[str], says: str) -> Case:
    return Case("options", name, ["export", *NO_MODEL, *argv], says=says)


def options() -> list[Case]:
    table = [
        ("budget with --alpha", "--kl-budget 0.5 --alpha 2 --edit mean-diff", "chooses --alpha"),
        ("budget with --k", "--kl-budget 0.5 --k 3 --edit mean-diff", "chooses --k itself"),
        ("--doses with --format full", "--doses 2", "only read with --format adapter"),
        ("--doses with an empty item", "--format adapter --doses 2,2,,2", "empty item"),
        ("--doses repeated", "--format adapter --doses 2,2", "2 is given twice"),
        ("--batch-size 10**23", "--batch-size 99999999999999999999999", "less than or equal"),
        ("--alpha nan", "--alpha nan", "--alpha"),
        ("--alpha inf", "--alpha inf", "--alpha"),
        ("--alpha -1", "--alpha -1", "--alpha"),
        ("--alpha 1e9", "--alpha 1e9", "less than or equal to 100"),
        ("--k 0", "--k 0", "--k"),
        ("--k 101", "--k 101", "--k"),
        ("--k abc", "--k abc", "--k"),
        ("--device tpu", "--device tpu", "--device"),
        ("--device cuda without a GPU", "--device cuda", "--device cuda"),
        ("--method bogus", "--method bogus", "--method"),
        ("distilled with --learn-scales", "--learn-scales", "cannot be combined with --learn"),
        ("--gguf with an adapter", "--gguf q8_0 --format adapter", "--gguf needs --format full"),
        ("--strategy fsdp on export", "--strategy fsdp", "--strategy fsdp"),
        ("--concept twice", "--concept verse --concept verse", "verse is given twice"),
        ("--max-new-tokens 0", "--max-new-tokens 0", "--max-new-tokens"),
        ("--max-new-tokens 10**9", "--max-new-tokens 1000000000", "less than or equal"),
        ("--n-heldout 0", "--n-heldout 0", "--n-heldout"),
        ("--seed -1", "--seed -1", "--seed"),
        ("--kl-budget 0", "--kl-budget 0", "--kl-budget"),
        ("--kl-budget nan", "--kl-budget nan", "--kl-budget"),
        ("--edit-rank 65", "--edit-rank 65", "--edit-rank"),
        ("--auto-alphas without auto", "--auto-alphas 1,2", "only read with --alpha auto"),
        ("--edit-steps with mean-diff", "--edit mean-diff --edit-steps 5", "--edit distilled"),
        ("--scale-steps without learning", "--scale-steps 3", "only read with --learn-scales"),
        ("--prompt-format bogus", "--prompt-format bogus", "--prompt-format"),
        ("unknown option", "--bogus 1", "No such option"),
        ("--generation-batch 0", "--generation-batch 0", "--generation-batch"),
        ("--auto-alphas repeated", "--alpha auto --auto-alphas 1,1", "1 is given twice"),
        ("--devices 0", "--devices 0", "--devices"),
        ("--format bogus", "--format bogus", "--format"),
        ("--edit bogus", "--edit bogus", "--edit"),
        ("--budget-alphas without mean-diff", "--budget-alphas 1,2", "only read with --kl-bud"),
    ]
    return [option_case(name, argv.split(), says) for name, argv, says in table]


def reset(name: str, folder: bool):
    """Prepare {S}/work/NAME afresh: a folder holding old.txt, or a file."""

    def prepare(sb: Sandbox) -> None:
        path = sb.work / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        write(path / "old.txt" if folder else path, "keep me")

    return prepare


def outputs() -> list[Case]:
    gguf = ["--model", "{S}/in/gg/m.gguf"]
    recipe = ["--concept", "{S}/in/rr/r.yaml"]
    refused = [  # (case, --out, more options, what the one line says)
        ("--out . (the current folder)", ".", ["--force"], "is the current folder"),
        ("--out the home folder", "{S}/home", ["--force"], "is your home folder"),
        ("--out the cache", "{S}/cache", ["--force"], "is the gcm-edit cache"),
        ("--out inside the model", "{S}/in/tiny/x", ["--force"], "is inside the model's"),
        ("--out holding the model", "{S}/in", ["--force"], "holds the model's folder"),
        ("--out the folder of the .gguf model", "{S}/in/gg", ["--force"], "holds the model file"),
        ("--out the .gguf model itself", "{S}/in/gg/m.gguf", ["--force"], "is the model file"),
        ("--out the recipe file", "{S}/in/rr/r.yaml", [*recipe, "--force"], "is the recipe's"),
        (
            "--out the recipe's data folder",
            "{S}/in/rr/data",
            [*recipe, "--force"],
            "holds a recipe",
        ),
        ("--out an existing file", "{S}/work/file", [], "already exists"),
        ("--out below a file", "{S}/work/file/sub/out", [], "is a file, not a folder"),
        ("--out in /proc", "/proc/gcm-edit-out", [], "cannot write"),
        (
            "--out into new folders, refused: none made",
            "{S}/work/new/deeper/out",
            ["--gguf", "q8_0", "--format", "adapter"],
            "--gguf needs --format full",
        ),
    ]
    written = [  # (case, --out, how to prepare it)
        ("--out '~/x' is the home folder's x", "~/x", None),
        ("--force over a file", "{S}/work/file2", reset("file2", folder=False)),
        ("--force over a folder", "{S}/work/dir2", reset("dir2", folder=True)),
        ("--out with spaces and non-ASCII", "{S}/work/out dir/ünï cödé", None),
    ]
    cases = [
        Case(
            "output",
            name,
            export("--out", out, *more, model=gguf if "gguf" in name else TINY),
            says=says,
            prepare=reset("file", folder=False) if "file" in out else None,
        )
        for name, out, more, says in refused
    ]
    cases += [
        Case(
            "output",
            name,
            export("--out", out, "--force"),
            expect=0,
            outs=["{S}/home/x" if out == "~/x" else out],
            prepare=prepare,
        )
        for name, out, prepare in written
    ]
    cases[9].check = lambda sb, o: "" if (sb.work / "file").read_text() == "keep me" else "wrong"
    cases[13].check = lambda sb, o: "wrong: a folder named ~" if (sb.work / "~").exists() else ""
    return cases


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
        Case(
            "cache",
            "GCM_EDIT_CACHE is a file",
            export("--out", "{S}/work/cf"),
            says="cannot use the cache folder",
            env={"GCM_EDIT_CACHE": "{S}/in/cache-file"},
            prepare=lambda sb: write(sb.inputs / "cache-file", "x"),
        ),
        Case(
            "cache",
            "GCM_EDIT_CACHE in /proc",
            export("--out", "{S}/work/cp"),
            says="cannot use the cache folder",
            env={"GCM_EDIT_CACHE": "/proc/gcm-cache"},
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

    v = "verify"
    return [
        Case(v, "verify a missing folder", ["verify", "{S}/in/nothing"]),
        Case(
            v,
            "verify an empty folder",
            ["verify", "{S}/in/empty"],
            prepare=lambda sb: (sb.inputs / "empty").mkdir(exist_ok=True),
        ),
        Case(
            v,
            "verify a garbled gcm_edit.json",
            ["verify", "{S}/in/garbage"],
            prepare=garbage_manifest,
        ),
        Case(
            v,
            "verify tampered weights: fails",
            ["verify", "{S}/in/tampered"],
            prepare=tamper_weights,
            says="verification failed",
        ),
        Case(v, "verify a file", ["verify", "{S}/in/fake.gguf"]),
        Case(
            v,
            "verify --runtime llama.cpp without model.gguf",
            ["verify", "{S}/in/ref-export", "--runtime", "llama.cpp"],
            says="has no model.gguf",
        ),
        Case(
            v,
            "verify, base model gone",
            ["verify", "{S}/in/lost-base"],
            prepare=missing_base,
            says="base model not found",
        ),
        Case(v, "verify the reference export", ["verify", "{S}/in/ref-export"], expect=0),
        Case(v, "eval an empty folder", ["eval", "{S}/in/empty", "--n-questions", "2"]),
        Case(v, "eval a file", ["eval", "{S}/in/fake.gguf", "--n-questions", "2"]),
        Case(
            v,
            "eval --out an existing folder",
            ["eval", "{S}/in/ref-export", "--out", "{S}/work/evdir", "--n-questions", "2"],
            says="is a folder",
            prepare=lambda sb: (sb.work / "evdir").mkdir(exist_ok=True),
        ),
        Case(
            v,
            "eval --runtime llama.cpp without model.gguf",
            ["eval", "{S}/in/ref-export", "--runtime", "llama.cpp", "--n-questions", "2"],
        ),
        Case(v, "eval a garbled gcm_edit.json", ["eval", "{S}/in/garbage", "--n-questions", "2"]),
    ]


def sweep_calibrate() -> list[Case]:
    fast = ["--n-train", "4", "--n-validation", "2", "--max-new-tokens", "8", "--batch-size", "3"]
    return [
        Case(
            "sweep",
            "calibrate --out a recipe data file",
            [
                "calibrate",
                *TINY,
                "--concept",
                "{S}/in/rr/r.yaml",
                "--out",
                "{S}/in/rr/data/v.jsonl",
            ],
            says="is a recipe data file",
        ),
        Case(
            "sweep",
            "calibrate --alphas 1,1",
            ["calibrate", *NO_MODEL, "--alphas", "1,1"],
            says="1 is given twice",
        ),
        Case(
            "sweep",
            "sweep --methods bogus",
            ["sweep", *NO_MODEL, "--methods", "bogus"],
            says="--methods",
        ),
        Case(
            "sweep",
            "sweep --out .",
            ["sweep", *TINY, "--out", ".", "--force"],
            says="is the current folder",
        ),
        Case(
            "sweep",
            "calibrate on the tiny model",
            [
                "calibrate",
                *TINY,
                *fast,
                "--alphas",
                "1",
                "--positions-grid",
                "response",
                "--out",
                "{S}/work/cal.csv",
            ],
            expect=0,
            outs=["{S}/work/cal.csv"],
        ),
        Case(
            "sweep",
            "sweep on the tiny model",
            [
                "sweep",
                *TINY,
                *fast,
                "--methods",
                "attribution",
                "--ks",
                "25",
                "--alphas",
                "1",
                "--rank-by",
                "effect",
                "--out",
                "{S}/work/sweep",
            ],
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


def cases() -> list[Case]:
    return [
        *recipes(),
        *models(),
        *options(),
        *outputs(),
        *interruptions(),
        *cache(),
        *verify_eval(),
        *sweep_calibrate(),
        *hub(),
        *concurrency(),
        *full_disk(),
    ]
