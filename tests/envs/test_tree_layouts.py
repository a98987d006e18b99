"""The boulder world's tree layouts: the exhaustive count, the shipped data and the checks."""

import numpy as np
import pytest

from internalize.envs.tree_layouts import (
    SPEC_LAYOUT_COUNT,
    check_tree_walls,
    enumerate_tree_layouts,
    is_tree,
    load_tree_layouts,
    neighbour_counts,
    symmetries,
)


@pytest.fixture(scope="module")
def generated():
    return enumerate_tree_layouts()


def test_the_generator_finds_1020_layouts_not_the_specs_62358(generated):
    """Every one of the C(25, 7) = 480,700 placements is checked; 1,020 are trees. SPEC §3's
    62,358 cannot be a count of these layouts (see `internalize.envs.tree_layouts`): it is not
    the number of induced trees of any size of the 5x5 grid either (checked below)."""
    assert generated.shape == (1020, 5, 5)
    assert SPEC_LAYOUT_COUNT == 62_358 and len(generated) != SPEC_LAYOUT_COUNT
    assert (generated.sum(axis=(1, 2)) == 7).all()
    assert is_tree(~generated).all()


def test_an_independent_count_by_bitmasks_agrees():
    """All 2**25 open sets of the 5x5 grid, as bitmasks: trees have one neighbouring pair fewer
    than cells and are connected. 1,020 trees of 18 cells (7 walls); no size has 62,358."""
    bits = np.arange(1 << 25, dtype=np.uint32)
    popcount = np.bitwise_count(bits)  # numpy >= 2.0
    along_y = sum(1 << (x * 5 + y) for x in range(5) for y in range(4))
    pairs = np.bitwise_count(bits & (bits >> 1) & along_y) + np.bitwise_count(bits & (bits >> 5))
    candidates = bits[(pairs + 1 == popcount) & (popcount > 0)].astype(np.uint64)
    reached = candidates & (~candidates + np.uint64(1))  # the lowest open cell
    for _ in range(24):
        grown = reached | ((reached & along_y) << np.uint64(1))
        grown |= (reached >> np.uint64(1)) & np.uint64(along_y)
        grown |= (reached << np.uint64(5)) | (reached >> np.uint64(5))
        reached = grown & candidates
    trees = np.bitwise_count(candidates[reached == candidates])
    by_size = np.bincount(trees, minlength=26)
    assert by_size[18] == 1020 and by_size[17] == 8445
    assert SPEC_LAYOUT_COUNT not in by_size and by_size.sum() == 277_606


def test_the_shipped_data_is_the_generators_output(generated):
    shipped = load_tree_layouts()
    assert shipped.dtype == bool
    np.testing.assert_array_equal(shipped, generated)


def test_the_originals_eight_blocks_give_8445_layouts_shipped_too():
    """The original placed 8 blocks (SPEC §7): C(25, 8) = 1,081,575 placements, 8,445 trees of
    17 cells (the bitmask count below agrees), closed under the square's symmetries; 56 of them
    are paths, with no junction."""
    eight = enumerate_tree_layouts(n_walls=8)
    assert eight.shape == (8445, 5, 5) and (eight.sum(axis=(1, 2)) == 8).all()
    np.testing.assert_array_equal(load_tree_layouts(8), eight)
    keys = {layout.tobytes() for layout in eight}
    for layout in eight[::97]:
        for image in symmetries(layout):
            assert np.ascontiguousarray(image).tobytes() in keys
    degree = neighbour_counts(~eight) * ~eight
    assert (degree.max(axis=(1, 2)) == 2).sum() == 56
    with pytest.raises(ValueError, match=r"shipped for \[7, 8\] walls, got 9"):
        load_tree_layouts(9)


def test_the_layouts_are_closed_under_the_squares_symmetries(generated):
    keys = {layout.tobytes() for layout in generated}
    for layout in generated[::17]:
        for image in symmetries(layout):
            assert np.ascontiguousarray(image).tobytes() in keys


def test_every_layout_fits_a_partner_a_goal_and_a_learner(generated):
    open_cells = ~generated
    degree = neighbour_counts(open_cells) * open_cells
    assert set(np.unique(degree.max(axis=(1, 2)))) == {3, 4}
    assert ((degree == 1) & open_cells).sum(axis=(1, 2)).min() >= 3


def test_is_tree_by_hand():
    square = np.ones((2, 2), bool)  # a cycle
    line = np.array([[True, True, True]])
    apart = np.array([[True, False, True]])
    assert list(is_tree(np.stack([line, apart]))) == [True, False]
    assert not is_tree(square)


@pytest.mark.parametrize(
    ("walls", "message"),
    [
        ([(1, 1)], "has 7 wall blocks, got 1"),
        ([(2, 2), (2, 3), (2, 4), (4, 2), (4, 3), (4, 4), (3, 3)], "not a tree: .* cycle"),
        ([(1, 2), (2, 1), (3, 3), (3, 4), (4, 3), (5, 5), (2, 5)], "not a tree"),
        ([(3, 1), (3, 2), (3, 3), (3, 4), (3, 5), (1, 1), (5, 5)], "not all connected"),
        ([(0, 1)] * 7, "outside the interior"),
    ],
)
def test_bad_layouts_are_named(walls, message):
    with pytest.raises(ValueError, match=message):
        check_tree_walls(walls)
