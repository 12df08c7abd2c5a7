"""A seed spread recorded for a command (bench/distill.py --record) is stated in the card and
the manifest of every export of that command, whatever its seed or folder, and of no other."""

from __future__ import annotations

import json

from export_helpers import _export

import gcm_edit.commands.export_manifest as export_manifest
import gcm_edit.evaluation.spread as spread_module
from gcm_edit.checkpoint.manifest import Manifest
from gcm_edit.evaluation.spread import SeedSpread, Spread, measured_spread, record_spread

SPREAD = SeedSpread(
    seeds=3,
    success=Spread.of([0.2, 0.25, 0.3]),
    prompted=Spread.of([0.22, 0.22, 0.22]),
    forms_success=Spread.of([0.1, 0.15, 0.2]),
    measured="2026-12-07",
    command="bench/distill.py --seeds 3 --record",
)


def test_spread_records_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(spread_module, "SPREADS", tmp_path / "spreads.json")
    assert measured_spread("k") is None
    record_spread("k", SPREAD)
    record_spread("other", SPREAD.model_copy(update={"seeds": 5}))
    assert measured_spread("k") == SPREAD and measured_spread("other").seeds == 5
    assert str(SPREAD.success) == "25% (20%–30%)"


def test_a_recorded_spread_reaches_the_card_of_the_same_command(env, tmp_path, monkeypatch):
    monkeypatch.setattr(spread_module, "SPREADS", tmp_path / "spreads.json")
    keys: list[str] = []

    def looked_up(key: str) -> SeedSpread | None:
        keys.append(key)
        return measured_spread(key)

    monkeypatch.setattr(export_manifest, "measured_spread", looked_up)
    first = tmp_path / "first"
    assert _export(env["model"], first, "--seed", "0").exit_code == 0
    assert "one draw" not in (first / "README.md").read_text()
    assert "spread" not in json.loads((first / "gcm_edit.json").read_text())
    record_spread(keys[0], SPREAD)

    again = tmp_path / "again"
    assert _export(env["model"], again, "--seed", "7").exit_code == 0
    assert keys[1] == keys[0]
    card = (again / "README.md").read_text()
    assert "over 3 seeds (teacher samples" in card.replace("\n", " ")
    assert "| held-out | 25% (20%–30%) | 22% (22%–22%) |" in card
    assert "| other forms | 15% (10%–20%) | - |" in card
    assert Manifest.read(again).spread == SPREAD

    other = tmp_path / "other"
    assert _export(env["model"], other, "--alpha", "2").exit_code == 0
    assert keys[2] != keys[0] and "one draw" not in (other / "README.md").read_text()
