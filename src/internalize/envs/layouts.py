"""Wall layouts: the hand-picked out-of-distribution layouts and checks on user-given ones.

Coordinates are MiniGrid's `(x, y)`: `x` is the column, `y` the row, `(0, 0)` the top-left
corner of the outer wall. Layout masks are `bool[size, size]` arrays indexed `[x, y]`.
"""

import operator
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

NAMED_LAYOUTS: dict[str, tuple[tuple[int, int], ...]] = {
    "plus": ((3, 2), (2, 3), (3, 3), (4, 3), (3, 4)),
    "x": ((2, 2), (2, 4), (3, 3), (4, 2), (4, 4)),
    "U": ((2, 2), (2, 3), (3, 4), (4, 3), (4, 2)),
    "T": ((2, 2), (3, 2), (4, 2), (3, 3), (3, 4)),
    "four_rooms": ((3, 1), (1, 3), (3, 3), (5, 3), (3, 5)),
}
"""The five hand-picked 5-block layouts of the paper (SPEC §2), for the 7x7 grid."""

NAMED_LAYOUT_SIZE = 7
"""Grid size the named layouts are drawn for."""


def border_mask(size: int) -> np.ndarray:
    """The outer wall of a `size` x `size` grid, bool[size, size]."""
    mask = np.ones((size, size), dtype=bool)
    mask[1:-1, 1:-1] = False
    return mask


def check_cell(cell: Sequence[int], size: int, what: str) -> tuple[int, int]:
    """Return `cell` as an `(x, y)` tuple, or raise ValueError if it is not an interior cell.
    Coordinates must be integers (Python, NumPy or JAX): 1.7, "1" and True are refused, not
    rounded or read."""
    try:
        if isinstance(cell, str | bytes):
            raise TypeError
        x, y = (_integer(c) for c in cell)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an (x, y) pair of integers, got {cell!r}") from None
    if not (1 <= x <= size - 2 and 1 <= y <= size - 2):
        raise ValueError(
            f"{what} {(x, y)} is outside the interior of the {size}x{size} grid: "
            f"x and y must lie in 1..{size - 2}"
        )
    return x, y


def _integer(value: Any) -> int:
    """`value` as an int if it is an integer (not a bool); TypeError otherwise."""
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{value!r} is a bool")
    return operator.index(value)


def walls_mask(walls: Iterable[Sequence[int]], size: int) -> np.ndarray:
    """Interior wall blocks given as `(x, y)` cells -> bool[size, size] mask (outer wall excluded).

    Raises ValueError for a cell outside the interior, a repeated cell, or a layout that leaves
    fewer than two free cells (a goal and the agent need one each).
    """
    mask = np.zeros((size, size), dtype=bool)
    for cell in walls:
        x, y = check_cell(cell, size, "wall")
        if mask[x, y]:
            raise ValueError(f"wall {(x, y)} is listed twice")
        mask[x, y] = True
    free = (size - 2) ** 2 - int(mask.sum())
    if free < 2:
        raise ValueError(
            f"{int(mask.sum())} walls leave {free} free interior cell(s) in a {size}x{size} grid; "
            "a goal and an agent need two"
        )
    return mask


def named_layout(name: str, size: int = NAMED_LAYOUT_SIZE) -> np.ndarray:
    """The mask of a hand-picked layout (`plus`, `x`, `U`, `T`, `four_rooms`), bool[size, size]."""
    if name not in NAMED_LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; known layouts: {', '.join(NAMED_LAYOUTS)}")
    if size != NAMED_LAYOUT_SIZE:
        raise ValueError(
            f"layout {name!r} is drawn for a {NAMED_LAYOUT_SIZE}x{NAMED_LAYOUT_SIZE} grid, "
            f"not {size}x{size}"
        )
    return walls_mask(NAMED_LAYOUTS[name], size)
