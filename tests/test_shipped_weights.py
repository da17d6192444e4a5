"""The shipped classifier loads from its run folder and scores what its model card says."""

from __future__ import annotations

import json

from tests.conftest import REPO, run_cli

SHIPPED = REPO / "weights" / "fashion-mnist" / "classifier"


def test_shipped_classifier_scores_as_documented(fashion_dir):
    result = run_cli("classify", "eval", SHIPPED, "fashion-mnist", "--json")
    assert result.exit_code == 0, result.stderr
    scores = json.loads(result.stdout)
    config = json.loads((SHIPPED / "config.json").read_text())
    assert scores["images"] == 10000
    assert scores["accuracy"] >= 0.93
    assert abs(scores["accuracy"] - config["test"]["accuracy"]) < 1e-3
    assert (SHIPPED / "model.safetensors").stat().st_size < 10 * 2**20
    assert "94.18%" in (REPO / "weights" / "MODEL_CARD.md").read_text()
