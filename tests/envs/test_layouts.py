import numpy as np
import pytest

from internalize.envs.layouts import NAMED_LAYOUTS, border_mask, named_layout, walls_mask


def test_named_layouts_are_the_papers_five_blocks():
    assert set(NAMED_LAYOUTS) == {"plus", "x", "U", "T", "four_rooms"}
    for name in NAMED_LAYOUTS:
        mask = named_layout(name)
        assert mask.sum() == 5
        assert not (mask & border_mask(7)).any()
    assert named_layout("plus")[3, 2] and named_layout("plus")[2, 3]
    assert named_layout("four_rooms")[3, 1] and named_layout("four_rooms")[5, 3]


def test_border_mask():
    mask = border_mask(5)
    assert mask.sum() == 16 and not mask[1:-1, 1:-1].any()


@pytest.mark.parametrize(
    ("walls", "message"),
    [
        ([(0, 3)], "outside the interior"),
        ([(6, 3)], "outside the interior"),
        ([(3, 3), (3, 3)], "listed twice"),
        ([(3,)], "pair of integers"),
        ([(x, y) for x in range(1, 6) for y in range(1, 6)][:24], "free interior cell"),
    ],
)
def test_bad_walls_are_named(walls, message):
    with pytest.raises(ValueError, match=message):
        walls_mask(walls, 7)


def test_unknown_or_misfit_layout_name():
    with pytest.raises(ValueError, match="unknown layout 'L'.*plus"):
        named_layout("L")
    with pytest.raises(ValueError, match="drawn for a 7x7 grid"):
        named_layout("plus", 9)


def test_walls_mask_is_indexed_x_then_y():
    mask = walls_mask([(1, 4)], 7)
    assert mask[1, 4] and not mask[4, 1]
    assert np.argwhere(mask).tolist() == [[1, 4]]
