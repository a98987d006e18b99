"""internalize: value internalization from social reward, in JAX.

Importing the package registers `internalize/Goals-v0` and `internalize/Boulder-v0` with
Gymnasium.
"""

import gymnasium as _gymnasium

__version__ = "0.1.0"

GOALS_ENV_ID = "internalize/Goals-v0"
BOULDER_ENV_ID = "internalize/Boulder-v0"

if GOALS_ENV_ID not in _gymnasium.registry:
    _gymnasium.register(id=GOALS_ENV_ID, entry_point="internalize.adapters.gymnasium:GoalsGymEnv")
if BOULDER_ENV_ID not in _gymnasium.registry:
    _gymnasium.register(
        id=BOULDER_ENV_ID, entry_point="internalize.adapters.gymnasium:BoulderGymEnv"
    )
