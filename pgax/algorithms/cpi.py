"""Conservative policy iteration (CPI) on tabular MDPs: the policy is the table π [S, A] itself,
moved toward the greedy policy of its advantages by a mixture step (`updates.conservative_policy_iteration`):

    π' = greedy(A^π),   π_{t+1} = (1 − α) π_t + α π'

(lecture 000 "Incremental update of CPI"; Kakade & Langford 2002; the CPI bound in the TRPO notes,
seed 001). A^π and the discounted visitation d^π come either exactly from the environment's
`TabularMDP` (float32 linear solves inside the jitted step) or are estimated from the rollout.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from pgax.algorithms.blocks import RolloutBlock, check_rollout
from pgax.algorithms.core import Agent, AgentState, check_non_negative, check_positive_ints, check_unit_interval
from pgax.batch import Batch
from pgax.errors import ConfigError
from pgax.exact import TabularMDP, solve_policy
from pgax.spaces import Discrete
from pgax.updates import TabularEstimate, conservative_policy_iteration

ADVANTAGE_MODES = ("exact", "sampled")
STEP_MODES = ("bound", "fixed", "line_search")


@dataclass(frozen=True)
class CPIConfig(RolloutBlock):
    """Conservative policy iteration on a tabular MDP (environments with a `TabularMDP` model)."""

    num_steps: int = 256
    advantages: str = "exact"
    """exact: A^π and d^π from the environment's model; sampled: estimated from the rollout (Monte Carlo)."""
    step: str = "bound"
    """α: bound (maximise the CPI lower bound), fixed (--alpha), line_search (best of 1, 1/2, ... and the
    bound's α by the exact J; exact mode)."""
    alpha: float = 0.1
    """The mixture step α when --step fixed."""
    epsilon: float = 1e-6
    """Converged (no step) when the expected advantage E_{s~d}[A(s, π'(s))] is at most this."""
    line_search_steps: int = 12
    """Candidates 1, 1/2, ..., 2^-(n-1) of the line search (--step line_search)."""
    return_horizon: int = 40
    """Sampled mode: a Monte Carlo return counts only if it ends by termination or runs at least this many
    steps before the rollout or episode is cut."""

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        check_rollout(self)
        check_positive_ints(self, ("line_search_steps", "return_horizon"))
        if self.advantages not in ADVANTAGE_MODES:
            raise ConfigError(f"--advantages {self.advantages!r} is not known; use one of {', '.join(ADVANTAGE_MODES)}")
        if self.step not in STEP_MODES:
            raise ConfigError(f"--step {self.step!r} is not known; use one of {', '.join(STEP_MODES)}")
        check_unit_interval(self, ("alpha",))
        check_non_negative(self, ("epsilon",))
        if self.step == "line_search" and self.advantages != "exact":
            raise ConfigError("--step line_search searches on the exact J and needs --advantages exact; "
                              "use --step bound or --step fixed with sampled advantages")
        if self.advantages == "sampled" and self.return_horizon >= self.num_steps:
            raise ConfigError(f"--return-horizon {self.return_horizon} must be below --num-steps {self.num_steps} "
                              "(no sampled return would be long enough)")


# ----------------------------------------------------------------------------- sampled estimates


def sampled_estimate(batch: Batch, pi: jax.Array, gamma: float, return_horizon: int):
    """Monte Carlo estimates of A^π and d^π from one on-policy rollout of [T, N] one-hot samples.

    - Return G_t = Σ_k γ^k r_{t+k}, computed backward within the rollout; it ends at a termination
      (complete, 0 after it) or is cut at a time-limit truncation or the rollout's end. A return
      counts only if it is complete or runs ≥ `return_horizon` steps before its cut, so its bias is
      at most γ^H max|R| / (1 − γ).
    - Q̂(s, a) = mean of the counted G_t over the samples at (s, a); V̂(s) = their mean over the
      samples at s (a ~ π, so an estimate of V^π(s)); Â = Q̂ − V̂ where (s, a) has counted samples.
      Untried actions get Â = −1e30 (never greedy); states without counted samples get Â = 0 and
      the caller keeps π there.
    - d̂(s) ∝ Σ_t γ^{τ_t} 1[s_t = s], τ_t the time since the episode began (`batch.episode_step`),
      an estimate of the normalised discounted visitation d^π.
    Besides the truncation bias, the greedy choice over noisy Â overestimates the expected advantage
    (maximisation bias), so the bound's α is optimistic; the step is still a mixture, so errors are
    damped by α.

    Returns (TabularEstimate, visited [S] bool).
    """
    S, A = pi.shape
    state_index = jnp.argmax(batch.obs, axis=-1)  # [T, N]
    action = batch.action.astype(jnp.int32)

    def backward(carry, x):
        g, k, complete = carry
        r, term, trunc = x
        g = jnp.where(term | trunc, r, r + gamma * g)
        k = jnp.where(term | trunc, 1, k + 1)
        complete = jnp.where(term, True, jnp.where(trunc, False, complete))
        return (g, k, complete), (g, k, complete)

    num_envs = batch.reward.shape[1]
    init = (jnp.zeros(num_envs), jnp.zeros(num_envs, jnp.int32), jnp.zeros(num_envs, bool))
    _, (g, k, complete) = jax.lax.scan(backward, init, (batch.reward, batch.terminated, batch.truncated), reverse=True)
    valid = (complete | (k >= return_horizon)).astype(jnp.float32)

    sa = jax.nn.one_hot(state_index * A + action, S * A, dtype=jnp.float32).reshape(-1, S * A)
    count_sa = (valid.reshape(-1) @ sa).reshape(S, A)
    sum_sa = ((valid * g).reshape(-1) @ sa).reshape(S, A)
    count_s, sum_s = count_sa.sum(1), sum_sa.sum(1)
    v_hat = sum_s / jnp.maximum(count_s, 1.0)
    q_hat = sum_sa / jnp.maximum(count_sa, 1.0)
    advantage = jnp.where(count_sa > 0, q_hat - v_hat[:, None], -1e30)
    advantage = jnp.where(count_s[:, None] > 0, advantage, 0.0)

    time = batch.episode_step.astype(jnp.float32)
    visit = (gamma ** time).reshape(-1) @ jax.nn.one_hot(state_index.reshape(-1), S, dtype=jnp.float32)
    visitation = visit / jnp.maximum(visit.sum(), 1e-30)
    return TabularEstimate(advantage, visitation), count_s > 0


def make_cpi(config: CPIConfig, env, num_iterations: int) -> Agent:
    """CPI on `env.model` (a `TabularMDP`); params = the policy table π [S, A], initially uniform.

    act: a ~ π[s] for one-hot observations s; act_deterministic: argmax_a π[s, a]. Metrics:
    those of `conservative_policy_iteration` plus exact_return (J of the new policy; exact mode)
    and converged.
    """
    del num_iterations
    mdp = getattr(env, "model", None)
    if not isinstance(mdp, TabularMDP):
        raise ConfigError(f"cpi needs a tabular MDP model and {getattr(env, 'name', 'this environment')} has none; "
                          "use --env Garnet-v0, Chain-v0 or GridWorld-v0")
    if not isinstance(env.action_space, Discrete) or env.observation_space.shape[-1] != mdp.num_states:
        raise ConfigError("cpi needs one-hot state observations and Discrete actions; use a tabular env")
    S, A = mdp.num_states, mdp.num_actions
    gamma = float(mdp.discount)
    objective = (lambda pi: solve_policy(mdp, pi).expected_return) if config.step == "line_search" else None
    rule = conservative_policy_iteration(gamma, alpha=config.alpha if config.step == "fixed" else None,
                                         epsilon=config.epsilon, objective=objective,
                                         line_search_steps=config.line_search_steps)

    def init(key, obs):
        del key, obs
        pi = jnp.full((S, A), 1.0 / A, jnp.float32)
        return AgentState(pi, rule.init(pi))

    def act(pi, obs, key):
        logits = jnp.log(jnp.maximum(obs @ pi, 1e-30))
        action = jax.random.categorical(key, logits)
        return action, jnp.take_along_axis(logits, action[..., None], axis=-1)[..., 0]

    def act_deterministic(pi, obs):
        return jnp.argmax(obs @ pi, axis=-1)

    def learn(state: AgentState, batch: Batch, key):
        pi = state.params
        if config.advantages == "exact":
            solution = solve_policy(mdp, pi)
            estimate, visited = TabularEstimate(solution.advantage, solution.visitation), None
        else:
            estimate, visited = sampled_estimate(batch, pi, gamma, config.return_horizon)
        new_pi, update_state, metrics = rule.update(pi, state.update_state, estimate, key)
        if visited is not None:
            new_pi = jnp.where(visited[:, None], new_pi, pi)
        metrics = {**metrics, "exact_return": solve_policy(mdp, new_pi).expected_return}
        return AgentState(new_pi, update_state), metrics

    return Agent(init, act, act_deterministic, learn)
