"""A run folder is found by the model's contents: a renamed copy of a model reuses it, and a
model whose contents changed under a known name says in one line why its cache is cold."""

from __future__ import annotations

from gcm_edit.commands.run import run_folder


def test_a_renamed_copy_reuses_the_folder(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "tiny-llama-0123abcd").mkdir(parents=True)
    assert run_folder(runs, "my-copy", "0123abcd") == runs / "tiny-llama-0123abcd"
    assert capsys.readouterr().err == ""


def test_changed_contents_are_cold_with_a_reason(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "tiny-llama-0123abcd").mkdir(parents=True)
    (runs / "tiny-llama-0123abcd-base-9f").mkdir()
    assert run_folder(runs, "tiny-llama", "feedbeef") == runs / "tiny-llama-feedbeef"
    (line,) = capsys.readouterr().err.splitlines()
    assert "tiny-llama's weights, config or tokenizer differ from its 2 cached run(s)" in line


def test_another_prompt_format_of_the_same_model_is_not_called_changed(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "tiny-llama-0123abcd").mkdir(parents=True)
    base = "0123abcd-base-9f"
    assert run_folder(runs, "tiny-llama", base) == runs / f"tiny-llama-{base}"
    assert capsys.readouterr().err == ""


def test_first_run_is_silent(tmp_path, capsys):
    assert run_folder(tmp_path / "runs", "m", "0123abcd") == tmp_path / "runs" / "m-0123abcd"
    assert capsys.readouterr().err == ""
