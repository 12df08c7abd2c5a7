"""gcm-edit: find the attention heads that causally mediate a concept, bake steering into
them and export a standalone checkpoint. The public API, imported lazily (so the command
line starts fast):

    import gcm_edit as ge

    model, tokenizer = ge.load_pretrained()  # the built-in SmolLM2-135M-Instruct
    pairs = ge.build_pairs(model, tokenizer, ge.load_recipe("verse"), n_train=8).pairs
    deltas = ge.steering_vectors(model, pairs, tokenizer.pad_token_id)["response"]  # δ per head
    scores = ge.score_heads(model, pairs, deltas, tokenizer.pad_token_id)
    plan = ge.SteeringPlan.from_scores(scores, deltas, k_percent=5, alpha=1.0)
    ge.bake(model, plan).save_pretrained("verse-model")  # a plain HF checkpoint
    prompts = ge.bare_prompts(tokenizer, ["Why is the sky blue?"])
    print(ge.verify_export("verse-model", model, plan, prompts))  # reloaded == hooked

`ge.export(ge.ExportSettings(concept="verse"))` runs the whole `gcm-edit export`;
`ge.build_teacher_set` and `ge.learn_edit` learn the heads' edit from the prompted model
(`--edit distilled`); `ge.register_judge("mine", MyJudge)` lets a recipe say `judge: mine`;
`ge.convert_to_gguf("verse-model", path, "q8_0")` then `ge.verify_gguf(path, "q8_0", model,
plan, prompts)` check the model in llama.cpp.
"""

from importlib import import_module

from gcm_edit.version import __version__

_API = {
    "load_pretrained": "gcm_edit.inputs.loading",
    "load_recipe": "gcm_edit.inputs.recipe_files",
    "register_judge": "gcm_edit.judges",
    "bare_prompts": "gcm_edit.inputs.prompts",
    "build_pairs": "gcm_edit.pairs.contrastive",
    "steering_vectors": "gcm_edit.steering.vectors",
    "score_heads": "gcm_edit.scoring.methods",
    "SteeringPlan": "gcm_edit.steering.plan",
    "build_teacher_set": "gcm_edit.pairs.teacher",
    "EditObjective": "gcm_edit.steering.learned_edit",
    "learn_edit": "gcm_edit.steering.distill",
    "bake": "gcm_edit.checkpoint.bake",
    "verify_export": "gcm_edit.checkpoint.verify",
    "convert_to_gguf": "gcm_edit.checkpoint.gguf",
    "verify_gguf": "gcm_edit.checkpoint.verify",
    "ExportSettings": "gcm_edit.commands.export_settings",
    "export": "gcm_edit.commands.export",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'gcm_edit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
