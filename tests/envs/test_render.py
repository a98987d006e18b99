import numpy as np
import pytest

from internalize.envs.constants import TILE_RGB, Tile
from internalize.envs.render import render_goals


def pixel(image, cell, fx=0.5, fy=0.5, tile=32):
    x, y = cell
    return tuple(image[int((y + fy) * tile), int((x + fx) * tile)])


def test_render_draws_walls_goal_and_agent(env):
    state = env.state_from_layout([(2, 4)], goal=(5, 1), agent=(3, 3), heading=0)
    image = render_goals(state)
    assert image.shape == (224, 224, 3) and image.dtype == np.uint8
    assert pixel(image, (2, 4)) == TILE_RGB[Tile.WALL]
    assert pixel(image, (0, 0)) == TILE_RGB[Tile.WALL]
    assert pixel(image, (5, 1)) == TILE_RGB[Tile.GOAL]
    assert pixel(image, (1, 1)) == TILE_RGB[Tile.EMPTY]
    assert pixel(image, (3, 3)) == TILE_RGB[Tile.AGENT]


@pytest.mark.parametrize("heading", range(4))
def test_agent_points_along_its_heading(env, heading):
    """Facing right, the triangle is wide at the left and narrow at the right; turned with it."""

    def turned(point):  # a quarter turn clockwise on screen per heading, about the tile centre
        dx, dy = point[0] - 0.5, point[1] - 0.5
        for _ in range(heading):
            dx, dy = -dy, dx
        return 0.5 + dx, 0.5 + dy

    image = render_goals(env.state_from_layout([], goal=(5, 5), agent=(2, 2), heading=heading))
    for point, colour in [
        ((0.8, 0.5), TILE_RGB[Tile.AGENT]),  # the tip
        ((0.2, 0.25), TILE_RGB[Tile.AGENT]),  # the wide end
        ((0.8, 0.25), TILE_RGB[Tile.EMPTY]),  # beside the tip
        ((0.05, 0.5), TILE_RGB[Tile.EMPTY]),  # behind
    ]:
        assert pixel(image, (2, 2), *turned(point)) == colour, point


def test_render_rejects_batches_and_tiny_tiles(env):
    import jax

    state = env.state_from_layout([], goal=(5, 5), agent=(2, 2), heading=0)
    with pytest.raises(ValueError, match="tile_size"):
        render_goals(state, tile_size=2)
    batch = jax.tree.map(lambda x: x[None], state)
    with pytest.raises(ValueError, match="one state"):
        render_goals(batch)
