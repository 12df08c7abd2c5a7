"""`gcm-edit verify`: re-check any export against the hooked steered base model, rebuilt from
the base model and the folder's own plan (`gcm_edit_plan.*`): the folder's weights in plain
transformers, or (`--runtime llama.cpp`) its model.gguf in llama.cpp."""

from __future__ import annotations

from gcm_edit.checkpoint.gguf import gguf_type
from gcm_edit.checkpoint.manifest import Manifest
from gcm_edit.checkpoint.verify import (
    VERIFY_PROMPTS,
    GgufVerification,
    Verification,
    check_files,
    verify_export,
    verify_gguf,
)
from gcm_edit.commands.settings import VerifySettings
from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.loading import load_model, load_tokenizer, resolve_model
from gcm_edit.inputs.prompts import bare_prompts
from gcm_edit.model.llamacpp import require_xllamacpp
from gcm_edit.steering.plan import SteeringPlan


def verify(settings: VerifySettings) -> Verification | GgufVerification:
    folder = settings.folder
    manifest = Manifest.read(folder)
    check_files(folder, manifest.files)  # seconds, before minutes of loading models
    gguf = folder / "model.gguf"
    if settings.runtime == "llama.cpp":
        if not gguf.is_file():
            raise GcmEditError(
                f"{folder} has no model.gguf: export with --gguf TYPE, or convert the folder "
                "with llama.cpp's converter into that file"
            )
        require_xllamacpp()
        outtype = gguf_type(gguf)
    ref = resolve_model(settings.base or manifest.base_model.locate())
    plan = SteeringPlan.load(folder)
    tokenizer = load_tokenizer(resolve_model(str(folder)))
    questions = [sample.question for sample in manifest.samples[:VERIFY_PROMPTS]]
    prompts = bare_prompts(tokenizer, questions)
    if settings.runtime == "llama.cpp":
        checked = verify_gguf(gguf, outtype, load_model(ref), plan, prompts)
        print(f"ok: {checked.summary()}")  # the result, on stdout
        return checked
    result = verify_export(folder, load_model(ref), plan, prompts)
    print(  # the result, on stdout
        f"ok: max |Δlogit| {result.max_abs_logit_diff:.2e} (limit {result.tolerance:.0e}), "
        f"greedy tokens identical on {result.n_prompts} prompts"
    )
    return result
