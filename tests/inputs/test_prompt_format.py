"""Base (non-chat) models: the recipe's plain-text base_prompt, installed as a chat template;
response prefill; how the prompt format is chosen."""

from __future__ import annotations

import pytest
from tiny import make_tokenizer

from gcm_edit.errors import GcmEditError
from gcm_edit.inputs.prompts import (
    adds_bos,
    bare_prompts,
    base_chat_template,
    choose_prompt_format,
    prefill_ids,
    training_prompts,
)
from gcm_edit.inputs.recipe import BasePrompt, Directive, Prefill, Recipe
from gcm_edit.inputs.recipe_files import load_recipe

BASE = BasePrompt(
    template="Question: {question}\n{cue}\n",
    bare="Answer:",
    original="Answer in prose:",
    contrast="Answer in verse:",
)


def _render(template: str, messages: list[dict], bos: str = "<s>") -> str:
    tokenizer = make_tokenizer()
    tokenizer.chat_template = template
    tokenizer.bos_token = bos
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _recipe(**overrides) -> Recipe:
    fields = {
        "name": "t",
        "description": "d",
        "judge": "verse",
        "directive": Directive(original="Answer in a paragraph.", contrast="Answer as a poem."),
        "base_prompt": BASE,
        "train": ["Why is the sky blue ?"],
        "validation": ["v ?"],
        "heldout": ["h ?"],
    }
    return Recipe(**{**fields, **overrides})


def test_base_template_renders_the_cue_of_each_side():
    template = base_chat_template(BASE, bos=False)
    user = {"role": "user", "content": "Why is the sky blue?"}
    assert _render(template, [user]) == "Question: Why is the sky blue?\nAnswer:\n"
    system = {"role": "system", "content": "Answer in verse:"}
    assert _render(template, [system, user]) == "Question: Why is the sky blue?\nAnswer in verse:\n"


def test_base_template_keeps_slot_order_quotes_and_bos():
    base = BasePrompt(template='{cue} "quoted" {{x}}\n{question} →', bare="Q:")
    template = base_chat_template(base, bos=True)
    got = _render(template, [{"role": "user", "content": "hi"}], bos="<bos>")
    assert got == '<bos>Q: "quoted" {{x}}\nhi →'


def test_bos_only_where_the_tokenizer_adds_one():
    from tokenizers import processors

    tokenizer = make_tokenizer()
    assert not adds_bos(tokenizer)
    bos = tokenizer.bos_token_id
    tokenizer._tokenizer.post_processor = processors.TemplateProcessing(
        single="<|im_start|> $A", special_tokens=[("<|im_start|>", bos)]
    )
    assert adds_bos(tokenizer)
    tokenizer.chat_template = None
    choose_prompt_format(_recipe(), tokenizer, "auto", "m")
    assert bare_prompts(tokenizer, ["Why ?"])[0][0] == bos


def test_base_recipe_moves_the_directive_into_the_cue():
    recipe = _recipe().for_base_model()
    assert recipe.directive == Directive(
        role="system", original="Answer in prose:", contrast="Answer in verse:"
    )
    (_, original, contrast) = training_prompts(recipe)[0]
    template = base_chat_template(BASE, bos=False)
    assert _render(template, original).endswith("\nAnswer in prose:\n")
    assert _render(template, contrast).endswith("\nAnswer in verse:\n")


def test_choose_prompt_format():
    chat = make_tokenizer()
    recipe = _recipe()
    assert choose_prompt_format(recipe, chat, "auto", "m") == (recipe, "chat")
    plain = make_tokenizer()
    plain.chat_template = None
    base_recipe, kind = choose_prompt_format(recipe, plain, "auto", "m")
    assert kind == "base" and base_recipe.directive.role == "system"
    ids = bare_prompts(plain, ["Why is the sky blue ?"])[0]
    assert plain.decode(ids) == "<unk> : Why is the sky blue ? Answer :"  # no BOS: none added
    # asked for explicitly on a chat model, base wins
    forced = make_tokenizer()
    assert choose_prompt_format(recipe, forced, "base", "m")[1] == "base"
    assert forced.chat_template != chat.chat_template


@pytest.mark.parametrize(
    ("wanted", "base_prompt", "message"),
    [
        ("auto", None, "recipe 't' has no base_prompt and m has no chat template"),
        ("base", None, "recipe 't' has no base_prompt"),
        ("chat", BASE, "m has no chat template: use --prompt-format base"),
    ],
)
def test_choose_prompt_format_refuses_in_one_line(wanted, base_prompt, message):
    plain = make_tokenizer()
    plain.chat_template = None
    recipe = _recipe(
        base_prompt=base_prompt,
        directive=None,
        train=None,
        pairs=[{"original": "a", "contrast": "b"}],
    )
    with pytest.raises(GcmEditError, match=message):
        choose_prompt_format(recipe, plain, wanted, "m")


@pytest.mark.parametrize(
    ("yaml_base", "message"),
    [
        ("  template: 'Q: {question}'\n", r"needs \{cue\} exactly once"),
        ("  template: '{cue} {cue} {question}'\n", r"needs \{cue\} exactly once"),
        ("  template: 'Q: {question} {cue}'\n  original: a\n", "contrast cue missing"),
    ],
)
def test_base_prompt_errors_name_the_field(tmp_path, yaml_base, message):
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: r\ndescription: d\njudge: verse\n"
        "directive: {original: a, contrast: b}\ntrain: [q]\nvalidation: [v]\nheldout: [h]\n"
        "base_prompt:\n" + yaml_base
    )
    with pytest.raises(GcmEditError, match=f"field 'base_prompt.*{message}"):
        load_recipe(str(path))


def test_prefill_ids_and_refusal():
    tokenizer = make_tokenizer()
    recipe = _recipe(prefill=Prefill(contrast="the sun is bright"))
    ids = prefill_ids(tokenizer, recipe)
    assert ids["original"] == []
    assert tokenizer.decode(ids["contrast"]) == "the sun is bright"
    bad = _recipe(prefill=Prefill(contrast="zebras are unknown"))
    with pytest.raises(GcmEditError, match="prefill.contrast 'zebras are unknown' does not"):
        prefill_ids(tokenizer, bad)


@pytest.mark.parametrize("name", ["verse", "refusal", "sycophancy"])
def test_builtin_recipes_render_on_a_base_model(name):
    """Every built-in recipe carries a base_prompt: the question is in the plain-text prompt
    and, where the recipe has a directive, each side ends with its own cue."""
    plain = make_tokenizer()
    plain.chat_template = None
    recipe, kind = choose_prompt_format(load_recipe(name), plain, "auto", "m")
    assert kind == "base" and recipe.base_prompt.stop
    (question, original, contrast) = training_prompts(recipe, 1)[0]
    rendered = [plain.apply_chat_template(c, tokenize=False) for c in (original, contrast)]
    base = recipe.base_prompt
    if recipe.directive is not None:
        assert rendered[0].endswith(base.original) and rendered[1].endswith(base.contrast)
        assert question in rendered[0] and question in rendered[1]
    else:
        assert all(text.endswith(base.bare) for text in rendered)
        assert question in rendered[0] and rendered[0] != rendered[1]
