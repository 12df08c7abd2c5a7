"""What holds the memory at each stage's peak: the live tensors, on the default model, from
torch's own memory profiler (docs/results.md, "Memory per stage").

Each stage runs once under `torch.profiler` (profile_memory, record_shapes, with_stack). The
profiler records every allocation and free with the operator that made it, and its memory
profile puts each tensor in a category (parameter, activation, temporary, gradient, input,
autograd detail). Replaying the allocations finds the moment the stage's own live bytes peak
(what existed before the stage, such as the weights, is not counted); the table lists the
tensors live then, grouped by category, the operator that allocated them and the module they
ran in (every layer's MLP activations are one row), largest group first. Workloads are one
batch each, at the default job's sizes (random token ids: the sizes, not the words, set the
memory): scoring 8 pairs of a 40-token prompt and two 96-token answers, with and without
activation checkpointing; two distilled-edit steps of 4 answers; judging 32 answers
(perplexity, then relevance); generating 96 tokens for 32 prompts.

    .venv/bin/python bench/live_tensors.py              # every stage, a few minutes
    .venv/bin/python bench/live_tensors.py --stages judging --top 5
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

PROMPT, ANSWER, BATCH, TOP = 40, 96, 8, 8


def _allocated_by(event) -> tuple[str, str]:
    """The outermost aten operator above an allocation, and the innermost module it ran in
    (its class: "Linear", "LlamaMLP"; the layer's number is dropped so layers add up)."""
    op, module, node = "?", "?", event.parent
    while node is not None:
        if node.name.startswith("aten::"):
            op = node.name
        elif node.name.startswith("nn.Module: ") and module == "?":
            module = node.name.removeprefix("nn.Module: ").rsplit("_", 1)[0]
        node = node.parent
    return op, module


def live_at_peak(prof, categorise: bool) -> tuple[float, list[dict]]:
    """Replay the profile's allocations: the stage's peak live bytes (GB) and what was live
    then, grouped by category, allocating operator and module, largest group first. The
    categories come from the profiler's data-flow analysis, which grows too slow for the
    hundred thousand operators of a generation (there, under no_grad, there is nothing
    saved for a backward pass to tell apart)."""
    from torch._C._profiler import _EventType
    from torch.profiler._memory_profiler import MemoryProfile, OpTree, TensorKey

    result = prof.profiler.kineto_results
    memory = MemoryProfile(result) if categorise else None
    tree = memory._op_tree if memory else OpTree(result)
    allocations = [e for e in tree.sorted_nodes if e.typed[0] == _EventType.Allocation]

    def replay(until: int) -> tuple[int, int, dict[int, object]]:
        """Live bytes after each allocation event up to `until`: the peak, where it was, and
        what was live then (allocations made before the stage have no entry: not counted).
        Run twice, to the end and then to the peak, rather than copying the live set at
        every new high (quadratic over a generation's allocations)."""
        live: dict[int, object] = {}
        total = peak = at = 0
        for i, event in enumerate(allocations[:until]):
            fields = event.typed[1]
            if fields.alloc_size > 0:
                live[fields.ptr] = event
                total += fields.alloc_size
                if total > peak:
                    peak, at = total, i + 1
            elif fields.ptr in live:
                total -= live.pop(fields.ptr).typed[1].alloc_size
        return peak, at, live

    peak, at, _ = replay(len(allocations))
    groups: dict[tuple[str, str, str], list[int]] = {}
    for event in replay(at)[2].values():
        fields = event.typed[1]
        key = TensorKey.from_allocation(fields)
        category = memory._categories.get(key, 0) if memory and key is not None else None
        name = category.name.lower() if category else "unknown" if memory else "–"
        groups.setdefault((name, *_allocated_by(event)), []).append(fields.alloc_size)
    rows = [
        {
            "category": c,
            "op": o,
            "module": m,
            "mb": sum(v) / 1e6,
            "n": len(v),
            "largest_mb": max(v) / 1e6,
        }
        for (c, o, m), v in groups.items()
    ]
    return peak / 1e9, sorted(rows, key=lambda r: -r["mb"])


def workloads(model, tokenizer) -> dict[str, Callable[[], object]]:
    """Each stage's work, one batch at the default job's sizes."""
    import synthetic
    import torch

    from gcm_edit.evaluation.fluency import perplexities
    from gcm_edit.evaluation.relevance import relevance_pmi
    from gcm_edit.model.generation import Decoding, generate
    from gcm_edit.model.heads import HeadGeometry
    from gcm_edit.scoring.methods import score_heads
    from gcm_edit.scoring.runtime import ScoringRuntime
    from gcm_edit.steering.distill import learn_edit

    ids = synthetic.token_source(tokenizer.vocab_size, 0)
    g = torch.Generator().manual_seed(0)
    geometry = HeadGeometry.of(model.config)
    pairs = synthetic.random_pairs(ids, BATCH, PROMPT, ANSWER)
    deltas = torch.randn(geometry.n_layers, geometry.n_heads, geometry.head_dim, generator=g)
    examples = synthetic.teacher_answers(ids, synthetic.ANSWERS_PER_STEP, PROMPT, ANSWER)
    heads = synthetic.spread_heads(geometry.n_layers, geometry.n_heads)  # 14 of 270
    rows, cols = [h[0] for h in heads], [h[1] for h in heads]
    goal = synthetic.edit_objective(2)
    texts = tokenizer.batch_decode([ids(ANSWER) for _ in range(32)])
    questions = [f"question {i}?" for i in range(32)]

    def scoring(checkpointing: bool) -> Callable[[], object]:
        runtime = ScoringRuntime(batch_size=BATCH, activation_checkpointing=checkpointing)
        return lambda: score_heads(model, pairs, deltas, 0, "attribution", runtime)

    return {
        "scoring": scoring(False),
        "scoring, recomputed": scoring(True),
        "distilled edit": lambda: learn_edit(
            model,
            tokenizer,
            examples,
            heads,
            0.1 * deltas[rows, cols],
            torch.ones(len(heads)),
            goal,
            synthetic.ANSWERS_PER_STEP,
        ),
        "judging": lambda: (
            perplexities(model, tokenizer, texts, 32),
            relevance_pmi(model, tokenizer, questions, texts, 32),
        ),
        "generation": lambda: generate(
            model, tokenizer, [ids(PROMPT) for _ in range(32)], Decoding(max_new_tokens=ANSWER), 32
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", default=None, help="comma-separated; default: all")
    parser.add_argument("--top", type=int, default=TOP)
    args = parser.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gcm_edit.console import quiet_libraries
    from gcm_edit.inputs.default_model import default_model_dir
    from gcm_edit.tables import Column, ResultTable, print_tables

    quiet_libraries()
    model = AutoModelForCausalLM.from_pretrained(default_model_dir(), dtype=torch.float32).eval()
    model.requires_grad_(False)
    tokenizer = AutoTokenizer.from_pretrained(default_model_dir())
    work = workloads(model, tokenizer)
    rows = []
    for stage in args.stages.split(",") if args.stages else work:
        with profile(
            activities=[ProfilerActivity.CPU],
            profile_memory=True,
            record_shapes=True,
            with_stack=True,
        ) as prof:
            work[stage]()
        peak, groups = live_at_peak(prof, categorise=stage != "generation")
        rows += [{"stage": stage, "peak_gb": peak, **g} for g in groups[: args.top]]
        print(f"{stage}: {peak:.2f} GB live at the peak", flush=True)
    columns = [
        Column("stage", lambda r: r["stage"]),
        Column("live at peak GB", lambda r: r["peak_gb"], ".2f"),
        Column("category", lambda r: r["category"]),
        Column("allocated by", lambda r: r["op"]),
        Column("in module", lambda r: r["module"]),
        Column("tensors", lambda r: r["n"]),
        Column("MB", lambda r: r["mb"], ".0f"),
        Column("largest MB", lambda r: r["largest_mb"], ".1f"),
    ]
    title = "what is live at each stage's peak, largest groups first (default model)"
    table = ResultTable(title, columns, rows)
    print_tables(table)
    print(table.markdown())


if __name__ == "__main__":
    main()
