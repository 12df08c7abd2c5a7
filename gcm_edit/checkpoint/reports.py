"""What `score` and `eval` write beside (or instead of) an export: typed like the manifest,
so that a field is named once and a reader can validate what it loads."""

from __future__ import annotations

from pathlib import Path

from gcm_edit.cache import write_json
from gcm_edit.checkpoint.sections import Section
from gcm_edit.evaluation.answers import Evaluation
from gcm_edit.evaluation.capability import Capability
from gcm_edit.evaluation.retention import Retention


class ModelInfo(Section):
    name: str
    source: str


class RecipeRef(Section):
    name: str
    sha256: str
    prompt_format: str | None = None


class TopHead(Section):
    layer: int
    head: int
    score: float


class ScoresReport(Section):
    """scores.json: how the heads in scores.csv were scored, and the top k%."""

    gcm_edit_version: str
    command: str
    method: str
    summary: str
    score: str  # what a score means (the method's label)
    base_model: ModelInfo
    recipe: RecipeRef
    n_pairs: int
    positions: str | None  # None: a method that reads no δ
    seed: int
    k_percent: float
    top_heads: list[TopHead]
    timings_s: dict[str, float]
    peak_rss_gb: dict[str, float]
    peak_rss_method: str

    def write(self, path: Path) -> None:
        write_json(path, self.model_dump(mode="json", exclude_none=False))


class EvalReport(Section):
    """`eval --out`: one model's judged answers against its reference."""

    model: ModelInfo
    reference: ModelInfo
    recipe: RecipeRef
    judge: str  # the recipe's judge, or the LLM that replaced it
    split: str
    runtime: str
    metrics: dict[str, Evaluation]
    retention: Retention | None  # None under llama.cpp (no full distributions)
    capability: Capability
    answers: list[dict]

    def write(self, path: Path) -> None:
        write_json(path, self.model_dump(mode="json"))
