"""The model card's Use section: loading the export (transformers, PEFT, llama.cpp) and the
adapter's dose."""

from __future__ import annotations

from gcm_edit.checkpoint.manifest import Manifest, dose_table

_GENERATE = """ids = tok.apply_chat_template([{"role": "user", "content": "Why is the sky blue?"}],
                              add_generation_prompt=True, return_tensors="pt", return_dict=True)
print(tok.decode(model.generate(**ids)[0], skip_special_tokens=True))"""


def usage(manifest: Manifest) -> str:
    """How to load this folder: plain transformers, or PEFT for an adapter; llama.cpp too."""
    export = manifest.export
    size = f"{export.weights_bytes / 1e6:.1f} MB of weights"
    if export.base_weights_bytes:
        size += f" (the base model's: {export.base_weights_bytes / 1e6:.1f} MB)"
    if export.format == "adapter":
        base = manifest.base_model.name
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
`model.merge_and_unload()`: the result equals gcm-edit's full export.

{_dose(manifest)}"""
    gguf = (
        _llamacpp(manifest)
        if manifest.gguf
        else "For llama.cpp, export with `--gguf f32` (or `f16`, `bf16`, `q8_0`): gcm-edit "
        "converts the folder with llama.cpp's own converter and checks the file in llama.cpp. "
        "llama.cpp's Llama loader reads q/k/v/o biases."
    )
    return f"""A standalone checkpoint ({size}); nothing but transformers is needed:

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

tok = AutoTokenizer.from_pretrained("PATH_TO_THIS_FOLDER")
model = AutoModelForCausalLM.from_pretrained("PATH_TO_THIS_FOLDER")
{_GENERATE}
```

{gguf}"""


def _llamacpp(manifest: Manifest) -> str:
    """The GGUF beside the weights: how to run it, and how it was checked."""
    gguf = manifest.gguf
    return f"""`model.gguf` ({gguf.outtype}, {gguf.bytes / 1e6:.0f} MB) is included:
`llama-server -m model.gguf`. It was run in llama.cpp (f32 K/V cache, flash attention off, one
thread) against transformers on the tokens llama.cpp chose greedily:

{gguf.table().markdown()}

Its held-out answers are the evaluation table's `{gguf.label}` row, decoded in llama.cpp with
the same greedy decoding: transformers' `no_repeat_ngram_size` has no llama.cpp sampler, so
each token was asked for with the tokens that would repeat a
{manifest.decoding.no_repeat_ngram_size}-gram banned (`logit_bias`). Plain greedy in
llama.cpp, without that ban, may loop where these answers did not."""


def _dose(manifest: Manifest) -> str:
    """The adapter's strength knob: PEFT's LoRA scale, measured."""
    alpha = manifest.steering.alpha
    curve = (
        ""
        if not manifest.dose_curve
        else f"""Measured on the held-out questions (dose 0 is the base model, 1 this adapter):

{dose_table(manifest.dose_curve).markdown()}

"""
    )
    return f"""### Dose

Every edit in this adapter is linear in its strength, and PEFT multiplies the LoRA update and
its bias alike by the LoRA scale: scale `t` is the steering at α = {alpha:g}·t.

```python
from peft.helpers import rescale_adapter_scale

with rescale_adapter_scale(model, 0.5):  # half the edit, for the calls inside
    print(tok.decode(model.generate(**ids)[0], skip_special_tokens=True))
```

To fix a dose for good, call `module.set_scale("default", t)` on every `peft.tuners.lora.LoraLayer`
of the model, or multiply the `alpha_pattern` values in `adapter_config.json` by `t` before
loading (what a PEFT-based server reads).

{curve}Where the dose cannot be set: vLLM dropped LoRA biases (vllm-project/vllm#25807), and
llama.cpp's LoRA format has none (its `convert_lora_to_gguf.py` stops at them), so neither
loads this adapter. There, bake a dose instead: `gcm-edit export --alpha {alpha:g}·t` with the
same other options gives the full checkpoint of dose t."""
