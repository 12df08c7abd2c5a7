"""Attribution patching vs exact activation patching on the default model, same pairs and δ.

Prints wall times and their ratio, Spearman ρ and top-5% overlap of the two score tables, and
per-layer agreement (AtP is known to be weakest at the first and last layers). Also the cost
of attribution in forward equivalents: its time over that of one plain forward (no grad) of
the same sequences in the same batches, a pair's original and contrast response after its
original prompt (the floor is about 3: a forward of both responses and one backward). Not a
test: run with `python bench/attribution_vs_activation.py [--pairs N] [--no-exact]` (about
2 min per pair on 2 CPU cores, nearly all of it exact patching). Uses the normal cache for
pairs and δ.
"""

from __future__ import annotations

import argparse
import os
import time

from rich.console import Console
from rich.table import Table


def plain_forward_seconds(model, pairs, pad_id: int, batch_size: int) -> float:
    """One no-grad forward of each pair's two sequences (original and contrast response after
    the original prompt), batched as attribution batches pairs."""
    import torch

    from gcm_edit.model.batches import TokenBatch

    def batch(chunk) -> TokenBatch:
        prompts = [p.prompt_orig for p in chunk] * 2
        responses = [p.response_orig for p in chunk] + [p.response_contrast for p in chunk]
        return TokenBatch.build(prompts, responses, pad_id)

    with torch.no_grad():
        batch(pairs[:1]).run(model)  # warm-up: one-time costs are not a forward's
        start = time.perf_counter()
        for i in range(0, len(pairs), batch_size):
            batch(pairs[i : i + batch_size]).run(model)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6, help="pairs scored by both methods")
    parser.add_argument("--positions", default="all")
    parser.add_argument("--k", type=float, default=5.0, help="top-k%% for the overlap")
    parser.add_argument("--head-batch", type=int, default=4)
    parser.add_argument("--no-exact", action="store_true", help="attribution cost only")
    args = parser.parse_args()

    from rank_stats import spearman, top_overlap

    from gcm_edit.commands.settings import ScoringSettings
    from gcm_edit.commands.steering_run import SteeringRun
    from gcm_edit.console import quiet_libraries
    from gcm_edit.scoring.methods import score_heads

    quiet_libraries()
    settings = ScoringSettings(head_batch=args.head_batch)
    run = SteeringRun(settings)
    pairs = run.pairs.pairs[: args.pairs]
    deltas = run.deltas[args.positions]
    model, pad = run.model, run.tokenizer.pad_token_id
    scores, seconds = {}, {}
    forward = plain_forward_seconds(model, pairs, pad, settings.batch_size)
    for method in ("attribution",) if args.no_exact else ("attribution", "activation"):
        start = time.perf_counter()
        scores[method] = score_heads(model, pairs, deltas, pad, method, settings.runtime())
        seconds[method] = time.perf_counter() - start
    atp = scores["attribution"]
    n_tokens = sum(
        len(p.prompt_orig) * 2 + len(p.response_orig) + len(p.response_contrast) for p in pairs
    )

    console = Console()
    summary = Table(
        title=f"{run.model_ref.name}: {len(pairs)} pairs ({n_tokens} tokens), "
        f"{atp.numel()} heads, δ over {args.positions} positions, {os.cpu_count()} CPU cores"
    )
    for header in ("method", "wall (s)", "ratio to attribution"):
        summary.add_column(header, justify="right")
    summary.add_row("plain forward (no grad)", f"{forward:.1f}", "")
    for method, wall in seconds.items():
        summary.add_row(method, f"{wall:.1f}", f"{wall / seconds['attribution']:.0f}×")
    fe = seconds["attribution"] / forward
    summary.add_row("attribution in forward equivalents", f"{fe:.2f}", "")
    if args.no_exact:
        console.print(summary)
        return
    exact = scores["activation"]
    summary.add_row("Spearman ρ (all heads)", f"{spearman(atp, exact):.3f}", "")
    summary.add_row(f"top-{args.k:g}% overlap", f"{top_overlap(atp, exact, args.k):.0%}", "")
    agree = float(((atp > 0) == (exact > 0)).double().mean())
    summary.add_row("sign agreement", f"{agree:.0%}", "")
    console.print(summary)

    layers = Table(title="per layer: attribution vs exact")
    for header in ("layer", "Spearman ρ", "sign agreement", "rel. error", "max |exact|"):
        layers.add_column(header, justify="right")
    for layer in range(atp.shape[0]):
        a, e = atp[layer], exact[layer]
        rel = float((a - e).abs().sum() / e.abs().sum().clamp(min=1e-12))
        layers.add_row(
            str(layer),
            f"{spearman(a, e):.2f}",
            f"{float(((a > 0) == (e > 0)).double().mean()):.0%}",
            f"{rel:.2f}",
            f"{float(e.abs().max()):.3g}",
        )
    console.print(layers)


if __name__ == "__main__":
    main()
