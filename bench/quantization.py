"""Does the concept survive the GGUF quantizations people deploy? One export, converted to each
type by llama.cpp's converter, judged on the held-out questions in llama.cpp (exact settings)
against the export itself in transformers.

    .venv/bin/python bench/quantization.py [EXPORT] [--types f32,f16,bf16,q8_0] [--n-questions N]

EXPORT defaults to what `make export` writes. Each type gets a folder beside EXPORT's files
under --work (weights linked, model.gguf converted), `gcm-edit verify --runtime llama.cpp`'s
check and `gcm-edit eval --runtime llama.cpp`'s judging; answers are cached per file hash, so
a re-run only measures what is new. Cold, about 5 minutes per type on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

EXPORT = Path("checkpoints/smollm2-135m-instruct-verse")
KEEP = ("gcm_edit.json", "gcm_edit_plan.json", "gcm_edit_plan.safetensors", "config.json")


def staged(export: Path, work: Path, outtype: str) -> Path:
    """A copy of `export` (weights and tokenizer linked) with its model.gguf of `outtype`."""
    from gcm_edit.checkpoint.gguf import convert_to_gguf

    folder = work / outtype
    folder.mkdir(parents=True, exist_ok=True)
    for path in export.iterdir():
        link = folder / path.name
        if path.name != "model.gguf" and not link.exists():
            link.symlink_to(path.resolve())
    if not (folder / "model.gguf").is_file():
        convert_to_gguf(export, folder / "model.gguf", outtype)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, nargs="?", default=EXPORT)
    parser.add_argument("--types", default="f32,f16,bf16,q8_0")
    parser.add_argument("--n-questions", type=int, default=None)
    parser.add_argument("--work", type=Path, default=Path("bench-gguf"))
    args = parser.parse_args()

    from gcm_edit.checkpoint.manifest import Manifest
    from gcm_edit.checkpoint.verify import VERIFY_PROMPTS, verify_gguf
    from gcm_edit.commands.evaluate import evaluate_model
    from gcm_edit.commands.settings import EvalSettings
    from gcm_edit.console import quiet_libraries
    from gcm_edit.errors import GcmEditError
    from gcm_edit.evaluation.answers import Evaluation
    from gcm_edit.evaluation.capability import Capability
    from gcm_edit.inputs.loading import load_model, load_tokenizer, resolve_model
    from gcm_edit.inputs.prompts import bare_prompts
    from gcm_edit.steering.plan import SteeringPlan
    from gcm_edit.tables import Column, ResultTable, print_tables

    quiet_libraries()
    if not (args.export / "gcm_edit.json").is_file():
        raise SystemExit(f"{args.export} is not an export: run `make export` (or pass one)")
    manifest = Manifest.read(args.export)
    base = load_model(resolve_model(manifest.base_model.locate()))
    plan = SteeringPlan.load(args.export)
    questions = [s.question for s in manifest.samples[:VERIFY_PROMPTS]]
    prompts = bare_prompts(load_tokenizer(resolve_model(str(args.export))), questions)
    common = {"n_questions": args.n_questions, "samples": 0}

    rows = []
    start = time.perf_counter()
    report = evaluate_model(EvalSettings(model=str(args.export), **common))
    rows.append(("transformers (export)", report, None, time.perf_counter() - start))
    for outtype in args.types.split(","):
        folder = staged(args.export, args.work, outtype)
        try:
            check = verify_gguf(folder / "model.gguf", outtype, base, plan, prompts)
        except GcmEditError as exc:  # a failed check is a finding: report it, judge anyway
            check = str(exc)
        start = time.perf_counter()
        report = evaluate_model(EvalSettings(model=str(folder), runtime="llama.cpp", **common))
        rows.append((f"llama.cpp {outtype}", report, check, time.perf_counter() - start))

    def evaluation(row) -> Evaluation:
        return row[1].metrics["evaluated"]

    def verified(row) -> str:
        check = row[2]
        if check is None:
            return "(reference)"
        if isinstance(check, str):
            return check
        return f"{check.max_abs_logprob_diff:.1e} / {check.steering_effect:.2f}"

    def same_answers(row) -> str:
        pairs = zip(row[1].answers, rows[0][1].answers, strict=True)
        return f"{sum(a['answer'] == b['answer'] for a, b in pairs)}/{len(row[1].answers)}"

    columns = [
        Column("runtime", lambda r: r[0]),
        Column("success", lambda r: evaluation(r).success),
        Column("concept", lambda r: evaluation(r).concept, "short"),
        Column("fluent", lambda r: evaluation(r).fluent, "short"),
        Column("relevant", lambda r: evaluation(r).relevant, "short"),
        Column("factual answered", lambda r: Capability(**r[1]["capability"]).steered, "short"),
        Column("answers = transformers'", same_answers),
        Column("max |Δlog p| / effect", verified),
        Column("s", lambda r: r[3], ".0f"),
    ]
    title = (
        f"{manifest.base_model.name} '{manifest.recipe.name}' export, held-out "
        f"({evaluation(rows[0]).n} questions): transformers vs its GGUFs in llama.cpp"
    )
    print_tables(ResultTable(title, columns, rows))


if __name__ == "__main__":
    main()
