"""The input cases of bench/hostile.py: recipes, models and outputs of `gcm-edit export`
(hostile_options.py has the options, hostile_runs.py the cases that run work). `{S}` is the
sandbox folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from hostile_kit import MODEL_MISSING, NO_MODEL, TINY, Case, Sandbox, export, jsonl, verse, write

from gcm_edit.model.tiny import write_tiny_gguf


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
            write(sb.root / folder / "recipe.yaml", yaml.safe_dump({**verse(), **fields}))

    argv = ["export", "--concept", f"{{S}}/{folder}/recipe.yaml", *NO_MODEL]
    return Case("recipe", name, argv, says=says, prepare=prepare)


def sparse(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(size)


def recipes() -> list[Case]:
    return [*recipe_texts(), *data_files(), *recipe_paths()]


def recipe_texts() -> list[Case]:
    """Recipes whose own text is wrong (or names data that is)."""
    file = {"file": "q.jsonl"}
    recipe = verse()
    cases = [
        recipe_case("recipe not UTF-8", "not UTF-8", text=b"name: caf\xe9\n"),
        recipe_case("recipe binary", "", text=b"\x00\x01\x02\xff" * 64),
        recipe_case("recipe empty", "expected a mapping", text=""),
        recipe_case("recipe a list", "expected a mapping", text="- a\n- b\n"),
        recipe_case(
            "recipe without heldout",
            "field 'heldout'",
            text=yaml.safe_dump({k: v for k, v in recipe.items() if k != "heldout"}),
        ),
        recipe_case("recipe unknown field", "field 'colour'", colour="blue"),
        recipe_case("recipe unknown judge", "unknown judge 'sonnet'; known judges", judge="sonnet"),
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
        recipe_case("validation = held-out: warned", MODEL_MISSING, validation=recipe["heldout"]),
    ]
    cases[-1].check = lambda sb, o: (
        "" if "are also validation questions" in o.output else "no warning"
    )
    return cases


def data_files() -> list[Case]:
    """Recipes whose validation questions are in a hostile data file."""
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
    cases = [
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
    return [*cases, folder_data, huge]


def recipe_paths() -> list[Case]:
    """--concept naming no recipe, or a file too large to be one."""
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
    return [big_recipe, directory, unknown]


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
