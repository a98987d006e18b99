"""`internalize render RUN_DIR`: GIFs of a run's saved policies side by side, on the tiny `all`
run of the session (rendered once per module, into a folder of its own)."""

import contextlib
import io
import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

from internalize.cli import main
from internalize.render import (
    PANEL_MARGIN,
    TEXT_HEIGHT,
    TILE_SIZE,
    PolicySet,
    frame_height,
    panel_width,
    play,
    policy_sets,
)

SIZE = 7
EPISODES = 2
PANELS = {"retention": 4, "hacking": 3, "ood": 4, "layouts-U": 4, "prosocial": 4}
LAYOUTS = ("plus", "x", "U", "T", "four_rooms")


def run_cli(*argv) -> tuple[int, dict | None]:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["render", *map(str, argv)])
    return code, json.loads(stdout.getvalue()) if code == 0 else None


@pytest.fixture(scope="module")
def rendered(all_run, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("render")
    code, printed = run_cli(all_run, "--out", out, "--episodes", EPISODES)
    assert code == 0
    return out, printed


def frames(path: Path) -> tuple[list[np.ndarray], list[int]]:
    """Every frame of a GIF as RGB, and each frame's duration."""
    images, durations = [], []
    with Image.open(path) as gif:
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
            images.append(np.asarray(gif.convert("RGB")))
    return images, durations


def grids(frame: np.ndarray, panels: int) -> list[np.ndarray]:
    """The grid picture of each panel of a frame."""
    top, side = 2 * TEXT_HEIGHT, SIZE * TILE_SIZE
    width = panel_width(SIZE)
    return [
        frame[top : top + side, p * width + PANEL_MARGIN : p * width + PANEL_MARGIN + side]
        for p in range(panels)
    ]


def max_steps(run: Path) -> int:
    return json.loads((run / "config.json").read_text())["env"].get("max_steps", 20)


def test_every_experiment_with_checkpoints_is_rendered(rendered, all_run):
    out, printed = rendered
    expected = {"retention", "hacking", "ood", "prosocial", *(f"layouts-{t}" for t in LAYOUTS)}
    assert {Path(f).stem for f in printed["files"]} == expected
    assert {path.stem for path in out.iterdir()} == expected
    assert printed["skipped"] == {  # they save no policies to play
        "scaling": "no policies to render",
        "departure": "no policies to render",
        "overoptimization": "no policies to render",
    }
    assert all(Path(f).parent == out for f in printed["files"])  # --out was honoured
    # `reproduce all` rendered the same GIFs into each experiment's own render/ folder.
    assert {p.stem for p in all_run.glob("*/render/*.gif")} == expected


@pytest.mark.parametrize("name", sorted(PANELS))
def test_frames_panels_and_identical_starts(rendered, all_run, name):
    out, _ = rendered
    images, durations = frames(out / f"{name}.gif")
    steps = max_steps(all_run / name.split("-")[0])
    panels = PANELS[name]
    # Every state of every episode is a frame (the step counter in the header keeps Pillow
    # from merging frames), 200 ms each.
    assert len(images) == EPISODES * (steps + 1)
    assert set(durations) == {200}
    assert images[0].shape == (frame_height(SIZE), panels * panel_width(SIZE), 3)
    # Each episode starts from one state, the same in every panel.
    for start in range(0, len(images), steps + 1):
        first, *others = grids(images[start], panels)
        assert len(np.unique(first.reshape(-1, 3), axis=0)) >= 3  # walls, floor, agent, ...
        for other in others:
            np.testing.assert_array_equal(other, first)
    # The two episodes start from different states.
    assert not np.array_equal(grids(images[0], 1)[0], grids(images[steps + 1], 1)[0])


@pytest.fixture(scope="module")
def retention_set(all_run) -> PolicySet:
    (policies,) = policy_sets(all_run / "retention", 0)
    return policies


def test_policy_sets_hold_the_saved_parameters(retention_set, all_run):
    from internalize.experiments.common import load_checkpoints

    assert retention_set.names == ("socialized", "none", "isr", "oracle")
    saved = load_checkpoints(all_run / "retention")["policy"]
    config = json.loads((all_run / "retention" / "config.json").read_text())
    stacked = jax.tree.leaves(retention_set.params)[0]
    socialized = jax.tree.leaves(saved["socialized"])[0]
    autonomy = jax.tree.leaves(saved["autonomy"])[0]
    np.testing.assert_array_equal(stacked[0], socialized[0])
    for panel, name in enumerate(retention_set.names[1:], start=1):
        np.testing.assert_array_equal(stacked[panel], autonomy[config["conditions"].index(name), 0])


def test_every_policy_meets_the_same_layouts(retention_set, rendered):
    played = play(retention_set, jax.random.key(1234), EPISODES)  # compiled by `rendered`
    walls, goals = played.states.walls, played.states.goal
    reached = played.reached  # [episodes, steps, policies]
    assert reached.sum() > 0  # else the check below would say nothing
    for e in range(EPISODES):
        np.testing.assert_array_equal(walls[e, 0], walls[e, 0, :1].repeat(4, 0))
        # The layouts each policy saw, in order: the k-th is the same for every policy.
        seen = []
        for p in range(4):
            after = np.flatnonzero(reached[e, :, p]) + 1
            seen.append([(walls[e, t, p].tobytes(), goals[e, t, p].tobytes()) for t in after])
        for a in seen:
            for b in seen:
                shared = min(len(a), len(b))
                assert a[:shared] == b[:shared]


def test_equal_policies_play_equal_episodes(retention_set, rendered):
    # The actions are sampled with the same random numbers for every panel.
    same = jax.tree.map(lambda x: np.repeat(x[:1], 4, axis=0), retention_set.params)
    played = play(
        PolicySet(
            stem="same",
            title="same",
            names=("a", "b", "c", "d"),
            params=same,
            ppo=retention_set.ppo,
            counted="goals",
        ),
        jax.random.key(7),
        EPISODES,
    )
    for leaf in jax.tree.leaves(played.states):
        np.testing.assert_array_equal(leaf, np.repeat(leaf[:, :, :1], 4, axis=2))
    assert not np.array_equal(played.states.agent[:, 0], played.states.agent[:, -1])


# --------------------------------------------------------------------------- errors


def copy_run(all_run: Path, tmp_path: Path, name: str) -> Path:
    run = tmp_path / name
    shutil.copytree(all_run / name, run, ignore=shutil.ignore_patterns("*.png", "*.gif"))
    return run


def error_of(capsys, *argv) -> str:
    code, _ = run_cli(*argv)
    assert code == 2
    return capsys.readouterr().err


def test_not_a_run_directory(tmp_path, capsys):
    assert "not a run directory: no such directory" in error_of(capsys, tmp_path / "missing")
    assert "not a run directory: it has no config.json" in error_of(capsys, tmp_path)


def test_no_checkpoints(all_run, tmp_path, capsys):
    run = copy_run(all_run, tmp_path, "retention")
    (run / "checkpoints.msgpack").unlink()
    assert "has no saved parameters" in error_of(capsys, run)
    assert "saves no policies" in error_of(capsys, all_run / "scaling")
    (tmp_path / "config.json").write_text(json.dumps({"experiment": "all"}))
    assert "no experiment of the run has checkpoints" in error_of(capsys, tmp_path)


def test_corrupt_checkpoints(all_run, tmp_path, capsys):
    run = copy_run(all_run, tmp_path, "hacking")
    (run / "checkpoints.msgpack").write_bytes(b"\x93not msgpack at all")
    assert "not a readable checkpoint file" in error_of(capsys, run)


def test_checkpoints_of_another_network(all_run, tmp_path, capsys):
    from flax import serialization

    run = copy_run(all_run, tmp_path, "retention")
    path = run / "checkpoints.msgpack"
    tree = serialization.msgpack_restore(path.read_bytes())
    tree["policy"]["socialized"] = jax.tree.map(
        lambda x: np.zeros((*x.shape[:-1], x.shape[-1] + 1), x.dtype), tree["policy"]["socialized"]
    )
    path.write_bytes(serialization.msgpack_serialize(tree))
    assert "policy socialized does not fit the run's network" in error_of(capsys, run)
    del tree["policy"]["socialized"]
    path.write_bytes(serialization.msgpack_serialize(tree))
    assert "has no policy 'socialized'" in error_of(capsys, run)


def test_seed_index_out_of_range(all_run, capsys):
    error = error_of(capsys, all_run / "prosocial", "--seed-index", 2)
    assert "seed index 2 is out of range" in error and "2 seeds" in error
