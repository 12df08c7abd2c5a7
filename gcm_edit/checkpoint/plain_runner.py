"""Run prompts through a model: logits and greedy tokens. Imports only torch/transformers.

`gcm-edit verify` runs this file as a script in a fresh interpreter on the exported folder,
so the export is judged as any user would load it, with no gcm_edit code in the process;
the hooked reference runs the same `run_prompts` in-process, so both sides compute alike.

    python plain_runner.py FOLDER REQUEST.json OUT.safetensors
"""

from __future__ import annotations

import json
import sys

import torch

REJECTED = 3  # exit status: the folder loaded but is not a usable model (not a load error)


@torch.no_grad()
def run_prompts(model, prompts: list[list[int]], greedy_tokens: int) -> dict[str, torch.Tensor]:
    """Per prompt, unpadded: logits and `greedy_tokens` plain greedy continuation ids.

    Decoding ignores the model's own generation_config (an export ships its evaluated
    decoding, the base model may not), so both sides of a comparison decode alike.
    """
    from transformers import GenerationConfig

    plain = GenerationConfig(
        do_sample=False,
        max_new_tokens=greedy_tokens,
        min_new_tokens=greedy_tokens,
        pad_token_id=model.generation_config.pad_token_id or 0,
    )
    device = next(model.parameters()).device
    out = {}
    # generate() fills unset fields from model.generation_config, so swap it out wholesale
    own, model.generation_config = model.generation_config, plain
    try:
        for i, ids in enumerate(prompts):
            inputs = torch.tensor([ids], device=device)
            out[f"logits.{i}"] = model(input_ids=inputs).logits[0].float().cpu()
            generated = model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs))
            out[f"greedy.{i}"] = generated[0, len(ids) :].cpu()
    finally:
        model.generation_config = own
    return out


def main(folder: str, request: str, target: str) -> None:
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    with open(request) as f:
        spec = json.load(f)
    model, info = AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float32, use_safetensors=True, output_loading_info=True
    )
    problems = [
        k
        for key in ("missing_keys", "unexpected_keys", "mismatched_keys")
        for k in info.get(key, [])
    ]
    if problems:
        sys.exit(f"{folder} does not load cleanly: {sorted(problems)[:5]}")
    broken = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if broken:
        print(f"{len(broken)} weight tensors hold NaN or inf, e.g. {broken[:3]}", file=sys.stderr)
        sys.exit(REJECTED)
    results = run_prompts(model.eval(), spec["prompts"], spec["greedy_tokens"])
    if "gcm_edit" in sys.modules:
        sys.exit("plain runner imported gcm_edit; the check would not be independent")
    save_file({k: v.contiguous() for k, v in results.items()}, target)


if __name__ == "__main__":
    main(*sys.argv[1:4])
