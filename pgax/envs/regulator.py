"""The book chapter's small continuous problems as JAX-native environments, with their exact values.

Layer 3 (running). Source: seed 004 ("Policy Gradient Optimization") and the seeds' README.

    simple_regulator(depth, clip_bound)   the simple regulator: s ∈ R, reward −s², truncated at `depth`
    single_state_gaussian(depth)          the single-state MDP of Examples 11.1 / 12.1: reward = action
    regulator_expected_return(θ, depth)   exact U(θ) of the linear Gaussian policy, *unclipped* regulator
    single_state_expected_return(θ, depth) exact U(θ) = depth · θ1 of the Gaussian policy N(θ1, θ2²)

Discounting. Both problems have γ = 1 (seed 004, Example 12.1 and the README). Environments never
discount — they only report rewards and episode ends — so algorithms run on them should be
configured with `gamma=1`; the exact returns here are undiscounted sums over the `depth` steps.

Conventions shared with every `JaxEnv`: observations are float32 vectors of shape (1,), actions
are Box shape (1,) (a scalar action of shape () is accepted too), the episode is *truncated*
(`truncated=True`, `terminated=False`) after `depth` steps, and the env auto-resets, keeping the
true successor observation in `Transition.final_obs`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import struct

from pgax.envs.core import JaxEnv, Transition
from pgax.spaces import Box

__all__ = [
    "REGULATOR_START_MEAN",
    "REGULATOR_START_STD",
    "REGULATOR_NOISE_STD",
    "REGULATOR_CLIP_BOUND",
    "REGULATOR_OPTIMAL_THETA",
    "RegulatorState",
    "simple_regulator",
    "regulator_expected_return",
    "single_state_gaussian",
    "single_state_expected_return",
]

REGULATOR_START_MEAN = 0.3
"""Mean of the start state, s0 ~ N(0.3, 0.1²) (seeds README)."""
REGULATOR_START_STD = 0.1
"""Standard deviation of the start state."""
REGULATOR_NOISE_STD = 0.1
"""Standard deviation of the transition noise, s' ~ N(s + a, 0.1²)."""
REGULATOR_CLIP_BOUND = 10.0
"""The successor state is clipped to [−10, 10] (the README's "truncated to [−10, 10]")."""
REGULATOR_OPTIMAL_THETA = (-1.0, 0.0)
"""The optimum of the linear Gaussian policy N(θ1·s, θ2²): θ = [−1, 0] (seed 004, Figures 12.1-12.5)."""


@struct.dataclass
class RegulatorState:
    """s: float32 scalar, the current state s_t.  time: int32 scalar, steps taken in this episode."""

    s: jax.Array
    time: jax.Array


def _scalar_action(action) -> jax.Array:
    """A Box (1,) action (or a scalar) as a float32 scalar."""
    return jnp.reshape(jnp.asarray(action, jnp.float32), ())


# ------------------------------------------------------------------------------ simple regulator


def simple_regulator(depth: int = 10, clip_bound: float = REGULATOR_CLIP_BOUND) -> JaxEnv:
    """The simple regulator of seed 004 (Figures 12.1, 12.2, 12.5; its README):

        s0 ~ N(0.3, 0.1²)
        s_{t+1} = clip(s_t + a_t + 0.1 ε_t, −clip_bound, clip_bound),   ε_t ~ N(0, 1)
        r_t = r(s_t, a_t) = −s_t²          (the reward of the state acted in; independent of a_t)
        γ = 1                              (not applied here: run algorithms with gamma=1)

    Episodes are truncated after `depth` steps (the chapter rolls out "to depth 10"). "Truncated
    to [−10, 10]" is implemented as clipping: mass beyond a bound lands on the bound. The
    optimum of the linear Gaussian policy π_θ(a | s) = N(θ1·s, θ2²) is θ = [−1, 0]
    (`REGULATOR_OPTIMAL_THETA`), which sets s_{t+1} = 0.1 ε_t.

    Args:
        depth: episode length (steps until truncation), ≥ 1.
        clip_bound: the state bound; `float("inf")` gives the unclipped linear-Gaussian system for
            which `regulator_expected_return` is exact.

    Returns:
        A `JaxEnv`: obs float32 [1] = [s]; state `RegulatorState`; action Box (1,), unbounded;
        observation Box (1,) within [−clip_bound, clip_bound]; `max_episode_steps = depth`.
    """
    if int(depth) < 1:
        raise ValueError(f"simple_regulator: depth must be ≥ 1, got {depth}")
    if not clip_bound > 0:
        raise ValueError(f"simple_regulator: clip_bound must be positive, got {clip_bound}")
    depth = int(depth)
    bound = float(clip_bound)

    def start(key):
        noise = jax.random.normal(key, (), jnp.float32)
        return jnp.float32(REGULATOR_START_MEAN) + jnp.float32(REGULATOR_START_STD) * noise

    def reset(key):
        s0 = start(key)
        return jnp.reshape(s0, (1,)), RegulatorState(s0, jnp.zeros((), jnp.int32))

    def step(key, state: RegulatorState, action) -> Transition:
        noise_key, reset_key = jax.random.split(key)
        a = _scalar_action(action)
        reward = -jnp.square(state.s)
        noise = jnp.float32(REGULATOR_NOISE_STD) * jax.random.normal(noise_key, (), jnp.float32)
        s_next = jnp.clip(state.s + a + noise, -bound, bound)
        time = state.time + 1
        truncated = time >= depth
        s_following = jnp.where(truncated, start(reset_key), s_next)
        return Transition(obs=jnp.reshape(s_following, (1,)),
                          state=RegulatorState(s_following, jnp.where(truncated, 0, time)),
                          reward=reward, terminated=jnp.asarray(False), truncated=truncated,
                          final_obs=jnp.reshape(s_next, (1,)), info={})

    obs_space = Box.from_bounds((1,), -bound, bound)
    action_space = Box.from_bounds((1,), -float("inf"), float("inf"))
    return JaxEnv(f"SimpleRegulator-d{depth}", reset, step, obs_space, action_space, depth)


@functools.partial(jax.jit, static_argnames="depth")
def regulator_expected_return(theta: jax.Array, depth: int = 10) -> jax.Array:
    """Exact U(θ) = E[Σ_{t=0}^{depth−1} −s_t²] of π_θ(a | s) = N(θ1·s, θ2²) on the *unclipped* regulator.

    Without clipping the closed loop is linear Gaussian, s_{t+1} = (1 + θ1) s_t + θ2 ξ_t + 0.1 ε_t,
    so s_t ~ N(m_t, v_t) with

        m_0 = 0.3,  v_0 = 0.1²,  m_{t+1} = (1 + θ1) m_t,  v_{t+1} = (1 + θ1)² v_t + θ2² + 0.1²,
        U(θ) = −Σ_{t=0}^{depth−1} (m_t² + v_t).

    This equals the expected return of `simple_regulator(depth, clip_bound=inf)` exactly. With the
    default bound 10 the two differ only through trajectories that reach |s| ≥ 10 (astronomically
    rare near the optimum, but not for strongly unstable θ1 > 0). At θ = [−1, 0] it is the maximum,
    U* = −(0.3² + 0.1² + (depth − 1)·0.1²). Jitted (`depth` static), differentiable, in θ's dtype, so
    `jax.grad(regulator_expected_return)(θ)` is the exact policy gradient ∇U(θ).

    Args:
        theta: [2] floating (θ1, θ2); θ2 enters only through θ2².
        depth: number of rewarded steps.

    Returns:
        Scalar U(θ).
    """
    theta = jnp.asarray(theta)
    if not jnp.issubdtype(theta.dtype, jnp.floating):
        theta = theta.astype(jnp.float32)
    gain = 1.0 + theta[0]
    extra_var = jnp.square(theta[1]) + REGULATOR_NOISE_STD ** 2

    def one(carry, _):
        m, v = carry
        return (gain * m, jnp.square(gain) * v + extra_var), jnp.square(m) + v

    init = (jnp.asarray(REGULATOR_START_MEAN, theta.dtype), jnp.asarray(REGULATOR_START_STD ** 2, theta.dtype))
    _, second_moments = jax.lax.scan(one, init, None, length=int(depth))
    return -jnp.sum(second_moments)


# ---------------------------------------------------------------------- single-state Gaussian MDP


def single_state_gaussian(depth: int = 3) -> JaxEnv:
    """The single-state MDP of seed 004's Example 12.1 (the book's Example 11.1): reward = action.

    There is one state; its observation is the constant vector [1.0] (float32 [1]) so that a policy
    with a bias or a state-independent mean sees a fixed input. Acting a ∈ R yields r = a and the
    same state again; γ = 1 (not applied here: run algorithms with gamma=1). Episodes are
    truncated after `depth` steps — Example 12.1 uses rollouts of 3 steps under N(θ1, θ2²).

    Returns:
        A `JaxEnv`: obs float32 [1] = [1.0]; state int32 scalar (steps taken in the episode);
        action Box (1,), unbounded; `max_episode_steps = depth`.
    """
    if int(depth) < 1:
        raise ValueError(f"single_state_gaussian: depth must be ≥ 1, got {depth}")
    depth = int(depth)
    obs = jnp.ones((1,), jnp.float32)

    def reset(key):
        return obs, jnp.zeros((), jnp.int32)

    def step(key, time, action) -> Transition:
        time = time + 1
        truncated = time >= depth
        return Transition(obs=obs, state=jnp.where(truncated, 0, time), reward=_scalar_action(action),
                          terminated=jnp.asarray(False), truncated=truncated, final_obs=obs, info={})

    box = Box.from_bounds((1,), -float("inf"), float("inf"))
    return JaxEnv(f"SingleStateGaussian-d{depth}", reset, step, Box.from_bounds((1,), 1.0, 1.0), box, depth)


def single_state_expected_return(theta: jax.Array, depth: int = 3) -> jax.Array:
    """Exact U(θ) = E[Σ_{t<depth} a_t] = depth · θ1 under π_θ = N(θ1, θ2²) on `single_state_gaussian`.

    Its gradient is [depth, 0]: only the mean moves the return (seed 004, Example 12.1, γ = 1).
    """
    theta = jnp.asarray(theta)
    return depth * theta[0]
