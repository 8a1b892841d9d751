"""Tabular MDPs: problem generators, a `JaxEnv` for the trainer, and a vmappable trajectory sampler.

Layer 3 (running). The MDP itself is the `TabularMDP` pytree of `pgax.exact` (layer 0), so the
same object is simulated here and solved exactly there. Generators build it with NumPy in float64
from an integer seed (deterministic across platforms); the samplers convert it to JAX's default
float dtype.

    garnet_mdp(seed, ...)        random "Garnet" MDP: each (s, a) reaches `branching` random states
    chain_mdp(...)               a RiverSwim-style chain: small reward at the left end, large at the right
    gridworld_mdp(...)           shortest path on a grid with slippery moves; the goal is terminal
    make_tabular_env(mdp, ...)   the MDP as a `JaxEnv` (one-hot observations, Discrete actions)
    sample_trajectory(key, mdp, logits, num_steps)     one [T] stream under a tabular softmax policy
    sample_trajectories(key, mdp, logits, num_steps, n) n of them, vmapped

Rewards are deterministic: acting a in s yields R(s, a). Every exact quantity depends on rewards
only through R(s, a), so the samplers are exactly consistent with `pgax.exact`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pgax.envs.core import JaxEnv, Transition
from pgax.exact import TabularMDP, check_tabular_mdp
from pgax.spaces import Box, Discrete

__all__ = [
    "TabularMDP",
    "TabularEnvState",
    "TabularTrajectory",
    "garnet_mdp",
    "chain_mdp",
    "gridworld_mdp",
    "stack_mdps",
    "make_tabular_env",
    "sample_trajectory",
    "sample_trajectories",
]


# ------------------------------------------------------------------------------------ generators


def garnet_mdp(seed: int, num_states: int = 8, num_actions: int = 3, branching: int = 3,
               discount: float = 0.9) -> TabularMDP:
    """A random Garnet MDP (Archibald et al. 1995), float64.

    Each (s, a) moves to `branching` distinct next states drawn uniformly, with probabilities from
    a flat Dirichlet; R(s, a) ~ U[0, 1]; μ0 ~ flat Dirichlet over all states (so every state has
    positive visitation); no terminal states.
    """
    if not 1 <= branching <= num_states:
        raise ValueError(f"garnet_mdp: branching must be in [1, num_states={num_states}], got {branching}")
    rng = np.random.default_rng(seed)
    transitions = np.zeros((num_states, num_actions, num_states))
    for s in range(num_states):
        for a in range(num_actions):
            successors = rng.choice(num_states, size=branching, replace=False)
            transitions[s, a, successors] = rng.dirichlet(np.ones(branching))
    rewards = rng.uniform(0.0, 1.0, size=(num_states, num_actions))
    initial = rng.dirichlet(np.ones(num_states))
    mdp = TabularMDP(transitions, rewards, initial, np.float64(discount), None)
    check_tabular_mdp(mdp)
    return mdp


def chain_mdp(num_states: int = 6, discount: float = 0.9, slip: float = 0.1, left_reward: float = 0.05,
              right_reward: float = 1.0) -> TabularMDP:
    """A RiverSwim-style chain 0 … n−1 starting in state 0; actions 0 = left, 1 = right.

    Left always moves one step left (staying at 0). Right moves right with probability 1 − slip and
    left with probability slip (staying at the ends). Acting left in state 0 pays `left_reward`;
    acting right in state n−1 pays `right_reward`. Myopic policies settle for the small reward; the
    optimal one swims right. No terminal states.
    """
    n = num_states
    transitions = np.zeros((n, 2, n))
    for s in range(n):
        transitions[s, 0, max(s - 1, 0)] = 1.0
        transitions[s, 1, min(s + 1, n - 1)] += 1.0 - slip
        transitions[s, 1, max(s - 1, 0)] += slip
    rewards = np.zeros((n, 2))
    rewards[0, 0] = left_reward
    rewards[n - 1, 1] = right_reward
    initial = np.zeros(n)
    initial[0] = 1.0
    mdp = TabularMDP(transitions, rewards, initial, np.float64(discount), None)
    check_tabular_mdp(mdp)
    return mdp


GRID_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
"""Action a moves by GRID_MOVES[a] = (d_row, d_col): 0 up, 1 right, 2 down, 3 left."""


def gridworld_mdp(height: int = 3, width: int = 4, discount: float = 0.95, slip: float = 0.1,
                  walls: tuple[tuple[int, int], ...] = (), start: tuple[int, int] = (0, 0),
                  goal: tuple[int, int] | None = None, step_reward: float = -1.0) -> TabularMDP:
    """A slippery shortest-path gridworld; state index = row · width + col.

    Four actions (GRID_MOVES). The intended move happens with probability 1 − slip, otherwise one
    of the four moves uniformly at random; moves into a wall or off the grid stay put. Every step
    pays `step_reward`; entering `goal` (default: the corner opposite `start`) ends the episode.
    Wall cells are states too (unreachable, never started in).
    """
    goal = (height - 1, width - 1) if goal is None else goal
    blocked = set(walls)
    if start in blocked or goal in blocked or start == goal:
        raise ValueError("gridworld_mdp: start and goal must be distinct cells that are not walls")
    n = height * width
    index = lambda r, c: r * width + c  # noqa: E731

    def move(r, c, a):
        dr, dc = GRID_MOVES[a]
        nr, nc = r + dr, c + dc
        if not (0 <= nr < height and 0 <= nc < width) or (nr, nc) in blocked:
            return r, c
        return nr, nc

    transitions = np.zeros((n, 4, n))
    for r in range(height):
        for c in range(width):
            s = index(r, c)
            for a in range(4):
                if (r, c) == goal or (r, c) in blocked:
                    transitions[s, a, s] = 1.0  # never acted in; absorbing keeps P stochastic
                    continue
                transitions[s, a, index(*move(r, c, a))] += 1.0 - slip
                for b in range(4):
                    transitions[s, a, index(*move(r, c, b))] += slip / 4.0
    rewards = np.full((n, 4), float(step_reward))
    initial = np.zeros(n)
    initial[index(*start)] = 1.0
    terminal = np.zeros(n, bool)
    terminal[index(*goal)] = True
    mdp = TabularMDP(transitions, rewards, initial, np.float64(discount), terminal)
    check_tabular_mdp(mdp)
    return mdp


def stack_mdps(mdps: list[TabularMDP]) -> TabularMDP:
    """Stack MDPs of equal shapes along a new leading axis, to `jax.vmap` over them."""
    return jax.tree_util.tree_map(lambda *leaves: np.stack([np.asarray(x) for x in leaves]), *mdps)


# ------------------------------------------------------------------------------------- simulation


@struct.dataclass
class _Dynamics:
    """The MDP in JAX's default float dtype, with log-probabilities ready for sampling."""

    log_transitions: jax.Array  # [S, A, S]
    rewards: jax.Array  # [S, A]
    log_initial: jax.Array  # [S]
    discount: jax.Array  # []
    terminal: jax.Array  # [S] bool


def _dynamics(mdp: TabularMDP) -> _Dynamics:
    dtype = jnp.result_type(float)
    P = jnp.asarray(mdp.transitions, dtype)
    terminal = (jnp.zeros(P.shape[-1], bool) if mdp.terminal is None else jnp.asarray(mdp.terminal, bool))
    return _Dynamics(jnp.log(P), jnp.asarray(mdp.rewards, dtype), jnp.log(jnp.asarray(mdp.initial_distribution, dtype)),
                     jnp.asarray(mdp.discount, dtype), terminal)


def _initial_state(dyn: _Dynamics, key: jax.Array) -> jax.Array:
    return jax.random.categorical(key, dyn.log_initial).astype(jnp.int32)


def _transition(dyn: _Dynamics, key: jax.Array, state: jax.Array, action: jax.Array):
    """(s', R(s, a), terminated) for one step from integer state s with integer action a."""
    next_state = jax.random.categorical(key, dyn.log_transitions[state, action]).astype(jnp.int32)
    return next_state, dyn.rewards[state, action], dyn.terminal[next_state]


@struct.dataclass
class TabularEnvState:
    """state: int32 index of the current state; time: int32 steps taken in this episode."""

    state: jax.Array
    time: jax.Array


def make_tabular_env(mdp: TabularMDP, max_episode_steps: int = 200, name: str = "tabular") -> JaxEnv:
    """The MDP as a `JaxEnv`: obs = one-hot(s) as float32 [S], actions Discrete(A), reward R(s, a).

    An episode terminates on entering a terminal state and is truncated after `max_episode_steps`
    steps; either way the environment auto-resets from μ0 (`Transition.final_obs` keeps s_{t+1}).
    """
    dyn = _dynamics(mdp)
    num_states, num_actions = mdp.num_states, mdp.num_actions
    one_hot = lambda s: jax.nn.one_hot(s, num_states, dtype=jnp.float32)  # noqa: E731

    def reset(key):
        state = _initial_state(dyn, key)
        return one_hot(state), TabularEnvState(state, jnp.zeros((), jnp.int32))

    def step(key, env_state: TabularEnvState, action):
        move_key, reset_key = jax.random.split(key)
        next_state, reward, terminated = _transition(dyn, move_key, env_state.state, jnp.asarray(action, jnp.int32))
        time = env_state.time + 1
        truncated = (time >= max_episode_steps) & ~terminated
        done = terminated | truncated
        state = jnp.where(done, _initial_state(dyn, reset_key), next_state)
        new_env_state = TabularEnvState(state, jnp.where(done, 0, time))
        return Transition(obs=one_hot(state), state=new_env_state, reward=jnp.asarray(reward, jnp.float32),
                          terminated=terminated, truncated=truncated, final_obs=one_hot(next_state), info={})

    obs_space = Box.from_bounds((num_states,), 0.0, 1.0)
    return JaxEnv(name, reset, step, obs_space, Discrete(num_actions), int(max_episode_steps), model=mdp)


@struct.dataclass
class TabularTrajectory:
    """One stream of T steps under a tabular policy (drivers/vmap add leading axes).

    state: [T] int32 s_t.  action: [T] int32 a_t.  reward: [T] R(s_t, a_t).
    next_state: [T] int32 the true successor s_{t+1} (before any auto-reset).
    terminated: [T] bool, s_{t+1} is terminal.  discount: [T] γ·(1 − terminated), the rlax discount_t.
    log_prob: [T] log π(a_t | s_t) under the sampling policy.
    After a termination the stream continues with a new episode from μ0; the stream end is a
    truncation (the estimators bootstrap there).
    """

    state: jax.Array
    action: jax.Array
    reward: jax.Array
    next_state: jax.Array
    terminated: jax.Array
    discount: jax.Array
    log_prob: jax.Array


def sample_trajectory(key: jax.Array, mdp: TabularMDP, logits: jax.Array, num_steps: int) -> TabularTrajectory:
    """One [T = num_steps] stream from s_0 ~ μ0 under π(a|s) = softmax(logits[s]) (`lax.scan`).

    `logits` [S, A] may be any log-probability table (e.g. log π of a given policy). Pure in
    (key, mdp, logits), so `jax.vmap` batches it over keys, policies or stacked MDPs.
    """
    dyn = _dynamics(mdp)
    log_policy = jax.nn.log_softmax(jnp.asarray(logits, dyn.rewards.dtype), axis=-1)
    start_key, scan_key = jax.random.split(key)

    def step(state, step_key):
        act_key, move_key, reset_key = jax.random.split(step_key, 3)
        action = jax.random.categorical(act_key, log_policy[state]).astype(jnp.int32)
        next_state, reward, terminated = _transition(dyn, move_key, state, action)
        discount = dyn.discount * (1.0 - terminated.astype(reward.dtype))
        record = TabularTrajectory(state=state, action=action, reward=reward, next_state=next_state,
                                   terminated=terminated, discount=discount, log_prob=log_policy[state, action])
        following = jnp.where(terminated, _initial_state(dyn, reset_key), next_state)
        return following, record

    _, trajectory = jax.lax.scan(step, _initial_state(dyn, start_key), jax.random.split(scan_key, num_steps))
    return trajectory


def sample_trajectories(key: jax.Array, mdp: TabularMDP, logits: jax.Array, num_steps: int,
                        num_trajectories: int) -> TabularTrajectory:
    """`num_trajectories` independent streams, leaves [N, T]: `sample_trajectory` vmapped over keys."""
    keys = jax.random.split(key, num_trajectories)
    return jax.vmap(lambda k: sample_trajectory(k, mdp, logits, num_steps))(keys)
