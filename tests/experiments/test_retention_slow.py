"""SPEC §5 A's finding, on the fast preset with 3 seeds and the default step counts (a few
minutes on 2 CPU cores): with no caregiver and no ISR the learner unlearns; with the ISR it keeps
reaching goals as with the caregiver. Run with `pytest -m slow`."""

import json

import pytest

from internalize.cli import main


@pytest.mark.slow
def test_retention_finding(tmp_path):
    out = tmp_path / "run"
    assert main(["reproduce", "retention", "--seeds", "3", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    goals = {
        condition: results["summary"][condition]["goals_per_episode"]["mean"]
        for condition in ("oracle", "none", "isr")
    }
    print(json.dumps({key: results[key] for key in ("conditions", "timings")}, indent=1))
    assert goals["oracle"] >= 1.5, goals
    assert goals["none"] < 0.1 * goals["oracle"], goals
    assert goals["isr"] >= 0.9 * goals["oracle"], goals
    # Per seed as well, not only on average.
    per_seed = results["conditions"]
    for s in range(3):
        oracle = per_seed["oracle"]["goals_per_episode"][s]
        assert per_seed["none"]["goals_per_episode"][s] < 0.2 * oracle, s
        assert per_seed["isr"]["goals_per_episode"][s] >= 0.8 * oracle, s
