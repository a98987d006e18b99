import jax
import pytest

from internalize.envs.goals import GoalsEnv


@pytest.fixture(scope="session")
def env() -> GoalsEnv:
    return GoalsEnv()


@pytest.fixture(scope="session")
def jitted(env):
    """Jitted environment functions shared across tests (compiled once per session)."""
    return {
        "reset": jax.jit(env.reset),
        "step": jax.jit(env.step),
        "observe": jax.jit(env.observe),
    }
