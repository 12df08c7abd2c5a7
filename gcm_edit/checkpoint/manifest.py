"""gcm_edit.json: every fact about an export, typed, built once when the export is complete.

The model card, the console tables and gcm_edit.json all render from one `Manifest`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    SerializeAsAny,
    ValidationError,
    model_serializer,
    model_validator,
)

from gcm_edit.cache import read_json, write_json
from gcm_edit.checkpoint.sections import EditReport, Section
from gcm_edit.checkpoint.verify import GgufVerification, Verification
from gcm_edit.errors import GcmEditError
from gcm_edit.evaluation.answers import Evaluation, metrics_table
from gcm_edit.evaluation.capability import Capability
from gcm_edit.evaluation.plan_results import RATE_COLUMNS, PlanResult
from gcm_edit.evaluation.rates import Rate
from gcm_edit.evaluation.retention import Retention
from gcm_edit.evaluation.spread import SeedSpread
from gcm_edit.inputs.default_model import DEFAULT_MODEL, FOLDER_NAME
from gcm_edit.judges.learned import JudgeTrust
from gcm_edit.tables import Column, ResultTable

MANIFEST_FILE = "gcm_edit.json"


class BaseModelInfo(Section):
    name: str
    source: str
    fingerprint: str
    architecture: str
    # The base's Hugging Face id where known (built-in model, a hub id, a GGUF's or folder's
    # own metadata): the card's `base_model`, which links an upload to its base on the Hub.
    hub_id: str | None = None

    def locate(self) -> str:
        """The base model to load: its folder if still there, else the built-in by name."""
        if Path(self.source).is_dir():
            return self.source
        if self.name == FOLDER_NAME:
            return DEFAULT_MODEL
        raise GcmEditError(f"base model not found at {self.source}; pass --base PATH_OR_HUB_ID")


class RecipeInfo(Section):
    name: str
    description: str
    sha256: str
    directive: dict | None
    prompt_format: str  # chat: the model's template; base: the recipe's base_prompt
    explicit_pairs: bool
    judge: str  # the recipe's judge, or the LLM that replaced it (--judge-url, --judge-model)
    judge_trust: JudgeTrust | None = None  # a learned judge's, measured on training questions
    fluency: dict
    require_relevance: bool  # success needs relevance (false: reported only)
    heldout_size: int


class ExportInfo(Section):
    format: str  # full | adapter
    export_class: str = Field(alias="class")
    base_weights_bytes: int | None
    exact_up_to_tokens: int | None  # a sliding window the exported family cannot express
    weights_bytes: int


class HeadRow(Section):
    """A steered head: additive (scale c, |δ|, push), scaled (head_scale s) or rank-1
    (rank1_scale c, |δ|), with its score."""

    layer: int
    head: int
    scale: float | None = None
    delta_norm: float | None = None
    head_scale: float | None = None
    rank1_scale: float | None = None
    collateral: float | None = None  # κ: KL with this head alone steered (effect-per-kl)
    push: float | None = None  # ‖α·c·δ‖ / the head's typical output norm
    score: float

    @model_serializer(mode="wrap")
    def _only_what_applies(self, handler) -> dict:
        return {k: v for k, v in handler(self).items() if v is not None}

    def label(self) -> str:
        """L16.H6, with its learned scale c or head scale s when it is not 1."""
        name = f"L{self.layer}.H{self.head}"
        if self.scale is not None and self.scale != 1.0:
            name += f" (c={self.scale:.3g})"
        if self.head_scale is not None:
            name += f" (s={self.head_scale:.3g})"
        if self.rank1_scale is not None:
            name += f" (rank-1, c={self.rank1_scale:.3g})"
        return name


class NeuronRow(Section):
    """Gated neurons added to one layer's MLP (the export's MLPs are `count` wider)."""

    layer: int
    count: int
    down_norm: float  # ‖D‖: how much they can write


class SteeringInfo(Section):
    intervention: str
    k_percent: float
    n_heads_total: int
    alpha: float
    positions: str
    rank_by: str = "effect"  # effect | effect-per-kl
    heads: list[HeadRow]  # a row per part: a distilled head has its b and each rank-1 part
    neurons: list[NeuronRow] = []  # gated neurons (--edit-neurons), if the plan kept any

    @property
    def n_heads(self) -> int:
        """Distinct heads edited."""
        return len({(row.layer, row.head) for row in self.heads})


class DecodingInfo(Section):
    do_sample: bool = False
    max_new_tokens: int
    no_repeat_ngram_size: int
    stop: list[str] = []  # base models: answers end before these strings
    engine: str | None = None  # what generated the answers, with versions (older: unsaid)


class PairsInfo(Section):
    n_questions: int
    kept: int
    contrast_adherence: float
    original_clean: float


class Selection(Section):
    """α, k% and the KL budget as asked for; when chosen ("auto", a budget), the choice
    and every validation row."""

    alpha: float | str
    k_percent: float | str
    kl_budget: float | None = None
    chosen: dict | None = None
    validation: list[PlanResult] | None = None

    @model_serializer(mode="wrap")
    def _only_when_chosen(self, handler) -> dict:
        return {k: v for k, v in handler(self).items() if v is not None}


class Sample(Section):
    question: str
    base: str
    steered: str


class CompositionRow(Section):
    """One concept's held-out success: base, its own plan alone, and the composed model."""

    concept: str
    recipe_sha256: str
    heads: list[list[int]]
    given_up: list[list[int]] = []  # heads its ranking wanted that an earlier concept steers
    alpha: float
    base_success: Rate
    alone_success: Rate
    composed_success: Rate


def composition_table(rows: list[CompositionRow]) -> ResultTable:
    columns = [
        Column("concept", lambda r: r.concept),
        Column("heads", lambda r: len(r.heads)),
        Column("given up to earlier concepts", lambda r: len(r.given_up)),
        Column("α", lambda r: r.alpha, "g"),
        Column("base", lambda r: r.base_success),
        Column("alone", lambda r: r.alone_success),
        Column("composed", lambda r: r.composed_success),
    ]
    return ResultTable("Composed concepts: each concept's held-out success", columns, rows)


class GgufInfo(Section):
    """`model.gguf`: its type, size and the llama.cpp check; its held-out figures are in
    `Manifest.metrics` under `label`."""

    outtype: str
    bytes: int
    verification: GgufVerification

    @property
    def label(self) -> str:
        return f"llama.cpp, {self.outtype}"

    def table(self) -> ResultTable:
        columns = [
            Column("GGUF", lambda v: f"{v.outtype}, {self.bytes / 1e6:.0f} MB"),
            Column("tokens", lambda v: v.tokens),
            Column("greedy = transformers", lambda v: v.greedy_identical),
            Column("near-ties", lambda v: v.near_ties),
            Column("off greedy", lambda v: v.off_greedy),
            Column("max |Δlog p|", lambda v: v.max_abs_logprob_diff, ".1e"),
            Column("mean |Δlog p|", lambda v: v.mean_abs_logprob_diff, ".1e"),
            Column("steering effect", lambda v: v.steering_effect, ".3f"),
            Column("≠ base text", lambda v: v.differs_from_base),
        ]
        title = (
            "llama.cpp vs transformers on the tokens llama.cpp chose "
            "(f32 K/V, no flash attention, 1 thread)"
        )
        return ResultTable(title, columns, [self.verification])


class DoseRow(Section):
    """The adapter at one LoRA scale (`dose` × the exported edit), held-out."""

    dose: float
    success: Rate
    concept: Rate
    fluent: Rate
    relevant: Rate
    kl: float
    neutral_ppl_ratio: float


def dose_table(rows: list[DoseRow]) -> ResultTable:
    columns = [
        Column("dose (LoRA scale)", lambda r: r.dose, "g"),
        *RATE_COLUMNS,
        Column("KL per token", lambda r: r.kl, ".3f"),
        Column("neutral ppl ×", lambda r: r.neutral_ppl_ratio, ".2f"),
    ]
    return ResultTable("Serve-time dose: the adapter's LoRA scale (held-out)", columns, rows)


class Manifest(Section):
    gcm_edit_version: str
    created: str
    command: str
    base_model: BaseModelInfo
    recipe: RecipeInfo
    method: str
    export: ExportInfo
    steering: SteeringInfo
    decoding: DecodingInfo
    pairs: PairsInfo
    selection: Selection
    metrics: dict[str, Evaluation]  # base, steered, prompted (the prompting reference), ...
    spread: SeedSpread | None = None  # recorded for this export's command over seeds
    retention: Retention
    capability: Capability
    samples: list[Sample]
    edit: SerializeAsAny[EditReport] | None = None
    composition: list[CompositionRow] | None = None
    verification: Verification
    gguf: GgufInfo | None = None
    dose_curve: list[DoseRow] | None = None
    timings_s: dict[str, float]
    peak_rss_gb: dict[str, float] = Field(default_factory=dict)  # per stage; empty off Linux
    peak_rss_method: str | None = None  # how the peaks were read (gcm_edit.memory)
    files: dict[str, str]  # sha256 of each weight file

    @model_validator(mode="before")
    @classmethod
    def _older_edit_sections(cls, data: Any) -> Any:
        """Exports before 0.2 kept a learned edit's report under its own key."""
        if isinstance(data, dict):
            for old, kind in (("distillation", "distilled"), ("scale_learning", "scales")):
                if data.get(old) is not None:
                    data = {k: v for k, v in data.items() if k != old} | {
                        "edit": {"kind": kind, **data[old]}
                    }
        return data

    def to_json(self) -> dict[str, Any]:
        """Optional sections appear only when the export has them."""
        optional = {"edit", "composition", "gguf", "dose_curve", "spread"}
        data = self.model_dump(mode="json", by_alias=True)
        return {k: v for k, v in data.items() if k not in optional or v is not None}

    def write(self, folder: Path) -> None:
        write_json(folder / MANIFEST_FILE, self.to_json())

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST_FILE
        if not path.is_file():
            raise GcmEditError(f"{folder} is not a gcm-edit export (no {MANIFEST_FILE})")
        try:
            return cls.model_validate(read_json(path))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(part) for part in err["loc"])
            problem = f"{where}: {err['msg']}"
        except ValueError as exc:  # not JSON
            problem = str(exc)
        raise GcmEditError(f"{path} is not a valid gcm-edit manifest ({problem})")

    def tables(self) -> list[ResultTable]:
        """What a user reads before sharing the checkpoint: console and model card alike."""
        s = self.steering
        title = (
            f"{self.recipe.name}: held-out questions, no directive "
            f"({s.n_heads} heads, {s.intervention}, α={s.alpha})"
        )
        tables = [
            metrics_table(title, self.metrics),
            self.retention.table(),
            self.capability.table(),
        ]
        if self.spread:
            tables.append(self.spread.table())
        if self.edit:
            tables.append(self.edit.table())
        if self.composition:
            tables.append(composition_table(self.composition))
        if self.gguf:
            tables.append(self.gguf.table())
        if self.dose_curve:
            tables.append(dose_table(self.dose_curve))
        return tables

    def samples_table(self, n: int = 3) -> ResultTable:
        columns = [
            Column("question", lambda r: r.question),
            Column("base", lambda r: r.base),
            Column("steered", lambda r: r.steered),
        ]
        return ResultTable("Sample held-out answers", columns, self.samples[:n], prose=True)
