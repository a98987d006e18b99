import importlib.util
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.blocks import SQRT2, Conv2x2, orthogonal
from internalize.learners.networks import NETWORKS, MlpActorCritic, PaperActorCritic

KEY = jax.random.key(0)
OBS_SHAPE = (9, 9, 4)
ROOT = Path(__file__).resolve().parents[2]


def count(params) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))


def singular_values(kernel) -> np.ndarray:
    """Singular values of a kernel seen as a matrix (all input axes x output features)."""
    kernel = np.asarray(kernel, np.float64)
    return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)


# ---------------------------------------------------------------------------- Conv2x2


@pytest.mark.parametrize("batch", [(), (3,), (2, 5)])
def test_conv2x2_equals_flax_conv_and_lax_conv(batch):
    key_x, key_k, key_b = jax.random.split(KEY, 3)
    x = jax.random.normal(key_x, (*batch, 7, 6, 5))
    kernel = jax.random.normal(key_k, (2, 2, 5, 8))
    bias = jax.random.normal(key_b, (8,))
    params = {"params": {"kernel": kernel, "bias": bias}}

    ours = jax.jit(Conv2x2(8).apply)(params, x)
    assert ours.shape == (*batch, 6, 5, 8)

    flat = x.reshape(-1, 7, 6, 5)
    flax_conv = jax.jit(nn.Conv(8, (2, 2), padding="VALID").apply)(params, flat)
    lax_conv = (
        jax.lax.conv_general_dilated(
            flat,
            kernel,
            window_strides=(1, 1),
            padding="VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=jax.lax.Precision.HIGHEST,
        )
        + bias
    )
    np.testing.assert_allclose(ours.reshape(flat.shape[0], 6, 5, 8), flax_conv, atol=1e-4)
    np.testing.assert_allclose(ours.reshape(flat.shape[0], 6, 5, 8), lax_conv, atol=1e-4)


def test_conv2x2_by_hand():
    """One channel, one feature: each output is the weighted sum of its 2x2 patch plus bias."""
    x = jnp.arange(9.0).reshape(3, 3, 1)
    kernel = jnp.asarray([[1.0, 10.0], [100.0, 1000.0]]).reshape(2, 2, 1, 1)
    params = {"params": {"kernel": kernel, "bias": jnp.asarray([0.5])}}
    out = Conv2x2(1).apply(params, x)[..., 0]
    # Top-left patch [[0, 1], [3, 4]]: 0 + 10 + 300 + 4000 + 0.5.
    expected = np.array([[4310.5, 5421.5], [7643.5, 8754.5]])
    np.testing.assert_allclose(out, expected)


def test_conv2x2_init_orthogonal_with_gain_and_zero_bias():
    params = Conv2x2(16, gain=0.5).init(KEY, jnp.zeros((9, 9, 4)))["params"]
    assert params["kernel"].shape == (2, 2, 4, 16)
    np.testing.assert_allclose(singular_values(params["kernel"]), 0.5, rtol=1e-5)
    np.testing.assert_array_equal(params["bias"], 0.0)


# ---------------------------------------------------------------------- PaperActorCritic


@pytest.fixture(scope="module")
def paper_params():
    return jax.jit(PaperActorCritic(num_actions=3).init)(KEY, jnp.zeros(OBS_SHAPE))


def test_paper_network_has_sb3s_parameter_count(paper_params):
    sizes = {
        "/".join(str(getattr(k, "key", k)) for k in path): int(np.prod(leaf.shape))
        for path, leaf in jax.tree_util.tree_leaves_with_path(paper_params["params"])
    }
    conv = [sizes[f"Conv2x2_{i}/kernel"] + sizes[f"Conv2x2_{i}/bias"] for i in range(3)]
    assert conv == [272, 2_080, 8_256]
    assert sizes["Dense_0/kernel"] + sizes["Dense_0/bias"] == 2_304 * 128 + 128 == 295_040
    assert count(paper_params) == 272 + 2_080 + 8_256 + 295_040 + 2 * 12_416 + 195 + 65
    assert count(paper_params) == 330_740


@pytest.mark.parametrize("batch", [(), (5,), (2, 3)])
@pytest.mark.parametrize("module", [PaperActorCritic, MlpActorCritic])
def test_output_shapes(module, batch):
    obs = jax.random.uniform(KEY, (*batch, *OBS_SHAPE))
    network = module(num_actions=3)
    logits, value = jax.jit(network.apply)(jax.jit(network.init)(KEY, obs), obs)
    assert logits.shape == (*batch, 3) and logits.dtype == jnp.float32
    assert value.shape == batch and value.dtype == jnp.float32


def test_batched_equals_one_by_one(paper_params):
    obs = jax.random.uniform(KEY, (4, *OBS_SHAPE))
    apply = jax.jit(PaperActorCritic(num_actions=3).apply)
    logits, value = apply(paper_params, obs)
    for i in range(4):
        one_logits, one_value = apply(paper_params, obs[i])
        np.testing.assert_allclose(logits[i], one_logits, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(value[i], one_value, rtol=1e-5, atol=1e-6)


def test_paper_network_init_gains(paper_params):
    """SB3's init: orthogonal, gain sqrt 2 in the trunk and hidden heads, 0.01 for the logits,
    1 for the value; all biases zero."""
    p = paper_params["params"]
    # Dense_0 is the trunk; Dense_1..3 the policy head (64, 64, logits); Dense_4..6 the value.
    for name in ["Conv2x2_0", "Conv2x2_1", "Conv2x2_2", "Dense_0", "Dense_1", "Dense_2"]:
        np.testing.assert_allclose(singular_values(p[name]["kernel"]), SQRT2, rtol=1e-5)
    for name in ["Dense_4", "Dense_5"]:
        np.testing.assert_allclose(singular_values(p[name]["kernel"]), SQRT2, rtol=1e-5)
    assert p["Dense_3"]["kernel"].shape == (64, 3)
    np.testing.assert_allclose(singular_values(p["Dense_3"]["kernel"]), 0.01, rtol=1e-5)
    assert p["Dense_6"]["kernel"].shape == (64, 1)
    np.testing.assert_allclose(singular_values(p["Dense_6"]["kernel"]), 1.0, rtol=1e-5)
    for name, layer in p.items():
        np.testing.assert_array_equal(layer["bias"], 0.0, err_msg=name)


def test_paper_network_starts_near_uniform(paper_params):
    """Logits at gain 0.01 are tiny, so the initial policy is close to uniform."""
    obs = jax.random.randint(KEY, (16, *OBS_SHAPE), 0, 11).astype(jnp.float32) / 255.0
    logits, _ = jax.jit(PaperActorCritic(num_actions=3).apply)(paper_params, obs)
    probs = np.asarray(jax.nn.softmax(logits))
    np.testing.assert_allclose(probs, 1 / 3, atol=0.01)


def test_mlp_network_init_gains():
    network = MlpActorCritic(num_actions=3, trunk_width=64, head_widths=(32,))
    p = jax.jit(network.init)(KEY, jnp.zeros(OBS_SHAPE))["params"]
    assert p["Dense_0"]["kernel"].shape == (324, 64)
    np.testing.assert_allclose(singular_values(p["Dense_0"]["kernel"]), SQRT2, rtol=1e-5)
    np.testing.assert_allclose(singular_values(p["Dense_2"]["kernel"]), 0.01, rtol=1e-5)
    np.testing.assert_allclose(singular_values(p["Dense_4"]["kernel"]), 1.0, rtol=1e-5)
    assert count(p) == 324 * 64 + 64 + (64 * 32 + 32) * 2 + 32 * 3 + 3 + 32 + 1


def test_network_names():
    assert NETWORKS == {"paper_cnn": PaperActorCritic, "mlp": MlpActorCritic}


# ------------------------------------------------------------------- against SB3 itself


def test_parameter_count_equals_the_sb3_model(paper_params):
    pytest.importorskip("torch")
    pytest.importorskip("stable_baselines3")
    pytest.importorskip("minigrid")
    spec = importlib.util.spec_from_file_location("sb3_goals", ROOT / "benchmarks/sb3_goals.py")
    sb3_goals = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sb3_goals)
    model = sb3_goals.make_model(seed=0)
    sb3_count = sum(p.numel() for p in model.policy.parameters())
    assert sb3_count == 330_740
    assert count(paper_params) == sb3_count


def test_orthogonal_draws_what_flax_draws_under_vmap_too():
    keys = jax.random.split(jax.random.key(0), 4)
    expected = np.stack([nn.initializers.orthogonal(1.5)(key, (64, 32)) for key in keys])
    draw = orthogonal(1.5)
    np.testing.assert_array_equal(draw(keys[0], (64, 32)), expected[0])
    np.testing.assert_array_equal(jax.jit(jax.vmap(lambda k: draw(k, (64, 32))))(keys), expected)
    nested = jax.jit(jax.vmap(jax.vmap(lambda k: draw(k, (64, 32)))))(keys.reshape(2, 2))
    np.testing.assert_array_equal(np.asarray(nested).reshape(4, 64, 32), expected)


VMAPPED_ISR_TRAINING = """
import jax, jax.numpy as jnp
from internalize.isr.train import ISR_PRESETS, ISRDataset, make_isr_train
runs, samples = 6, 2048
k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
dataset = ISRDataset(
    obs=jax.random.randint(k1, (runs, samples, 9, 9, 4), 0, 11).astype(jnp.uint8),
    action=jax.random.randint(k2, (runs, samples), 0, 3),
    social_reward=(jax.random.uniform(k3, (runs, samples)) < 0.05) * 0.4,
)
train = jax.jit(jax.vmap(make_isr_train(ISR_PRESETS["fast"], samples)))
jax.block_until_ready(train(jax.random.split(jax.random.key(1), runs), dataset))
print("finished")
"""


def test_vmapped_isr_training_finishes():
    """Six ISRs trained side by side with vmap: with Flax's own orthogonal initializer this hung
    for good on a 2-core CPU (3 of 3 tries; benchmarks/hang_repro.py measures the rate), its
    batched QR waiting on XLA's thread pool from inside it. A process of its own, so that a
    hang fails the test instead of the suite."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", VMAPPED_ISR_TRAINING], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "finished"
