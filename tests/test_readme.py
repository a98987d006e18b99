"""The README's Python examples run as written."""

import json
import re
from pathlib import Path

from internalize.experiments import registry

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_examples_run(tmp_path, monkeypatch):
    """In a fresh directory (the examples write runs under `runs/`), the repository on the path
    (`examples/`, as from the repository root)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(README.parent))
    # What the examples register stays in this test.
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    # The experiment of one's own ran through the runner into a run directory of its own.
    run = tmp_path / "runs" / "readme-thresholds"
    results = json.loads((run / "results.json").read_text())
    assert {path.name for path in run.iterdir()} >= {"config.json", "versions.json", "goals.csv"}
    assert set(results["goals_per_episode"]) == {"0.0", "0.5"}
    assert all(len(goals) == 2 for goals in results["goals_per_episode"].values())
    assert set(results["timings"]) == {
        "socialization",
        "isr",
        "autonomy 0.0",
        "autonomy 0.5",
        "total_s",
    }
    assert json.loads((run / "config.json").read_text())["thresholds"] == [0.0, 0.5]


def test_readme_starts_with_the_two_commands():
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert commands[0] == "pip install . && internalize reproduce paper"
    assert commands[1] in ci  # .ci/run runs exactly the README's test command
