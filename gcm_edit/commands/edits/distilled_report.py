"""What the card says of a distilled edit: its teacher data, objective, training and the
kept snapshot, against the mean-difference plan on the same heads (held-out)."""

from __future__ import annotations

from typing import ClassVar, Literal

from gcm_edit.checkpoint.sections import EditReport


class DistillationReport(EditReport):
    """The teacher data, the objective, training and the kept snapshot."""

    kind: Literal["distilled"] = "distilled"
    questions: int  # distillation questions asked
    teacher_answers: int  # questions with a good prompted answer (the training set)
    teacher_candidates: int  # answers generated in all (greedy + samples)
    greedy_kept: int  # of the teacher answers, those that were the greedy one
    steered_answers: int = 0  # the start plan's own kept answers (--teacher-steered)
    self_steps: int = 0  # self-training steps after the first fit (--edit-self-steps)
    self_kept: int = 0  # ...on this many of the student's own answers, judged good
    heads: list[list[int]]
    title: ClassVar[str] = "Distilled edit vs the mean-difference plan on the same heads (held-out)"
    learned: ClassVar[str] = "distilled edit"

    def card_section(self) -> str:
        goal = self.objective
        kept = (
            "the mean-difference plan itself (step 0): no distilled snapshot did better"
            if self.chosen_step == 0
            else f"step {self.chosen_step}"
        )
        maps = f" and a rank-{goal['rank']} map A_h" if goal["rank"] else ""
        held = "neutral token"
        if goal.get("neutral_continuations"):
            held = "token of the neutral prompts and of the base model's own continuations"
        neurons = ""
        if goal.get("neurons"):
            neurons = (
                f" (and {goal['neurons']} gated neurons on layer {goal['neuron_layer']}'s MLP "
                "added D (act(G x) ⊙ (U x)), baked as as many more MLP neurons in every layer, "
                "zero in the others)"
            )
        steered = ""
        if self.steered_answers:
            steered = (
                f", with {self.steered_answers} answers of the mean-difference-steered model "
                "itself, asked bare and judged alike, learned one-hot (as written)"
            )
        if self.self_steps:
            kept += (
                f"; after the first {goal['steps']} steps, the student answered the same questions "
                f"itself, the judges kept {self.self_kept}, and {self.self_steps} more steps "
                "learned them one-hot with the teacher's (self-training)"
            )
        return f"""## Distilled edit

The edit was learned from the prompted model (context distillation). The base model, asked
the recipe's {self.questions} distillation questions *with* its directive, answered each
until an answer was good, greedy first, then sampled ({self.teacher_candidates} answers in
all);
{self.teacher_answers} questions got an answer judged concept ∧ fluent ∧ relevant
({self.greedy_kept} of them greedy), and those answers are the training set{steered}. Each selected
head learned a vector b_h (starting at α·δ_h){maps}, z_h ← z_h + A_h z_h + b_h{neurons}, to
match the prompted model's next-token distributions without the directive, with
KL(base ‖ edited) per {held} held to {goal["kl_target"]:g} by a Lagrange multiplier
({goal["steps"]} Adam steps). Of the snapshots every {goal["snapshot_every"]} steps, the best on
the validation split within that KL was kept: {kept}. Held-out, against the mean-difference
plan on the same heads:

{self.table().markdown()}

"""
