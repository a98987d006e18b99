"""The original learner: Stable-Baselines3 PPO on the MiniGrid goals gridworld (SPEC §2, §4).

This is the reference for the speed and the learning curve of the JAX PPO. It builds the policy
learner of the original work as SPEC §4 gives it: `PPO("CnnPolicy")` with a small convolutional
feature extractor (Conv 2x2 16 -> Conv 2x2 32 -> Conv 2x2 64 -> Linear 128, ReLU after each),
SB3's 64-64 tanh actor and critic heads, and the published hyperparameters, on one
`MiniGridGoals` environment (3 random blocks, 20-step episodes, reward `R_e + R_s`: the
caregiver is present throughout, as in socialization).

What SB3 does on its own, and the JAX `paper` preset has to mirror:

* The observation space `Box(0, 255, (9, 9, 4), uint8)` passes `is_image_space`, so SB3 wraps the
  vectorized env in `VecTransposeImage` (channels last -> channels first, `(4, 9, 9)`, no spatial
  change) and the policy divides observations by 255 (`normalize_images=True`).
* Orthogonal initialization with zero biases: gain sqrt(2) for the feature extractor and the
  64-64 heads, 0.01 for the action logits, 1 for the value output. Adam with eps 1e-5.
  Advantages normalized per minibatch. Truncated episodes bootstrap with `gamma * V(s_last)`.

A callback records, for every rollout of 2,048 steps, goals reached per episode and the true
return per episode (`R_e + R_s`), both as rollout totals scaled by `20 / steps`.

`--preset NAME` builds instead SB3 doing the work of one of our JAX presets
(`internalize.learners.ppo.PRESETS`), for a like-for-like speed comparison
(`benchmarks/train_speed.py`): the preset's network (`mlp`: the observation flattened, scaled,
one Linear + ReLU layer shared by the tanh heads; `paper_cnn`: the convolutions above), its
trunk and head widths and observation scale, `num_envs` environments in SB3's `DummyVecEnv`
(stepped in turn in one process), and its `num_steps`, minibatch size, epochs, learning rate,
Adam epsilon, discount, GAE lambda, clip range and loss coefficients. `--preset paper` does
the work of the model above (its extractor, not SB3, divides by 255).

    python benchmarks/sb3_goals.py --steps 4096 --seed 1234 --threads 1
    python benchmarks/sb3_goals.py --steps 122880 --seed 1234 --threads 1 \\
        --out benchmarks/results/sb3_paper_seed1234.json
    python benchmarks/sb3_goals.py --steps 8192 --preset fast

It needs `torch` and `stable-baselines3` (not dependencies of the package) besides `minigrid`;
`--preset` also imports the package's JAX learner (for the preset's settings).
"""

import argparse
import json
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from internalize.reference.minigrid_goals import MiniGridGoals

PPO_KWARGS: dict[str, Any] = {
    "learning_rate": 1e-4,
    "n_steps": 2048,
    "batch_size": 64,
    "n_epochs": 10,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
}
"""SPEC §4's hyperparameters; everything else is SB3's default."""


class GoalsCNN(BaseFeaturesExtractor):
    """SPEC §4's feature extractor: three 2x2 convolutions (16, 32, 64), then Linear 128.

    SB3 hands it observations already channel-first and divided by 255, shape `(B, 4, 9, 9)`;
    the convolutions (stride 1, no padding) leave `64 x 6 x 6` features to flatten. With SB3's
    `normalize_images=False`, `obs_scale` scales them instead (a preset's `obs_scale`).
    """

    def __init__(
        self, observation_space: gym.spaces.Box, features_dim: int = 128, obs_scale: float = 1.0
    ) -> None:
        super().__init__(observation_space, features_dim)
        self.obs_scale = obs_scale
        channels = observation_space.shape[0]
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=2),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=2),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=2),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            sample = torch.as_tensor(observation_space.sample()[None]).float()
            n_flat = self.cnn(sample).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        if self.obs_scale != 1.0:  # SPEC §4's model leaves the scaling to SB3
            observations = observations * self.obs_scale
        return self.linear(self.cnn(observations))


class GoalsMLP(BaseFeaturesExtractor):
    """The `mlp` network's shared layer (the `fast` preset): the observation flattened, scaled
    by `obs_scale`, then Linear `features_dim` and ReLU; SB3's tanh heads follow.

    SB3 hands it observations channel-first, `(B, 4, 9, 9)`, as floats (with
    `normalize_images=False`); the flattening order differs from the JAX network's
    (height, width, channel), which permutes the inputs and changes nothing else.
    """

    def __init__(
        self, observation_space: gym.spaces.Box, features_dim: int = 64, obs_scale: float = 0.1
    ) -> None:
        super().__init__(observation_space, features_dim)
        self.obs_scale = obs_scale
        inputs = int(np.prod(observation_space.shape))
        self.linear = nn.Sequential(nn.Flatten(), nn.Linear(inputs, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(observations * self.obs_scale)


FEATURE_EXTRACTORS = {"paper_cnn": GoalsCNN, "mlp": GoalsMLP}
"""SB3 feature extractors by the JAX network name (`PPOConfig.network`)."""


def make_model(seed: int, n_blocks: int = 3) -> PPO:
    """SB3 PPO as in the original work, on one `MiniGridGoals` wrapped in a `Monitor`."""
    env = Monitor(MiniGridGoals(n_blocks=n_blocks))
    policy_kwargs = {
        "features_extractor_class": GoalsCNN,
        "features_extractor_kwargs": {"features_dim": 128},
        "net_arch": {"pi": [64, 64], "vf": [64, 64]},
        "activation_fn": nn.Tanh,
    }
    return PPO(
        "CnnPolicy",
        env,
        policy_kwargs=policy_kwargs,
        device="cpu",
        seed=seed,
        verbose=0,
        **PPO_KWARGS,
    )


def make_preset_model(preset: str, seed: int, n_blocks: int = 3) -> PPO:
    """SB3 PPO doing the work of the JAX preset `preset` (see the module doc) on
    `config.num_envs` `MiniGridGoals`, each wrapped in a `Monitor`, in a `DummyVecEnv`."""
    from internalize.learners.ppo import PRESETS

    config = PRESETS[preset]
    env = make_vec_env(
        MiniGridGoals, n_envs=config.num_envs, seed=seed, env_kwargs={"n_blocks": n_blocks}
    )
    policy_kwargs = {
        "features_extractor_class": FEATURE_EXTRACTORS[config.network],
        "features_extractor_kwargs": {
            "features_dim": config.trunk_width,
            "obs_scale": config.obs_scale,
        },
        "normalize_images": False,  # the extractor scales by the preset's obs_scale
        "net_arch": {"pi": list(config.head_widths), "vf": list(config.head_widths)},
        "activation_fn": nn.Tanh,
        "optimizer_kwargs": {"eps": config.adam_eps},
    }
    return PPO(
        "CnnPolicy" if config.network == "paper_cnn" else "MlpPolicy",
        env,
        policy_kwargs=policy_kwargs,
        device="cpu",
        seed=seed,
        verbose=0,
        learning_rate=config.learning_rate,
        n_steps=config.num_steps,
        batch_size=config.minibatch_size,
        n_epochs=config.num_epochs,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        clip_range=config.clip_eps,
        ent_coef=config.ent_coef,
        vf_coef=config.vf_coef,
        max_grad_norm=config.max_grad_norm,
    )


class RolloutCurve(BaseCallback):
    """Per rollout: goals reached and true return (`R_e + R_s`), both per episode.

    Rollout totals are scaled by `episode_steps / steps`, so a rollout that does not split into
    whole episodes still reads as a per-episode rate. Reward is read in `_on_step`, before SB3
    adds the bootstrap value of truncated episodes to it.
    """

    def __init__(self, episode_steps: int = 20) -> None:
        super().__init__()
        self.episode_steps = episode_steps
        self.curve: list[dict[str, float]] = []
        self._start = 0.0
        self._reset_counts()

    def _reset_counts(self) -> None:
        self._steps = 0
        self._goals = 0
        self._reward = 0.0

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()

    def _on_rollout_start(self) -> None:
        self._reset_counts()

    def _on_step(self) -> bool:
        for info, reward in zip(self.locals["infos"], self.locals["rewards"], strict=True):
            self._steps += 1
            self._goals += int(info["goal_reached"])
            self._reward += float(reward)
        return True

    def _on_rollout_end(self) -> None:
        scale = self.episode_steps / max(self._steps, 1)
        self.curve.append(
            {
                "rollout": len(self.curve) + 1,
                "timesteps": int(self.num_timesteps),
                "goals_per_episode": self._goals * scale,
                "return_per_episode": self._reward * scale,
                "seconds": time.perf_counter() - self._start,
            }
        )


def train_speed(
    total_steps: int, seed: int, threads: int, preset: str | None = None
) -> dict[str, Any]:
    """Builds the model (not timed), then times `model.learn(total_steps)` on `threads` threads.

    The model is SPEC §4's (`make_model`), or with `preset` SB3 doing that JAX preset's work
    (`make_preset_model`). `seconds` covers rollouts and updates alike; `curve[i]["seconds"]` is
    the wall time at the end of rollout `i` (before its update).
    """
    torch.set_num_threads(threads)
    model = make_model(seed) if preset is None else make_preset_model(preset, seed)
    callback = RolloutCurve(episode_steps=model.get_env().get_attr("max_steps")[0])
    start = time.perf_counter()
    model.learn(total_timesteps=total_steps, callback=callback)
    seconds = time.perf_counter() - start
    return {
        "total_steps": int(model.num_timesteps),
        "seconds": seconds,
        "steps_per_second": model.num_timesteps / seconds,
        "threads": threads,
        "seed": seed,
        "preset": preset,
        "num_envs": model.n_envs,
        "n_steps": model.n_steps,
        "batch_size": model.batch_size,
        "n_epochs": model.n_epochs,
        "learning_rate": model.learning_rate,
        "parameters": sum(p.numel() for p in model.policy.parameters()),
        "curve": callback.curve,
    }


def meta() -> dict[str, Any]:
    """Machine and versions, to repeat and compare runs."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "stable_baselines3": version("stable-baselines3"),
        "minigrid": version("minigrid"),
        "gymnasium": version("gymnasium"),
        "numpy": version("numpy"),
        "ppo_kwargs": PPO_KWARGS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--steps", type=int, default=4096, help="environment steps to train")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument(
        "--preset", default=None, help="do the work of this JAX preset instead (fast, fast-cnn)"
    )
    args = parser.parse_args()
    machine = meta()
    if args.preset is not None:
        machine.pop("ppo_kwargs")  # SPEC §4's; the preset's settings are in the result
    result = {**machine, **train_speed(args.steps, args.seed, args.threads, args.preset)}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
