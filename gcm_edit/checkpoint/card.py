"""The model card (README.md of an export): what was changed, how well it works, how to load it."""

from __future__ import annotations

from gcm_edit.checkpoint.card_usage import usage
from gcm_edit.checkpoint.manifest import Manifest, composition_table
from gcm_edit.evaluation.answers import PROMPTED
from gcm_edit.evaluation.plan_results import frontier_table, ranked
from gcm_edit.evaluation.relevance import RELEVANCE
from gcm_edit.inputs.recipe_files import RECIPE_FILE
from gcm_edit.judges import JUDGES
from gcm_edit.scoring.methods import METHODS
from gcm_edit.steering.collateral import RANKINGS


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _edit(manifest: Manifest) -> str:
    if manifest.steering.intervention == "scale":
        return f"the outputs (o_proj columns) scaled by {manifest.steering.alpha}"
    if manifest.steering.intervention == "distilled":
        neurons = "".join(
            f", {n.count} gated neurons added to layer {n.layer}'s MLP (so every layer's MLP is "
            f"{n.count} neurons wider, zero elsewhere)"
            for n in manifest.steering.neurons
        )
        return (
            "an edit learned from the prompted model (vectors in the output-projection biases, "
            f"low-rank maps in its columns{neurons})"
        )
    if manifest.steering.intervention == "rank1":
        return "steering vectors baked as rank-1 edits of the output-projection columns"
    return "steering vectors baked into the output-projection biases"


def _what(manifest: Manifest) -> str:
    """What was written where: the edit kind's own words when it chose no ranked heads."""
    if manifest.edit is not None and manifest.edit.intro:
        return manifest.edit.intro
    steering = manifest.steering
    return f"""{_edit(manifest)} of
{steering.n_heads} attention heads ({steering.k_percent:.3g}% of
{steering.n_heads_total}), ranked by `{manifest.method}`
({METHODS[manifest.method].summary}; Generative Causal Mediation, arXiv 2602.16080)"""


def _how_chosen(manifest: Manifest) -> str:
    """The Steering list's lines on ranking and strength (said in the intro otherwise)."""
    steering = manifest.steering
    if manifest.edit is not None and manifest.edit.intro:
        return f"- α = {steering.alpha:g}, over **{steering.positions}** positions: see above"
    return f"""- heads ranked by {RANKINGS[steering.rank_by]}
- α = {steering.alpha}, δ averaged over **{steering.positions}** positions{_chosen(manifest)}"""


def _chosen(manifest: Manifest) -> str:
    selection = manifest.selection
    if selection.validation is None:
        return ""
    asked = f"α = {selection.alpha}, k = {selection.k_percent} asked for"
    if selection.kl_budget is not None:
        asked = f"a KL budget of {selection.kl_budget:g} per neutral token asked for"
    return (
        f"; {asked}: chosen among {len(selection.validation)} candidates on the validation "
        "split (highest success, ties to lower KL), never on the held-out questions reported "
        "above"
    )


def _frontier(manifest: Manifest) -> str:
    """Where the export sits among the plans it was chosen from (success vs KL)."""
    selection = manifest.selection
    if not selection.validation or len(selection.validation) < 2:
        return ""
    chosen = ranked(selection.validation)[0]
    table = frontier_table("", selection.validation, chosen).markdown()
    return f"""## Where this plan sits

Success against KL for the {len(selection.validation)} candidates measured on the validation
split: the non-dominated ones (no other plan has at least the success at no more KL), cheapest
first. A user who wants less collateral picks a row above the chosen one.

{table}

"""


def _window(manifest: Manifest) -> str:
    limit = manifest.export.exact_up_to_tokens
    if not limit:
        return ""
    return (
        f" The base model's {limit}-token sliding window has no Llama equivalent: the export"
        f" is exact up to {limit} tokens of context."
    )


def _edit_section(manifest: Manifest) -> str:
    return manifest.edit.card_section() if manifest.edit else ""


def _composition(manifest: Manifest) -> str:
    rows = manifest.composition
    if not rows:
        return ""
    return f"""## Composed concepts

This checkpoint bakes {len(rows)} concepts at once (their additions sum, head scales
multiply; each concept's α is folded into its heads' scales c). Unless composed with
`--no-compose-disjoint`, each concept steers the best heads no earlier concept steers ("given
up": heads its own ranking wanted). Each concept's held-out success, with its own plan alone
and in this composed model, shows the interference:

{composition_table(rows).markdown()}

"""


def _prompting(manifest: Manifest) -> str:
    """A base model is asked through the recipe's plain-text prompt, which the export carries
    as its chat template; its answers ended before the stop strings."""
    if manifest.recipe.prompt_format != "base":
        return ""
    stops = ", ".join(f"`{stop!r}`" for stop in manifest.decoding.stop)
    return f"""
The base model has no chat template of its own: questions were asked through the recipe's
plain-text prompt, saved as this folder's chat template (so `apply_chat_template` reproduces
it), and answers end before {stops or "nothing"} (`generate(..., stop_strings=[...],
tokenizer=tok)`, then cut the stop string).
"""


def _relevance(manifest: Manifest) -> str:
    if manifest.recipe.require_relevance:
        return " ∧ relevant"
    return " (relevance is reported, not required: this concept's answers are generic by nature)"


def _base_model(manifest: Manifest) -> str:
    """Front matter linking the export to its base in the Hub's model tree (an adapter on it,
    or a fine-tune: its weights edited), only under the base's hub id."""
    hub_id = manifest.base_model.hub_id
    if hub_id is None:
        return ""
    relation = "adapter" if manifest.export.format == "adapter" else "finetune"
    return f"base_model: {hub_id}\nbase_model_relation: {relation}\n"


def _unlinked(manifest: Manifest) -> str:
    if manifest.base_model.hub_id is not None:
        return ""
    return (
        "\n\nThe base model's Hub id is not known (a local folder or GGUF that does not name "
        "its source repo), so this card has no `base_model` field: add it before uploading to "
        "link this model to its base on the Hub."
    )


def _spread(manifest: Manifest) -> str:
    """How far this one draw can be from the next: the spread recorded for the same command
    over seeds (bench/distill.py --record), where one is."""
    spread = manifest.spread
    if spread is None:
        return ""
    return f"""
These figures are one draw. The same command over {spread.seeds} seeds (teacher samples, batch
order, neutral draws, the maps' start; measured {spread.measured} with `{spread.command}`):

{spread.table().markdown()}
"""


def _judge(manifest: Manifest) -> str:
    """How the concept was judged, where it was not by the recipe's rule."""
    recipe = manifest.recipe
    if recipe.judge_trust is not None:
        return f"\nThe concept is judged by {recipe.judge_trust.sentence()}."
    return "" if recipe.judge in JUDGES else f"\nThe concept is judged by {recipe.judge}."


def _success(manifest: Manifest) -> str:
    """What counts as a success, with the recipe's limits."""
    fluency, relevant, judge = manifest.recipe.fluency, _relevance(manifest), _judge(manifest)
    return f"""{_prompting(manifest)}Success = concept judged present ∧ fluent{relevant}.{judge}
Fluent: ≥{fluency["min_words"]} words, repeated word-{fluency["ngram"]}-gram rate ≤
{fluency["max_repeated_rate"]}, no word more than {fluency["max_word_run"]} times in a row,
no content word above {fluency["max_word_share"]:.0%} of the answer,
≤ {fluency["max_repeated_lines"]:.0%} repeated lines, base-model perplexity ≤
{fluency["max_perplexity"]}. Relevant: the base model finds the answer more likely after its own
question than after other questions (pointwise mutual information > {RELEVANCE["min_pmi"]:g}
nats per token). Every rate is shown with its 95% Wilson interval. `{PROMPTED}` is the base
model asked the same questions *with* the recipe's directive: the prompting reference steering
has to match."""


def model_card(manifest: Manifest) -> str:
    base, recipe, steering = manifest.base_model, manifest.recipe, manifest.steering
    decoding, retention = manifest.decoding, manifest.retention
    metrics, retention_table, capability_table = manifest.tables()[:3]
    unlinked = _unlinked(manifest)
    samples = "\n\n".join(
        f"**Q:** {s.question}\n\n*base:*\n\n{_quote(s.base)}\n\n*steered:*\n\n{_quote(s.steered)}"
        for s in manifest.samples[:3]
    )
    return f"""---
{_base_model(manifest)}library_name: transformers
pipeline_tag: text-generation
tags:
- gcm-edit
- steering
- {recipe.name}
---

# {base.name} — steered toward **{recipe.name}**

{recipe.description} This checkpoint is {base.name} with {_what(manifest)}.
Nothing else differs from the base model: it loads in any Hugging Face
stack with no extra code (saved as `{manifest.export.export_class}`).{_window(manifest)}{unlinked}

## Evaluation

{recipe.heldout_size} held-out questions asked with **no directive**, greedy decoding with
`no_repeat_ngram_size={decoding.no_repeat_ngram_size}`, {decoding.max_new_tokens} new tokens
(shipped in `generation_config.json`: measure with other decoding and results may differ),
generated by {decoding.engine or "transformers"}.
{_success(manifest)}

{metrics.markdown()}
{_spread(manifest)}
Retention on {retention.n_prompts} neutral prompts shipped with gcm-edit: KL(base ‖ steered)
in nats per token over the prompts, at the first answer token, and over the base model's own
greedy continuation (on-policy); and the perplexity of a neutral paragraph:

{retention_table.markdown()}

{capability_table.markdown()}

Contrastive pairs: {manifest.pairs.kept} kept of {manifest.pairs.n_questions}
training questions (the model followed the contrast directive in
{manifest.pairs.contrast_adherence:.0%} of them).

{_frontier(manifest)}{_edit_section(manifest)}{_composition(manifest)}## Steering

- heads (layer.head): {", ".join(h.label() for h in steering.heads)}
{_how_chosen(manifest)}
- verified: max |Δlogit| vs the hooked model = {manifest.verification.max_abs_logit_diff:.2e}
  (fp32), greedy text identical: {manifest.verification.greedy_identical}

`gcm_edit.json` has the same facts machine-readably; `scores.csv` and `scores.png` hold every
head's mediation score; `gcm_edit_plan.*` hold the δ vectors to rebuild the hooked model;
`{RECIPE_FILE}` is the recipe, to run again with `--concept {RECIPE_FILE}`.

## Samples

{samples}

## Use

{usage(manifest)}

## Reproduce

```
{manifest.command}
```
"""
