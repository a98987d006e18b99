"""Tree layouts of the boulder world (SPEC §3): wall blocks whose open cells form one tree.

A layout is a set of `n_walls` interior wall blocks of a `size` x `size` grid (outer wall
excluded) such that the open interior cells, joined to their 4-neighbours, form a tree: connected
and without cycles, so `open cells - 1` neighbouring pairs. `enumerate_tree_layouts` checks every
placement exhaustively (C(25, 7) = 480,700 for the 7x7 grid); it is run once and its result is
shipped as package data (`data/boulder_tree_layouts.npy`), which `load_tree_layouts` reads. The
original's code (SPEC §7) placed 8 blocks (17 open cells): those layouts are shipped too
(`data/boulder_tree_layouts_8.npy`, 8,445 of the C(25, 8) = 1,081,575 placements).

How many there are. For the 7x7 grid with 7 blocks the enumeration finds **1,020** layouts,
rotations and reflections counted (the set is closed under the 8 symmetries of the square).
SPEC §3 reports 62,358 for the original's generator. That number cannot count 7-block tree
layouts of a 5x5 interior: every one of the 480,700 placements is checked here, and the
exact count is 1,020 (an independent count of all induced trees of the 5x5 grid graph, by
size, gives 1,020 trees of 18 cells; see `tests/envs/test_tree_layouts.py`). Nor is it the
number of trees of any other size, or of the (layout, boulder, partner, goal, learner)
placements our rules allow (140,456). We do not know what the original counted (perhaps
generated samples with duplicates, or placements under other rules); the task's rules are
met by the 1,020 layouts, and every one of them has a cell of degree 3 or 4 and at least three
leaves, so a partner, its goal and the learner always fit.

With 8 blocks the enumeration finds **8,445** layouts (1,091 up to the square's symmetries). SPEC
§7 says the original drew from 2,836 generated trees (its 62,358 are distinct strings of those
trees times placements and symmetries): a sample of its generator, not every tree. Not every
8-block layout has a junction: 56 of them are one path (the boulder then lies on a cell of
degree 2), with two leaves only, so the placement rules need a fallback there
(`internalize.envs.boulder.BoulderEnv.place`).

Layout masks are `bool[size, size]` arrays indexed `[x, y]` (MiniGrid's coordinates), as in
`internalize.envs.layouts`.
"""

import itertools
from functools import cache
from importlib import resources

import numpy as np

from internalize.envs.layouts import border_mask, walls_mask

N_WALLS = 7
"""Wall blocks of a boulder-world layout (SPEC §3)."""
LAYOUT_SIZE = 7
"""Grid side the shipped layouts are drawn for."""
DATA_FILES = {7: "boulder_tree_layouts.npy", 8: "boulder_tree_layouts_8.npy"}
"""Package data (in `internalize/envs/data/`) by wall blocks: bool[L, 5, 5] interior walls,
indexed [x, y] (`enumerate_tree_layouts`'s output)."""
LAYOUT_COUNTS = {7: 1020, 8: 8445}
"""How many layouts each data file holds."""
SPEC_LAYOUT_COUNT = 62_358
"""The count SPEC §3 reports for the original's generator (see the module docstring)."""


def neighbour_counts(open_cells: np.ndarray) -> np.ndarray:
    """Open 4-neighbours of every cell of bool[..., n, n], as int[..., n, n] (0 off the grid)."""
    cells = open_cells.astype(np.int32)
    counts = np.zeros_like(cells)
    counts[..., 1:, :] += cells[..., :-1, :]
    counts[..., :-1, :] += cells[..., 1:, :]
    counts[..., :, 1:] += cells[..., :, :-1]
    counts[..., :, :-1] += cells[..., :, 1:]
    return counts


def neighbour_pairs(open_cells: np.ndarray) -> np.ndarray:
    """Pairs of 4-neighbouring open cells of bool[..., n, n], int[...]."""
    return (open_cells[..., 1:, :] & open_cells[..., :-1, :]).sum(axis=(-2, -1)) + (
        open_cells[..., :, 1:] & open_cells[..., :, :-1]
    ).sum(axis=(-2, -1))


def is_connected(open_cells: np.ndarray) -> np.ndarray:
    """Whether the open cells of bool[..., n, n] are one 4-connected piece (and not none)."""
    open_cells = np.asarray(open_cells, dtype=bool)
    flat = open_cells.reshape(*open_cells.shape[:-2], -1)
    reached = np.zeros_like(flat)
    np.put_along_axis(reached, flat.argmax(axis=-1)[..., None], True, axis=-1)
    reached = reached.reshape(open_cells.shape) & open_cells
    for _ in range(open_cells.shape[-1] * open_cells.shape[-2]):
        grown = reached.copy()
        grown[..., 1:, :] |= reached[..., :-1, :]
        grown[..., :-1, :] |= reached[..., 1:, :]
        grown[..., :, 1:] |= reached[..., :, :-1]
        grown[..., :, :-1] |= reached[..., :, 1:]
        grown &= open_cells
        if np.array_equal(grown, reached):
            break
        reached = grown
    nodes = open_cells.sum(axis=(-2, -1))
    return (nodes > 0) & (reached.sum(axis=(-2, -1)) == nodes)


def is_tree(open_cells: np.ndarray) -> np.ndarray:
    """Whether the open cells of bool[..., n, n] form one tree (4-neighbourhood), bool[...]:
    connected, with one neighbouring pair fewer than cells."""
    open_cells = np.asarray(open_cells, dtype=bool)
    nodes = open_cells.sum(axis=(-2, -1))
    return is_connected(open_cells) & (neighbour_pairs(open_cells) == nodes - 1)


def enumerate_tree_layouts(size: int = LAYOUT_SIZE, n_walls: int = N_WALLS) -> np.ndarray:
    """Every placement of `n_walls` interior blocks whose open cells form a tree.

    Returns bool[L, size - 2, size - 2] interior wall masks indexed [x, y], in lexicographic
    order of the blocks' flat indices (x * (size - 2) + y). About a second for the 7x7 grid.
    """
    interior = size - 2
    cells = interior * interior
    if not 0 <= n_walls <= cells - 1:
        raise ValueError(f"n_walls must lie in 0..{cells - 1}, got {n_walls}")
    combos = np.array(list(itertools.combinations(range(cells), n_walls)), dtype=np.int64)
    combos = combos.reshape(-1, n_walls)
    walls = np.zeros((len(combos), cells), dtype=bool)
    walls[np.arange(len(combos))[:, None], combos] = True
    walls = walls.reshape(-1, interior, interior)
    # Cheap first cut: a tree has exactly one neighbouring pair fewer than open cells.
    walls = walls[neighbour_pairs(~walls) == cells - n_walls - 1]
    return walls[is_tree(~walls)]


@cache
def load_tree_layouts(n_walls: int = N_WALLS) -> np.ndarray:
    """The shipped 7x7 layouts of `n_walls` blocks (7, SPEC §3, or 8, the original's), bool[L,
    5, 5] interior walls indexed [x, y], L = `LAYOUT_COUNTS[n_walls]` (read once)."""
    if n_walls not in DATA_FILES:
        raise ValueError(
            f"tree layouts are shipped for {sorted(DATA_FILES)} walls, got {n_walls!r}"
        )
    with resources.files("internalize.envs.data").joinpath(DATA_FILES[n_walls]).open("rb") as file:
        layouts = np.load(file)
    layouts.setflags(write=False)
    return layouts


def check_tree_walls(walls, size: int = LAYOUT_SIZE, n_walls: int = N_WALLS) -> np.ndarray:
    """Interior wall cells `[(x, y), ...]` -> bool[size, size] mask, checked for the boulder world.

    Raises ValueError naming the problem: a cell outside the interior or listed twice, a count
    other than `n_walls`, open cells that are not connected, or open cells with a cycle.
    """
    mask = walls_mask(walls, size)
    count = int(mask.sum())
    if count != n_walls:
        raise ValueError(f"the boulder world has {n_walls} wall blocks, got {count}")
    open_cells = ~(mask | border_mask(size))[1:-1, 1:-1]
    if not is_connected(open_cells):
        raise ValueError("the layout is not a tree: its open cells are not all connected")
    nodes, pairs = int(open_cells.sum()), int(neighbour_pairs(open_cells))
    if pairs != nodes - 1:
        raise ValueError(
            f"the layout is not a tree: its {nodes} open cells have {pairs} neighbouring pairs, "
            "so they form a cycle (a tree has one pair fewer than cells)"
        )
    return mask


def symmetries(layout: np.ndarray) -> list[np.ndarray]:
    """The 8 rotations and reflections of a square mask bool[n, n] (with repeats if symmetric)."""
    turns = [np.rot90(layout, k) for k in range(4)]
    return turns + [np.flip(turn, axis=0) for turn in turns]


def _write_data_file(path, n_walls: int = N_WALLS) -> None:  # pragma: no cover - run by hand
    """Regenerate the shipped data: `python -c 'from internalize.envs.tree_layouts import
    _write_data_file as w; w("src/internalize/envs/data/boulder_tree_layouts.npy")'` (and
    `w("src/internalize/envs/data/boulder_tree_layouts_8.npy", 8)`)."""
    np.save(path, enumerate_tree_layouts(n_walls=n_walls))
