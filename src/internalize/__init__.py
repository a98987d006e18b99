"""internalize: value internalization from social reward, in JAX.

Importing the package registers `internalize/Goals-v0` and `internalize/Boulder-v0` with
Gymnasium, without Gymnasium's passive environment checker: after a first `reset` that raises
(options we reject), that wrapper fails every later `step` with a TypeError of its own
(Gymnasium 1.x; README, Reliability). The tests run the full `check_env` instead;
`gymnasium.make(..., disable_env_checker=False)` brings the wrapper back.
"""

import gymnasium as _gymnasium

__version__ = "0.1.0"


def load(run, condition=None, seed=None, isr=None):
    """A trained learner (`predict(obs)`) and its ISR (`isr.reward(obs, action)`) from a run
    directory: see `internalize.trained.load`."""
    from internalize.trained import load as load_trained

    return load_trained(run, condition, seed, isr)


GOALS_ENV_ID = "internalize/Goals-v0"
BOULDER_ENV_ID = "internalize/Boulder-v0"

for _id, _class in ((GOALS_ENV_ID, "GoalsGymEnv"), (BOULDER_ENV_ID, "BoulderGymEnv")):
    if _id not in _gymnasium.registry:
        _gymnasium.register(
            id=_id,
            entry_point=f"internalize.adapters.gymnasium:{_class}",
            disable_env_checker=True,
        )
