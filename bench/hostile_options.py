"""The option cases of bench/hostile.py: `gcm-edit export` with options that cannot hold
(refused in one line before any work), and the old option names (a notice, then the run goes
on). The model does not exist, so a run that passes validation ends in "model folder not
found"; no case loads a model."""

from __future__ import annotations

from hostile_kit import MODEL_MISSING, NO_MODEL, Case


def option_case(name: str, argv: list[str], says: str) -> Case:
    return Case("options", name, ["export", *NO_MODEL, *argv], says=says)


def old_name_case(old: str, argv: str, new: str) -> Case:
    """An option's old name, kept one release: a notice naming the new one, then the run goes
    on (here to the missing model)."""
    case = option_case(f"old name {old}", argv.split(), MODEL_MISSING)
    notice = f"{old} is now {new}"
    case.check = lambda sb, o: "" if notice in " ".join(o.output.split()) else f"no {notice!r}"
    return case


BUDGET = "--edit mean-diff --kl-budget 0.5"


def options() -> list[Case]:
    table = [
        ("budget with --alpha", "--kl-budget 0.5 --alpha 2 --edit mean-diff", "chooses --alpha"),
        ("budget with --k", "--kl-budget 0.5 --k 3 --edit mean-diff", "chooses --k itself"),
        ("budget with --rank-by", f"{BUDGET} --rank-by effect", "chooses --rank-by itself"),
        ("--doses with --format full", "--doses 2", "only read with --format adapter"),
        ("--doses with an empty item", "--format adapter --doses 2,2,,2", "empty item"),
        ("--doses repeated", "--format adapter --doses 2,2", "2 is given twice"),
        ("--batch-size 10**23", "--batch-size 99999999999999999999999", "less than or equal"),
        ("--alpha nan", "--alpha nan", "--alpha"),
        ("--alpha inf", "--alpha inf", "--alpha"),
        ("--alpha -1", "--alpha -1", "--alpha"),
        ("--alpha 1e9", "--alpha 1e9", "less than or equal to 100"),
        ("--k 0", "--k 0", "--k"),
        ("--k 101", "--k 101", "--k"),
        ("--k abc", "--k abc", "--k"),
        ("--accelerator tpu", "--accelerator tpu", "--accelerator 'tpu' is not a device"),
        ("--accelerator cuda without a GPU", "--accelerator cuda", "--accelerator cuda"),
        ("--method bogus", "--method bogus", "--method"),
        ("--edit distilled --learn-scales", "--edit distilled --learn-scales", "contradicts"),
        ("--gguf with an adapter", "--gguf q8_0 --format adapter", "--gguf needs --format full"),
        ("--strategy fsdp on export", "--strategy fsdp", "--strategy fsdp"),
        ("--concept twice", "--concept verse --concept verse", "verse is given twice"),
        ("--max-new-tokens 0", "--max-new-tokens 0", "--max-new-tokens"),
        ("--max-new-tokens 10**9", "--max-new-tokens 1000000000", "less than or equal"),
        ("--n-heldout 0", "--n-heldout 0", "--n-heldout"),
        ("--seed -1", "--seed -1", "--seed"),
        ("--kl-budget 0", "--kl-budget 0", "--kl-budget"),
        ("--kl-budget nan", "--kl-budget nan", "--kl-budget"),
        ("--edit-rank 65", "--edit-rank 65", "--edit-rank"),
        ("--alphas without auto", "--alphas 1,2", "only read with --alpha auto, --kl-budget"),
        ("--ks without auto", "--ks 1,2", "only read with --k auto or --kl-budget"),
        ("--edit-steps with mean-diff", "--edit mean-diff --edit-steps 5", "--edit distilled"),
        ("--lambda-f with mean-diff", "--edit mean-diff --lambda-f 2", "--edit distilled or"),
        ("--lambda-f with distilled: read", "--edit distilled --lambda-f 2", MODEL_MISSING),
        ("--scale-candidates, distilled", "--scale-candidates 5", "only read with --edit scales"),
        ("--scale-steps and --edit-steps", "--scale-steps 3 --edit-steps 4", "contradicts"),
        ("--prompt-format bogus", "--prompt-format bogus", "--prompt-format"),
        ("unknown option", "--bogus 1", "No such option"),
        ("--generation-batch 0", "--generation-batch 0", "--generation-batch"),
        ("--alphas repeated", "--alpha auto --alphas 1,1", "1 is given twice"),
        ("--rankings repeated", f"{BUDGET} --rankings effect,effect", "effect is given twice"),
        ("--devices 0", "--devices 0", "--devices"),
        ("--format bogus", "--format bogus", "--format"),
        ("--edit bogus", "--edit bogus", "--edit"),
        ("--rankings without --kl-budget", "--rankings effect", "only read with --kl-budget"),
        (
            "--interventions with scales",
            "--edit scales --kl-budget 0.5 --interventions additive",
            "only read with --edit mean-diff",
        ),
    ]
    old_names = [  # (old name, command line, new name)
        ("--learn-scales", "--learn-scales", "--edit scales"),
        ("--scale-steps", "--scale-steps 3", "--edit-steps"),
        ("--scale-lr", "--edit scales --scale-lr 0.1", "--edit-lr"),
        ("--scale-eval-every", "--edit scales --scale-eval-every 5", "--edit-eval-every"),
        ("--auto-alphas", "--alpha auto --auto-alphas 1,2", "--alphas"),
        ("--budget-alphas", f"{BUDGET} --budget-alphas 1,2", "--alphas"),
        ("--auto-ks", "--k auto --auto-ks 1,2", "--ks"),
        ("--budget-positions", f"{BUDGET} --budget-positions response", "--positions-grid"),
        ("--budget-rank-by", f"{BUDGET} --budget-rank-by effect", "--rankings"),
        ("--budget-interventions", f"{BUDGET} --budget-interventions rank1", "--interventions"),
        ("--device", "--device cpu", "--accelerator"),
    ]
    return [
        *(option_case(name, argv.split(), says) for name, argv, says in table),
        *(old_name_case(old, argv, new) for old, argv, new in old_names),
    ]
