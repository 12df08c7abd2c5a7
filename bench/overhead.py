"""Zero overhead, measured: generation throughput of the base model, the exported checkpoint,
and the same steering applied at run time through hooks (gcm-edit's own, and the
`steering-vectors` PyPI library's, as an outside peer).

Default model, CPU, greedy, a fixed number of new tokens per sequence; one timed run per cell
after a warm-up. Not a test: `make bench-overhead` (installs steering-vectors with --no-deps:
it pins transformers<5 but only needs module hooks).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from rich.console import Console
from rich.table import Table


def throughput(model, tokenizer, prompts: list[str], new_tokens: int) -> float:
    """Generated tokens per second for one batch (greedy, exactly `new_tokens` each)."""
    tokenizer.padding_side = "left"
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    with torch.no_grad():
        model.generate(**batch, **kwargs)  # warm-up
        start = time.perf_counter()
        out = model.generate(**batch, **kwargs)
        elapsed = time.perf_counter() - start
    return (out.shape[1] - batch["input_ids"].shape[1]) * len(prompts) / elapsed


def throughput_with(model, hooks, tokenizer, prompts: list[str], new_tokens: int) -> float:
    """`throughput` with the run-time hooks of `hooks()` (a context manager) on, if any."""
    if hooks is None:
        return throughput(model, tokenizer, prompts, new_tokens)
    with hooks():
        return throughput(model, tokenizer, prompts, new_tokens)


def throughput_table(title: str, results: dict[str, list[float]], batches: list[int]) -> Table:
    """Tokens per second of each configuration and batch size, and their ratio to the base."""
    table = Table(title=title)
    table.add_column("model")
    for size in batches:
        table.add_column(f"batch {size} tok/s", justify="right")
        table.add_column("× base", justify="right")
    base = results["base model"]
    for name, values in results.items():
        cells = []
        for value, reference_value in zip(values, base, strict=True):
            cells += [f"{value:.1f}", f"{value / reference_value:.2f}"]
        table.add_row(name, *cells)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--batches", default="1,8")
    args = parser.parse_args()

    from steering_vectors import SteeringVector
    from transformers import AutoModelForCausalLM

    from gcm_edit.checkpoint.bake import bake
    from gcm_edit.commands.export_settings import ExportSettings
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.console import quiet_libraries
    from gcm_edit.inputs.prompts import bare_prompts
    from gcm_edit.model.heads import o_proj_modules

    quiet_libraries()
    s = ExportSettings(edit="mean-diff", accelerator="cpu")  # the default α·δ plan
    run = SteeringRun(s)
    model, tokenizer = run.model, run.tokenizer
    plan = run.plan(s.positions, s.alpha, s.k_percent, s.method, s.edit.intervention)
    questions = run.recipe.heldout
    texts = [tokenizer.decode(ids) for ids in bare_prompts(tokenizer, questions)]

    # The same additive steering as a residual-stream patch: W_O·a on each self_attn output.
    add = plan.add_tensor()
    vector = SteeringVector(
        {
            layer: (proj.weight @ add[layer]).detach()
            for layer, proj in enumerate(o_proj_modules(model))
            if add[layer].any()
        },
        layer_type="self_attn",
    )
    with tempfile.TemporaryDirectory() as tmp:
        bake(model, plan).save_pretrained(tmp)
        exported = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32).eval()

    ids = tokenizer(texts[:2], return_tensors="pt", padding=True)
    with torch.no_grad():
        reference = exported(**ids).logits
        with vector.apply(model):
            peer_diff = float((model(**ids).logits - reference).abs().max())
        with plan.apply(model):
            ours_diff = float((model(**ids).logits - reference).abs().max())

    configs = {
        "base model": (model, None),
        "exported checkpoint (baked)": (exported, None),
        "gcm-edit hooks (run time)": (model, lambda: plan.apply(model)),
        "steering-vectors hooks (run time)": (model, lambda: vector.apply(model)),
    }
    batches = [int(b) for b in args.batches.split(",")]
    results = {
        name: [
            throughput_with(target, hooks, tokenizer, (texts * size)[:size], args.new_tokens)
            for size in batches
        ]
        for name, (target, hooks) in configs.items()
    }

    title = (
        f"{run.model_ref.name}, {len(plan.steered_heads)} steered heads, greedy, "
        f"{args.new_tokens} new tokens, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    )
    Console().print(throughput_table(title, results, batches))
    print(
        f"same function: max |Δlogit| vs the export: gcm-edit hooks {ours_diff:.1e}, "
        f"steering-vectors {peer_diff:.1e}"
    )


if __name__ == "__main__":
    main()
