"""ISR ensembles: k ISRs and one aggregated reward, an ISR that knows what it does not know.

An ensemble's parameters are one pytree, `{"members": member params with a leading axis [k],
"aggregation": {"mean": a, "min": b, "penalty": lam}}`, and its reward is

    a * mean_i r_i + b * min_i r_i - lam * var_i r_i

over the members' predictions r_i (`var` with ddof 0). The three aggregations are points of
that form: `mean` (1, 0, 0), `min`, the worst case (0, 1, 0), and `uwo`, uncertainty-weighted
(1, 0, lam) (Coste et al. 2024). The coefficients are leaves, so runs that aggregate one trained
ensemble differently share one compiled call (`with_aggregation`). Members are trained by
`internalize.isr.train.make_isr_train` when `ISRConfig.members > 1`, from independent
initialisations and bootstrap resamples of the data; an ISR threshold, where one is set, applies
to the aggregated reward (`internalize.social.rewards.ISRReward`).
"""

from typing import Any

import jax
import jax.numpy as jnp

AGGREGATIONS = ("mean", "min", "uwo")


def aggregation_weights(aggregation: str, penalty: float) -> dict[str, jax.Array]:
    """The coefficients (float32 scalars) of `aggregation` with the uwo penalty `penalty`."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown ISR aggregation {aggregation!r}; known: {list(AGGREGATIONS)}")
    mean, worst, lam = {
        "mean": (1.0, 0.0, 0.0),
        "min": (0.0, 1.0, 0.0),
        "uwo": (1.0, 0.0, penalty),
    }[aggregation]
    return {
        name: jnp.float32(value)
        for name, value in zip(("mean", "min", "penalty"), (mean, worst, lam), strict=True)
    }


def is_ensemble(params: Any) -> bool:
    """Whether `params` are an ensemble's (see the module) rather than one network's."""
    return isinstance(params, dict) and "members" in params


def with_aggregation(params: Any, aggregation: str, penalty: float) -> dict:
    """The ensemble `params` aggregated by `aggregation` instead (the members unchanged).
    Without a leading run axis; `jax.vmap` it, or broadcast the result, for many runs."""
    if not is_ensemble(params):
        raise ValueError("with_aggregation needs an ensemble's parameters (ISRConfig.members > 1)")
    return {"members": params["members"], "aggregation": aggregation_weights(aggregation, penalty)}


def member_predictions(network, params: dict, obs, action, partner=None) -> jax.Array:
    """float32[k, ...]: each member's prediction."""
    return jax.vmap(lambda member: network.apply(member, obs, action, partner))(params["members"])


def aggregate(values: jax.Array, weights: dict) -> jax.Array:
    """The aggregated reward of member predictions `values` [k, ...]."""
    return (
        weights["mean"] * values.mean(0)
        + weights["min"] * values.min(0)
        - weights["penalty"] * values.var(0)
    )


def predict(network, params: Any, obs, action, partner=None) -> jax.Array:
    """The reward of one ISR network, or of an ensemble aggregated, for (obs, action)."""
    if not is_ensemble(params):
        return network.apply(params, obs, action, partner)
    return aggregate(
        member_predictions(network, params, obs, action, partner), params["aggregation"]
    )


def disagreement(network, params: dict, obs, action, partner=None) -> jax.Array:
    """The standard deviation (ddof 0) of the members' predictions: what the ensemble does not
    know."""
    return member_predictions(network, params, obs, action, partner).std(0)
