"""Greedy generation throughput on CPU: transformers at several batch sizes against llama.cpp
(xllamacpp, f32 GGUF of the same model, exact settings) with concurrent requests batched by
its server slots (issue 33: which engine should generate on a laptop?).

    .venv/bin/python bench/generators.py [--n 128] [--tokens 96]

The default model answers the verse held-out questions asked bare. llama.cpp runs plain
greedy decoding (it has no no-repeat-n-gram rule; adding it can only cost calls), so its row
is an upper bound on what it would do for us. "same as transformers@32": the share of
answers identical, token for token, to transformers at batch 32 under the same decoding.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import torch

from gcm_edit.checkpoint.gguf import convert_to_gguf
from gcm_edit.evaluation.answers import question_prompts
from gcm_edit.inputs.default_model import default_model_dir
from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.model.generation import Decoding, generate
from gcm_edit.model.llamacpp import LlamaCpp
from gcm_edit.tables import Column, ResultTable, print_tables


def timed(label: str, answers) -> dict:
    start = time.perf_counter()
    out = answers()
    seconds = time.perf_counter() - start
    tokens = sum(map(len, out))
    return {"engine": label, "s": seconds, "tokens": tokens, "tok/s": tokens / seconds, "out": out}


def llamacpp_rows(folder: Path, prompts, tokens: int, slots: list[int]) -> list[dict]:
    """Plain greedy answers from llama.cpp with `parallel` slots fed by as many threads."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="gcm-gen-") as tmp:
        path = convert_to_gguf(folder, Path(tmp) / "model.gguf", "f32")
        n_ctx = max(map(len, prompts)) + tokens + 8
        for parallel in slots:
            llm = LlamaCpp(path, n_ctx, parallel, torch.get_num_threads())

            def answers(llm=llm, parallel=parallel) -> list[list[int]]:
                with ThreadPoolExecutor(parallel) as pool:
                    done = pool.map(lambda p: llm.complete(p, tokens)[0], prompts)
                    return [[t.id for t in out] for out in done]

            label = f"llama.cpp f32, {parallel} slots (no n-gram rule)"
            rows.append({**timed(label, answers), "plain": True})
            del llm
    return rows


def transformers_rows(folder: Path, tokenizer, prompts, tokens: int) -> list[dict]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    rows = []
    for plain in (False, True):
        decoding = Decoding(max_new_tokens=tokens, no_repeat_ngram_size=0 if plain else 3)
        rule = "no n-gram rule" if plain else "no-repeat 3-gram"
        for batch in (32, 128):
            run = partial(generate, model, tokenizer, prompts, decoding, batch, f"batch {batch}")
            rows.append({**timed(f"transformers, batch {batch} ({rule})", run), "plain": plain})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128, help="questions")
    parser.add_argument("--tokens", type=int, default=96, help="new tokens per answer")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    folder = default_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    prompts = question_prompts(tokenizer, load_recipe("verse").heldout[: args.n])
    rows = transformers_rows(folder, tokenizer, prompts, args.tokens)
    rows += llamacpp_rows(folder, prompts, args.tokens, [32, args.n])
    end = tokenizer.eos_token_id  # transformers keeps the end token, llama.cpp does not

    def same(a: list[int], b: list[int]) -> bool:
        return [t for t in a if t != end] == [t for t in b if t != end]

    for row in rows:  # the first transformers row under the same rule is the reference
        ref = next(r["out"] for r in rows if r["plain"] == row["plain"])
        row["same"] = sum(map(same, row["out"], ref)) / len(ref)
    columns = [
        Column("engine", lambda r: r["engine"]),
        Column("seconds", lambda r: r["s"], ".1f"),
        Column("tokens", lambda r: r["tokens"]),
        Column("tokens/s", lambda r: r["tok/s"], ".0f"),
        Column("same as transformers@32", lambda r: r["same"], ".0%"),
    ]
    cores = f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} threads"
    title = f"{args.n} answers × ≤{args.tokens} new tokens, {cores}"
    print_tables(ResultTable(title, columns, rows))


if __name__ == "__main__":
    main()
