"""SPEC §5 E's finding on the fast preset with 3 seeds and the default step counts (about 7
minutes on 2 CPU cores): without a caregiver and without an ISR the learner stops helping the
partner; with the ISR it goes on. Run with `pytest -m slow`."""

import json

import pytest

from internalize.cli import main


@pytest.mark.slow
def test_prosocial_finding(tmp_path):
    out = tmp_path / "run"
    assert main(["reproduce", "prosocial", "--seeds", "3", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    helps = {
        condition: results["summary"][condition]["helps_per_episode"]["mean"]
        for condition in ("oracle", "none", "isr")
    }
    print(json.dumps({key: results[key] for key in ("conditions", "timings")}, indent=1))
    assert helps["oracle"] >= 1.0, helps
    assert helps["none"] < 0.2 * helps["oracle"], helps
    assert helps["isr"] >= 0.8 * helps["oracle"], helps
