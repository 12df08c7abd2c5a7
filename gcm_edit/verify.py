"""Every export is checked: the folder, loaded by plain transformers, is the hooked steered model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from gcm_edit.errors import GcmEditError
from gcm_edit.generation import Decoding, generate
from gcm_edit.heads import add_to_heads
from gcm_edit.plan import SteeringPlan
from gcm_edit.sequences import TokenBatch

LOGIT_TOLERANCE = 1e-4


@dataclass
class Verification:
    max_abs_logit_diff: float
    greedy_identical: bool
    n_prompts: int
    greedy_tokens: int
    tolerance: float = LOGIT_TOLERANCE

    def to_json(self) -> dict:
        return asdict(self)


def load_plain(folder: Path):
    """What any user gets: AutoModelForCausalLM, fp32, safetensors, no gcm_edit code involved."""
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float32, use_safetensors=True, output_loading_info=True
    )
    missing = info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]
    if missing:
        raise GcmEditError(
            f"export {folder} does not load cleanly: key problems {sorted(missing)[:5]}"
        )
    return model.eval()


@torch.no_grad()
def verify_export(
    folder: Path,
    base_model,
    plan: SteeringPlan,
    tokenizer,
    prompts: list[list[int]],
    greedy_tokens: int = 32,
) -> Verification:
    """Max |Δlogit| (fp32) and greedy text of the export vs the hooked base; raise on mismatch."""
    device = next(base_model.parameters()).device
    exported = load_plain(folder).to(device)
    add = plan.add_tensor().to(device)
    batch = TokenBatch.build(prompts, [[] for _ in prompts], tokenizer.pad_token_id).to(device)
    inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    with add_to_heads(base_model, add):
        hooked_logits = base_model(**inputs).logits
    exported_logits = exported(**inputs).logits
    real = batch.attention_mask.bool()
    diff = float((hooked_logits - exported_logits).abs()[real].max())
    decoding = Decoding(max_new_tokens=greedy_tokens)
    with add_to_heads(base_model, add):
        hooked_text = generate(base_model, tokenizer, prompts, decoding, len(prompts), "verify")
    exported_text = generate(exported, tokenizer, prompts, decoding, len(prompts), "verify")
    result = Verification(diff, hooked_text == exported_text, len(prompts), greedy_tokens)
    if diff > LOGIT_TOLERANCE or not result.greedy_identical:
        raise GcmEditError(
            f"export verification failed: max |Δlogit| {diff:.2e} (limit {LOGIT_TOLERANCE:.0e}), "
            f"greedy text identical: {result.greedy_identical}"
        )
    return result
