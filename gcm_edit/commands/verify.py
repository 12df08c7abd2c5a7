"""`gcm-edit verify`: re-check any export against the hooked steered base model, rebuilt from
the base model and the folder's own plan (`gcm_edit_plan.*`)."""

from __future__ import annotations

from gcm_edit.checkpoint.manifest import Manifest
from gcm_edit.checkpoint.verify import VERIFY_PROMPTS, Verification, verify_export
from gcm_edit.commands.settings import VerifySettings
from gcm_edit.inputs.loading import load_model, load_tokenizer, resolve_model
from gcm_edit.inputs.prompts import bare_prompts
from gcm_edit.steering.plan import SteeringPlan


def verify(settings: VerifySettings) -> Verification:
    folder = settings.folder
    manifest = Manifest.read(folder)
    ref = resolve_model(settings.base or manifest.base_model.locate())
    plan = SteeringPlan.load(folder)
    tokenizer = load_tokenizer(resolve_model(str(folder)))
    questions = [sample.question for sample in manifest.samples[:VERIFY_PROMPTS]]
    result = verify_export(folder, load_model(ref), plan, bare_prompts(tokenizer, questions))
    print(  # the result, on stdout
        f"ok: max |Δlogit| {result.max_abs_logit_diff:.2e} (limit {result.tolerance:.0e}), "
        f"greedy tokens identical on {result.n_prompts} prompts"
    )
    return result
