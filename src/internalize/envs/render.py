"""RGB pictures of gridworld states, in numpy (outside jit), for figures and GIFs."""

import numpy as np

from internalize.envs.constants import TILE_RGB, Tile
from internalize.envs.goals import GoalsState

GRID_LINE_RGB = (40, 40, 40)

# The agent: a triangle pointing right in tile units, rotated a quarter turn per heading.
_AGENT_TRIANGLE = np.array([(0.15, 0.2), (0.85, 0.5), (0.15, 0.8)])


def _triangle_mask(tile_size: int, heading: int) -> np.ndarray:
    """Pixels of a tile inside the agent's triangle, bool[tile_size, tile_size] indexed [y, x]."""
    angle = heading * np.pi / 2  # headings turn clockwise on screen, as y grows downwards
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = (_AGENT_TRIANGLE - 0.5) @ rotation.T + 0.5
    centres = (np.arange(tile_size) + 0.5) / tile_size
    px, py = np.meshgrid(centres, centres, indexing="xy")
    signs = []
    for (x0, y0), (x1, y1) in zip(corners, np.roll(corners, -1, axis=0), strict=True):
        signs.append((x1 - x0) * (py - y0) - (y1 - y0) * (px - x0))
    signs = np.stack(signs)
    return np.all(signs >= 0, axis=0) | np.all(signs <= 0, axis=0)


def render_goals(state: GoalsState, tile_size: int = 32) -> np.ndarray:
    """Picture of one (unbatched) goals-gridworld state, uint8[size * tile, size * tile, 3].

    Walls grey, goal green, agent a red triangle pointing along its heading, MiniGrid's palette.
    """
    if tile_size < 4:
        raise ValueError(f"tile_size must be at least 4 pixels, got {tile_size}")
    walls = np.asarray(state.walls)
    if walls.ndim != 2:
        raise ValueError(f"render_goals takes one state, got walls of shape {walls.shape}")
    tiles = np.where(walls, Tile.WALL, Tile.EMPTY)
    gx, gy = np.asarray(state.goal)
    tiles[gx, gy] = Tile.GOAL
    palette = np.zeros((max(Tile) + 1, 3), np.uint8)
    for tile, rgb in TILE_RGB.items():
        palette[tile] = rgb
    # tiles is indexed [x, y]; images are [row = y, column = x].
    image = np.repeat(np.repeat(palette[tiles.T], tile_size, axis=0), tile_size, axis=1)
    image[::tile_size, :] = GRID_LINE_RGB
    image[:, ::tile_size] = GRID_LINE_RGB
    ax, ay = np.asarray(state.agent)
    tile = image[ay * tile_size : (ay + 1) * tile_size, ax * tile_size : (ax + 1) * tile_size]
    tile[_triangle_mask(tile_size, int(state.heading))] = TILE_RGB[Tile.AGENT]
    return image


BOULDER_RGB = (160, 110, 40)
PARTNER_RGB = (0, 90, 255)


def _disc_mask(tile_size: int, radius: float) -> np.ndarray:
    """Pixels of a tile within `radius` (tile units) of its centre, bool[tile_size, tile_size]."""
    centres = (np.arange(tile_size) + 0.5) / tile_size - 0.5
    return centres[:, None] ** 2 + centres[None, :] ** 2 <= radius**2


def render_boulder(state, tile_size: int = 32) -> np.ndarray:
    """Picture of one (unbatched) boulder-world state, uint8[size * tile, size * tile, 3].

    Walls grey, the partner's goal green, the boulder a brown disc (drawn small on the learner
    while carried), the partner a blue disc, the learner a red triangle along its heading.
    """
    if tile_size < 4:
        raise ValueError(f"tile_size must be at least 4 pixels, got {tile_size}")
    walls = np.asarray(state.walls)
    if walls.ndim != 2:
        raise ValueError(f"render_boulder takes one state, got walls of shape {walls.shape}")
    tiles = np.where(walls, Tile.WALL, Tile.EMPTY)
    gx, gy = np.asarray(state.goal)
    tiles[gx, gy] = Tile.GOAL
    palette = np.zeros((max(Tile) + 1, 3), np.uint8)
    for tile, rgb in TILE_RGB.items():
        palette[tile] = rgb
    image = np.repeat(np.repeat(palette[tiles.T], tile_size, axis=0), tile_size, axis=1)
    image[::tile_size, :] = GRID_LINE_RGB
    image[:, ::tile_size] = GRID_LINE_RGB

    def tile_at(cell) -> np.ndarray:
        x, y = (int(c) for c in np.asarray(cell))
        return image[y * tile_size : (y + 1) * tile_size, x * tile_size : (x + 1) * tile_size]

    carrying = bool(state.carrying)
    if not carrying:
        tile_at(state.boulder)[_disc_mask(tile_size, 0.38)] = BOULDER_RGB
    tile_at(state.partner)[_disc_mask(tile_size, 0.32)] = PARTNER_RGB
    learner = tile_at(state.learner)
    learner[_triangle_mask(tile_size, int(state.heading))] = TILE_RGB[Tile.AGENT]
    if carrying:
        learner[_disc_mask(tile_size, 0.15)] = BOULDER_RGB
    return image
