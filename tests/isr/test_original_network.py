"""The original's ISR network (SPEC §7), one setting away: the channels-last input read as
channels-first (`isr.axes=original`) and PyTorch's default initialisation of the convolutions
(`isr.conv_init=torch`), each pinned by a case computed by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_isr import random_policy_data

from internalize.blocks import SQRT2
from internalize.envs.boulder import BoulderEnv, agent_cells
from internalize.envs.goals import GoalsEnv
from internalize.isr.model import ISRNetwork
from internalize.isr.train import ISRConfig, make_isr_train

KEY = jax.random.key(0)
ORIGINAL = ISRConfig(axes="original", conv_init="torch")


def shapes(network: ISRNetwork, obs, *actions) -> dict:
    params = network.init(KEY, obs, *actions)["params"]
    return {name: layer["kernel"].shape for name, layer in params.items()}


def test_the_original_axes_flatten_to_672_on_the_goals_world():
    # x (9) as the channels; 2x2 kernels over (y, feature): 9 x 5 -> 8 x 4 -> 7 x 3, 32 deep.
    assert shapes(ORIGINAL.network(), jnp.zeros((9, 9, 4), jnp.uint8), 0) == {
        "Conv2x2_0": (2, 2, 9, 16),
        "Conv2x2_1": (2, 2, 16, 32),
        "Dense_0": (32 * 7 * 3, 32),
        "Dense_1": (32, 32),
        "Dense_2": (32, 1),
    }
    assert 32 * 7 * 3 == 672
    # Two agents: 5 + 2 features -> 7 x 5 after two convolutions.
    boulder = BoulderEnv()
    obs = jnp.zeros(boulder.obs_shape, jnp.uint8)
    found = shapes(ORIGINAL.network(agent_cells), obs, 0, 0)
    assert found["Conv2x2_0"] == (2, 2, 9, 16) and found["Dense_0"] == (32 * 7 * 5, 32)


def test_the_original_axes_read_the_grids_first_axis_as_channels():
    """One convolution with a single weight, at kernel cell (0, 0) of input channel 2, and one
    output weight, at position (5, 0) of its 8 x 4 output: the network returns
    relu(obs[x=2, y=5, feature 0]). With the paper's axes the same weights read feature 2 of
    the cell (5, 0)."""
    obs = jax.random.randint(KEY, (16, 9, 9, 4), 0, 11).astype(jnp.uint8)
    for axes, expected in (("original", obs[:, 2, 5, 0]), ("paper", obs[:, 5, 0, 2])):
        network = ISRNetwork(conv_features=(1,), widths=(), axes=axes)
        params = jax.tree.map(jnp.zeros_like, network.init(KEY, obs[0], 0))
        channels = 9 if axes == "original" else 5
        kernel = np.zeros((2, 2, channels, 1), np.float32)
        kernel[0, 0, 2, 0] = 1.0
        width = 4 if axes == "original" else 8  # the first convolution's output: 8 x width
        dense = np.zeros((8 * width, 1), np.float32)
        dense[5 * width + 0, 0] = 1.0
        params["params"]["Conv2x2_0"]["kernel"] = jnp.asarray(kernel)
        params["params"]["Dense_0"]["kernel"] = jnp.asarray(dense)
        out = network.apply(params, obs, jnp.ones(16, jnp.int32))
        np.testing.assert_array_equal(out, np.asarray(expected, np.float32), err_msg=axes)
        assert len(set(np.asarray(expected).tolist())) > 1  # not a constant


def test_torch_init_of_the_convolutions_and_orthogonal_dense_layers():
    params = ORIGINAL.network().init(KEY, jnp.zeros((9, 9, 4), jnp.uint8), 0)["params"]
    for name, channels in (("Conv2x2_0", 9), ("Conv2x2_1", 16)):
        bound = 1.0 / np.sqrt(4 * channels)  # PyTorch: uniform in +-1/sqrt(fan_in)
        for part in ("kernel", "bias"):
            values = np.asarray(params[name][part])
            assert np.abs(values).max() <= bound, (name, part)
            assert np.abs(values).max() > 0.8 * bound and np.unique(values).size == values.size
        kernel = np.asarray(params[name]["kernel"])
        # Uniform in +-b has sd b / sqrt(3): 16 x 9 x 4 = 576 draws for the first.
        assert kernel.std() == pytest.approx(bound / np.sqrt(3), rel=0.1)
    for name in ("Dense_0", "Dense_1", "Dense_2"):  # only the Linear layers are orthogonal
        singular = np.linalg.svd(np.asarray(params[name]["kernel"], np.float64), compute_uv=False)
        np.testing.assert_allclose(singular, SQRT2, rtol=1e-5, err_msg=name)
        np.testing.assert_array_equal(params[name]["bias"], 0.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"axes": "columns"}, r"unknown ISR axes 'columns'; known: \['paper', 'original'\]"),
        ({"conv_init": "he"}, r"unknown ISR conv_init 'he'; known: \['orthogonal', 'torch'\]"),
    ],
)
def test_bad_network_settings_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        ISRConfig().replace(**changes)


def test_the_original_network_trains():
    """Trained on a random policy's steps with the goals world's social reward, the original's
    network predicts it better than before training (its test curve falls)."""
    data = random_policy_data(GoalsEnv(), jax.random.key(4), num_envs=256, num_steps=64)
    config = ORIGINAL.replace(batch_size=64, epochs=2.0, learning_rate=1e-3)
    result = jax.jit(make_isr_train(config, data.size))(jax.random.key(5), data)
    assert result.params["params"]["Dense_0"]["kernel"].shape == (672, 32)
    curve = np.asarray(result.test_curve)
    assert curve[-1] < 0.5 * curve[0], curve


def test_train_on_test_draws_from_the_test_split_too():
    """Social reward only in the test split (its last 10%): an ISR that never trains on the
    test split cannot predict it; with `train_on_test` (the original's scaling script) it
    does, and its test error is small."""
    data = random_policy_data(GoalsEnv(), jax.random.key(6), num_envs=64, num_steps=64)
    late = jnp.arange(data.size) >= int(0.9 * data.size)
    data = data.replace(social_reward=jnp.where(late, 0.5, 0.0))
    config = ISRConfig(batch_size=64, epochs=2.0, learning_rate=1e-3)
    errors = {
        flag: float(
            jax.jit(make_isr_train(config.replace(train_on_test=flag), data.size))(
                jax.random.key(7), data
            ).test_mse
        )
        for flag in (False, True)
    }
    # Without: about 0.25, predicting 0 for 0.5 (0.246 on an AMD EPYC); with: 0.055 there.
    assert errors[False] > 0.2 and errors[True] < 0.4 * errors[False], errors
