"""How scoring and the learned edit grow with the model and the work (docs/results.md, "How
the cost grows with the model").

Randomly initialised Llama configurations are built locally (no downloads): SmolLM2-135M's
and SmolLM2-360M's shapes and Llama-3.2-1B's (128k vocabulary). Random token pairs stand in
for contrastive pairs (the cost does not depend on what the tokens say). Each point runs in
a fresh process and reports wall time and the process's peak RSS for

- scoring: attribution patching (`score_heads`, batches of 8 pairs) on P pairs whose
  responses are T tokens after a 32-token prompt, every layer's activations kept for the
  backward pass (`--no-activation-checkpointing`);
- scoring, recomputed: the same with each layer recomputed in the backward pass (the default,
  `--activation-checkpointing`);
- learned edit: `learn_edit` on P teacher answers of T tokens, 5% of the heads, rank 4,
  S optimiser steps of 4 answers (teacher states included; the KL constraint on 6 neutral
  prompts a step).

    .venv/bin/python bench/scale.py  # make bench-scale (12 min before the recomputed points)
    .venv/bin/python bench/scale.py --sizes 135M --pairs 8 --tokens 64   # one quick point

Prints one table and a fit of time against parameters × tokens, and writes
bench/results/scale.csv. Run it alone: two torch processes on 2 cores halve each other.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

SIZES = {  # name: (hidden, intermediate, layers, heads, kv heads, vocabulary)
    "135M": (576, 1536, 30, 9, 3, 49152),  # SmolLM2-135M
    "360M": (960, 2560, 32, 15, 5, 49152),  # SmolLM2-360M
    "1B": (2048, 8192, 16, 32, 8, 128256),  # Llama-3.2-1B
}
PROMPT_TOKENS = 32
RECOMPUTED = "scoring, recomputed"
SCORING = ("scoring", RECOMPUTED)
STAGES = (*SCORING, "edit")
EDIT_STEPS = 4
RESULTS = Path(__file__).resolve().parent / "results"


def build(size: str):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, inter, layers, heads, kv, vocab = SIZES[size]
    config = LlamaConfig(
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        vocab_size=vocab,
        tie_word_embeddings=True,
        max_position_embeddings=4096,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def point(size: str, stage: str, pairs: int, tokens: int) -> dict:
    """One measurement, in this (fresh) process."""
    import synthetic
    import torch
    from transformers import AutoTokenizer

    from gcm_edit.inputs.default_model import default_model_dir
    from gcm_edit.memory import StagePeaks
    from gcm_edit.model.heads import HeadGeometry
    from gcm_edit.scoring.methods import score_heads
    from gcm_edit.scoring.runtime import ScoringRuntime
    from gcm_edit.steering.distill import learn_edit

    model = build(size)
    params = sum(p.numel() for p in model.parameters())
    geometry = HeadGeometry.of(model.config)
    ids = synthetic.token_source(49152, 1)  # the tokenizer's ids: valid in every size
    g = torch.Generator().manual_seed(1)
    deltas = torch.randn(geometry.n_layers, geometry.n_heads, geometry.head_dim, generator=g)
    peaks = StagePeaks()
    start = time.perf_counter()
    peaks.enter()
    if stage in SCORING:
        work = synthetic.random_pairs(ids, pairs, PROMPT_TOKENS, tokens)
        runtime = ScoringRuntime(batch_size=8, activation_checkpointing=stage == RECOMPUTED)
        score_heads(model, work, deltas, 0, "attribution", runtime)
    else:
        tokenizer = AutoTokenizer.from_pretrained(default_model_dir())
        examples = synthetic.teacher_answers(ids, pairs, PROMPT_TOKENS, tokens)
        heads = synthetic.spread_heads(geometry.n_layers, geometry.n_heads)
        init = 0.1 * torch.randn(len(heads), geometry.head_dim, generator=g)
        goal = synthetic.edit_objective(EDIT_STEPS)
        batch = synthetic.ANSWERS_PER_STEP
        learn_edit(model, tokenizer, examples, heads, init, torch.ones(len(heads)), goal, batch)
    seconds = time.perf_counter() - start
    peaks.leave(stage)
    return {
        "size": size,
        "params_m": round(params / 1e6, 1),
        "stage": stage,
        "pairs": pairs,
        "tokens": tokens,
        "seconds": round(seconds, 2),
        "peak_rss_gb": peaks.peaks_gb.get(stage),
        "weights_gb": round(params * 4 / 1e9, 2),
    }


def plan(sizes: list[str], pairs: list[int], tokens: list[int]) -> list[tuple[str, str, int, int]]:
    """Every size at the smallest pairs/tokens; pairs and tokens swept on the smallest size."""
    base_p, base_t, small = min(pairs), min(tokens), sizes[0]
    points = [(size, stage, base_p, base_t) for size in sizes for stage in STAGES]
    points += [(small, "scoring", p, base_t) for p in pairs if p != base_p]
    points += [(small, stage, base_p, t) for t in tokens if t != base_t for stage in SCORING]
    points += [(small, "edit", p, base_t) for p in pairs if p != base_p]
    return points


def fit(rows: list[dict], stage: str) -> float | None:
    """Seconds per (billion parameters × thousand tokens), least squares through 0."""
    xs = [
        (r["params_m"] / 1e3) * (r["pairs"] * 2 * (PROMPT_TOKENS + r["tokens"]) / 1e3)
        if stage in SCORING
        else (r["params_m"] / 1e3) * EDIT_STEPS * 4 * 2 * (PROMPT_TOKENS + r["tokens"]) / 1e3
        for r in rows
    ]
    ys = [r["seconds"] for r in rows]
    den = sum(x * x for x in xs)
    return sum(x * y for x, y in zip(xs, ys, strict=True)) / den if den else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--pairs", default="8,32,128")
    parser.add_argument("--tokens", default="64,128,256")
    parser.add_argument("--point", nargs=4, metavar=("SIZE", "STAGE", "PAIRS", "TOKENS"))
    args = parser.parse_args()
    if args.point:
        size, stage, n_pairs, n_tokens = args.point
        print(json.dumps(point(size, stage, int(n_pairs), int(n_tokens))))
        return

    from gcm_edit.tables import Column, ResultTable, print_tables

    sizes = args.sizes.split(",")
    rows = []
    for size, stage, n_pairs, n_tokens in plan(
        sizes, [int(x) for x in args.pairs.split(",")], [int(x) for x in args.tokens.split(",")]
    ):
        argv = [sys.executable, __file__, "--point", size, stage, str(n_pairs), str(n_tokens)]
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{size} {stage} {n_pairs}×{n_tokens}: failed\n{proc.stderr[-2000:]}")
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "scale.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    columns = [
        Column("model", lambda r: f"{r['size']} ({r['params_m']:.0f}M)"),
        Column("stage", lambda r: r["stage"]),
        Column("pairs", lambda r: r["pairs"]),
        Column("tokens/answer", lambda r: r["tokens"]),
        Column("wall s", lambda r: r["seconds"], ".1f"),
        Column("peak RSS GB", lambda r: r["peak_rss_gb"], ".2f"),
        Column("weights GB", lambda r: r["weights_gb"], ".2f"),
    ]
    table = ResultTable("time and peak memory (2 CPU cores, fp32)", columns, rows)
    print_tables(table)
    print(table.markdown())
    for stage in STAGES:
        c = fit([r for r in rows if r["stage"] == stage], stage)
        if c and math.isfinite(c):
            print(f"{stage}: {c:.1f} s per (billion parameters × thousand tokens)")


if __name__ == "__main__":
    main()
