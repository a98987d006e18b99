"""notebooks/tutorial.ipynb: stored valid and without outputs; runs end to end (slow)."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
NOTEBOOK = ROOT / "notebooks" / "tutorial.ipynb"


def test_notebook_is_valid_and_stored_without_outputs():
    nbformat = pytest.importorskip("nbformat", reason="nbformat is in the test extra")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert notebook.metadata.kernelspec.name == "python3"
    source = "\n".join(cell.source for cell in code)
    # The tiny budgets the brief of the notebook promises (a few minutes on a laptop CPU).
    assert "RetentionConfig(seeds=2, socialize_steps=4096, autonomy_steps=4096)" in source
    assert 'ScheduleConfig(kind="fading", fade_steps=2048)' in source


@pytest.mark.slow
def test_notebook_runs_end_to_end(tmp_path, monkeypatch):
    """Every cell in order in a fresh kernel, in a fresh directory (the runs go under runs/);
    about 1.5 minutes on a 2-core CPU."""
    nbformat = pytest.importorskip("nbformat", reason="nbformat is in the test extra")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is in the test extra")
    # The kernel imports this checkout's package, as pytest does (pyproject: pythonpath).
    paths = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError naming the cell that failed
    (run,) = (tmp_path / "runs").iterdir()
    for name in ("retention", "fading"):
        assert (run / name / "results.json").is_file()
    assert (run / "reward_map.png").is_file() and (run / "presence.png").is_file()
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert len(images) == 3  # retention.png, the reward map, the presence curves
