"""Small environments with exactly known behaviour, for tests."""

import jax.numpy as jnp

from pgax.envs.core import JaxEnv, Transition
from pgax.spaces import Box, Discrete


def counter_env(time_limit: int = 5, terminate_on_action: int | None = None) -> JaxEnv:
    """obs = [t / 10], reward 1 per step; truncated after `time_limit` steps; optionally
    terminates when `terminate_on_action` is taken. Two actions."""

    def reset(key):
        return jnp.zeros(1), jnp.zeros((), jnp.int32)

    def step(key, t, action):
        t_next = t + 1
        terminated = jnp.asarray(False) if terminate_on_action is None else action == terminate_on_action
        truncated = (t_next >= time_limit) & ~terminated
        done = terminated | truncated
        final_obs = jnp.full(1, t_next / 10.0)
        new_t = jnp.where(done, 0, t_next)
        return Transition(obs=jnp.where(done, jnp.zeros(1), final_obs), state=new_t, reward=jnp.ones(()),
                          terminated=terminated, truncated=truncated, final_obs=final_obs, info={})

    return JaxEnv("Counter", reset, step, Box.from_bounds((1,), 0.0, 10.0), Discrete(2), time_limit)
