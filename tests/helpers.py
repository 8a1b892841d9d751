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


# ------------------------------------------------------------------ seeds of stochastic tests

SEED_OFFSET_VARIABLE = "PGAX_TEST_SEED_OFFSET"


def seed_offset() -> int:
    """The shift `PGAX_TEST_SEED_OFFSET` (default 0) applies to the seeds of every stochastic test,
    so a run with another offset checks that no test depends on lucky seeds."""
    import os

    text = os.environ.get(SEED_OFFSET_VARIABLE, "0")
    try:
        offset = int(text)
    except ValueError:
        raise SystemExit(f"{SEED_OFFSET_VARIABLE}={text!r} is not an integer; set it to e.g. 100 or unset it")
    if offset < 0:
        raise SystemExit(f"{SEED_OFFSET_VARIABLE}={offset} is negative; use an offset >= 0")
    return offset


def seed(base: int = 0) -> int:
    """One seed for a stochastic test: `base` shifted by PGAX_TEST_SEED_OFFSET."""
    return seed_offset() + base


def seeds(count: int, base: int = 0) -> list[int]:
    """`count` consecutive seeds starting at `base`, shifted by PGAX_TEST_SEED_OFFSET."""
    return [seed(base + i) for i in range(count)]


def seeded_key(base: int = 0):
    """A PRNG key for a stochastic test: `jax.random.PRNGKey(seed(base))`."""
    import jax

    return jax.random.PRNGKey(seed(base))


def seeded_rng(base: int = 0):
    """A numpy Generator for a stochastic test: `np.random.default_rng(seed(base))`."""
    import numpy as np

    return np.random.default_rng(seed(base))


key, rng = seeded_key, seeded_rng  # short aliases (prefer the long names where `key` or `rng` is also a local)
