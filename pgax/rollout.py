"""Rollout drivers: turn (policy, environment) into a `Batch`.

Layer 3. `scan_rollout` is the JAX-native driver: `num_envs` environments vmapped, `num_steps`
steps in a `lax.scan`, jittable end to end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from pgax.batch import Batch
from pgax.envs.core import JaxEnv


def vector_reset(env: JaxEnv, key: jax.Array, num_envs: int):
    """Reset `num_envs` environments: returns (obs [N, obs_dim], env_state with leading axis N)."""
    return jax.vmap(env.reset)(jax.random.split(key, num_envs))


def scan_rollout(act: Callable, params: Any, env: JaxEnv, env_state: Any, obs: jax.Array, key: jax.Array,
                 num_steps: int, record_env_state: bool = False) -> tuple[Batch, Any, jax.Array, dict]:
    """Run `num_steps` steps of the policy in N vmapped environments.

    Args:
        act: `act(params, obs [N, obs_dim], key) -> (action [N, ...], log_prob [N])`.
        env_state, obs: current states and observations of the N environments.
        record_env_state: also return the state acted in at each step as `batch.env_state` ([T, N] leading axes).
    Returns:
        (batch with leaves [T, N, ...], final env_state, final obs [N, obs_dim], info [T, N] dict).
    """
    num_envs = obs.shape[0]
    vector_step = jax.vmap(env.step)

    def step(carry, step_key):
        env_state, obs = carry
        act_key, env_key = jax.random.split(step_key)
        action, log_prob = act(params, obs, act_key)
        t = vector_step(jax.random.split(env_key, num_envs), env_state, action)
        record = Batch(obs=obs, action=action, reward=t.reward, terminated=t.terminated, truncated=t.truncated,
                       next_obs=t.final_obs, log_prob=log_prob, env_state=env_state if record_env_state else None)
        return (t.state, t.obs), (record, t.info)

    (env_state, obs), (batch, info) = jax.lax.scan(step, (env_state, obs), jax.random.split(key, num_steps))
    return batch, env_state, obs, info
