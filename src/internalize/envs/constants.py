"""Named constants shared by the gridworlds: tiles, colours, headings and actions.

Tile and colour indices are MiniGrid's (`minigrid.core.constants.OBJECT_TO_IDX` and
`COLOR_TO_IDX`), so observations encode cells exactly as MiniGrid's `grid.encode()` does.
"""

from enum import IntEnum

import numpy as np


class Tile(IntEnum):
    """Object index of a cell (MiniGrid's `OBJECT_TO_IDX`)."""

    UNSEEN = 0
    EMPTY = 1
    WALL = 2
    FLOOR = 3
    DOOR = 4
    KEY = 5
    BALL = 6
    BOX = 7
    GOAL = 8
    LAVA = 9
    AGENT = 10


class Color(IntEnum):
    """Colour index of a cell (MiniGrid's `COLOR_TO_IDX`)."""

    RED = 0
    GREEN = 1
    BLUE = 2
    PURPLE = 3
    YELLOW = 4
    GREY = 5


class Heading(IntEnum):
    """Direction the agent faces (MiniGrid's `agent_dir`); x grows rightwards, y downwards."""

    RIGHT = 0
    DOWN = 1
    LEFT = 2
    UP = 3


class Action(IntEnum):
    """Actions of the goals gridworld (MiniGrid's first three actions)."""

    LEFT = 0
    """Turn left (counter-clockwise)."""
    RIGHT = 1
    """Turn right (clockwise)."""
    FORWARD = 2
    """Step into the cell ahead unless it is a wall."""


NUM_HEADINGS = 4

HEADING_TO_VEC = np.array([(1, 0), (0, 1), (-1, 0), (0, -1)], dtype=np.int32)
"""(dx, dy) of one step forward for each heading, int32[4, 2]."""

TILE_RGB = {
    Tile.EMPTY: (0, 0, 0),
    Tile.WALL: (100, 100, 100),
    Tile.GOAL: (0, 255, 0),
    Tile.AGENT: (255, 0, 0),
}
"""Colours used by the RGB renderer, MiniGrid's palette (`minigrid.core.constants.COLORS`)."""
