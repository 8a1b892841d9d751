"""Q actor-critic (QAC) with a linear action-value critic trained by TD(0), online per step.

Source: lecture 000 (seeds/000_258194b867719426.txt), section "Actor-Critic with LFA" (function QAC):
the critic Q_w(s, a) = φ(s, a)ᵀw is updated by linear TD(0), the actor by the policy gradient with
Q_w in place of Q^π ("Policy Gradient Summary": ∇J = E[∇ log π_θ(s, a) Q^w(s, a)]).

Per step t, environment i (both updates use the parameters before the step, as in the lecture):

    a'_i ~ π_θ(·|s'_i)                                       sampled in `learn`
    δ_i  = r_i + γ (1 − terminated_i) Q_w(s'_i, a'_i) − Q_w(s_i, a_i)        (SARSA TD error)
    θ ← θ + α mean_i ∇_θ log π_θ(a_i|s_i) X_i,   X_i = Q_w(s_i, a_i)                (lecture form)
                                                  X_i = Q_w(s_i, a_i) − Σ_b π_θ(b|s_i) Q_w(s_i, b)
                                                                        (`baseline=True`, the default)
    (X_i multiplied by γ^τ_i, τ_i = `Batch.episode_step`, with `discount_weighting`)
    w ← w + β mean_i δ_i φ(s_i, a_i)

Features. φ(s, a) = one-hot(a) ⊗ ψ(s), so Q_w(s, a) = w[a]·ψ(s) with w of shape [A, D + 1], and
ψ(s) = [√(2/D) cos(Ω (s / ℓ) + b), 1]: D random Fourier features of the observation (Ω ~ N(0, I) of
shape [obs_dim, D], b ~ U[0, 2π), bandwidth ℓ, one value or one per observation dimension; they
approximate the feature space of a Gaussian kernel of widths ℓ) and a constant. Ω/ℓ and b are drawn
once from the seed and stored in params["features"], but never trained. The default ℓ = (1, 1, 0.1,
0.5) is CartPole's (the pole angle varies on a scale ten times smaller than the other coordinates;
with one common ℓ = 1 the policy stays near 100 after 100k steps); on other environments give one
ℓ or one per dimension. Discrete actions only: for Box actions
one-hot(a) has no meaning, and `make_qac` raises a ConfigError.

The baseline. Σ_b π(b|s) Q_w(s, b) = V_w(s) is a state-dependent baseline, so E[∇ log π · V_w] = 0
and the expected update is unchanged, while its variance drops by a large factor on tasks whose
Q-values are far from 0 (CartPole: Q ≈ 1/(1 − γ) everywhere); with it the actor follows the Q
critic's advantage A_w = Q_w − V_w. `--no-baseline` gives the lecture's plain form.

Online, per step, as `td_ac` (pgax/algorithms/online.py): `learn` scans the T = num_steps steps of
the [T, N] batch in order and updates after each; the N environments' updates are averaged. The
actor's step is Adam on the per-step direction (or plain SGD, `actor_optimizer="sgd"`); the critic's
is plain SGD by default, the lecture's w ← w + β δ φ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax

from pgax.algorithms.core import (Agent, AgentState, check_network, check_positive, check_positive_ints,
                                  check_unit_interval, discount_weights, make_policy, mode_action, sample_action)
from pgax.algorithms.blocks import DiscountBlock, NetworkBlock, OnlineRolloutBlock, STEP_OPTIMIZERS, check_rollout
from pgax.batch import Batch
from pgax.errors import ConfigError
from pgax.spaces import Discrete
from pgax.updates import ascend


@dataclass(frozen=True)
class QACConfig(NetworkBlock, DiscountBlock, OnlineRolloutBlock):
    """Q actor-critic (lecture 000, "Actor-Critic with LFA"): linear critic Q_w(s, a) = φ(s, a)ᵀw by TD(0)
    (SARSA), actor θ ← θ + α ∇ log π_θ(a|s) Q_w(s, a), online after every environment step."""

    num_features: int = 256
    """D, the number of random Fourier features ψ(s) of the observation (a constant feature is added)."""
    feature_bandwidth: tuple[float, ...] = (1.0, 1.0, 0.1, 0.5)
    """Bandwidth ℓ of ψ(s) = √(2/D) cos(Ω (s / ℓ) + b), Ω ~ N(0, I): one value for every observation dimension,
    or one per dimension (the default is CartPole's: cart position, velocity, pole angle, angular velocity)."""
    actor_lr: float = 1e-3
    """Actor step size α."""
    critic_lr: float = 1.0
    """Critic step size β of w ← w + β δ φ(s, a)."""
    actor_optimizer: str = "adam"
    """How the actor's per-step direction is applied: adam (Adam on it) or sgd (θ + α · direction)."""
    critic_optimizer: str = "sgd"
    """How the critic's per-step direction δ φ is applied: sgd (the lecture's w + β δ φ) or adam."""
    optimizer_eps: float = 1e-5
    """Adam's ε (adam optimizers only)."""
    baseline: bool = True
    """Weight the score by Q_w(s, a) − Σ_b π(b|s) Q_w(s, b) (the critic's advantage); --no-baseline: by Q_w(s, a)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor MLP (the critic is linear in its features)."""

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        check_rollout(self)
        check_positive_ints(self, ("num_features",))
        check_positive(self, ("actor_lr", "critic_lr", "optimizer_eps"))
        if not self.feature_bandwidth or any(not b > 0 for b in self.feature_bandwidth):
            raise ConfigError(f"--feature-bandwidth must be positive numbers, got {self.feature_bandwidth}")
        check_unit_interval(self, ("gamma",))
        for name in ("actor_optimizer", "critic_optimizer"):
            if getattr(self, name) not in STEP_OPTIMIZERS:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)!r} is not known; "
                                  f"use one of {', '.join(STEP_OPTIMIZERS)}")
        check_network(self)


def fourier_features(features, obs: jax.Array) -> jax.Array:
    """[..., D + 1] ψ(s) = [√(2/D) cos(Ω (s / ℓ) + b), 1] for obs [..., obs_dim].

    `features` = {"projection": diag(1/ℓ) Ω [obs_dim, D], "phase": b [D]} (`init_fourier_features`)."""
    projection, phase = features["projection"], features["phase"]
    num = projection.shape[-1]
    psi = math.sqrt(2.0 / num) * jnp.cos(obs @ projection + phase)
    return jnp.concatenate([psi, jnp.ones(psi.shape[:-1] + (1,), psi.dtype)], axis=-1)


def init_fourier_features(key: jax.Array, obs_dim: int, num_features: int, bandwidth):
    """diag(1/ℓ) Ω with Ω ~ N(0, I) [obs_dim, D] and b ~ U[0, 2π) [D]: the fixed random projection.
    `bandwidth`: a scalar or [obs_dim]."""
    k_proj, k_phase = jax.random.split(key)
    scale = jnp.broadcast_to(jnp.asarray(bandwidth, jnp.float32), (obs_dim,))[:, None]
    return {"projection": jax.random.normal(k_proj, (obs_dim, num_features), jnp.float32) / scale,
            "phase": jax.random.uniform(k_phase, (num_features,), jnp.float32, 0.0, 2.0 * math.pi)}


def q_values(params, obs: jax.Array) -> jax.Array:
    """[..., A] Q_w(s, ·) = w ψ(s): params["q"] is w [A, D + 1]."""
    return fourier_features(params["features"], obs) @ params["q"].T


def _optimizer(kind: str, lr: float, eps: float) -> optax.GradientTransformation:
    return optax.sgd(lr) if kind == "sgd" else optax.adam(lr, eps=eps)


def make_qac(config: QACConfig, env, num_iterations: int) -> Agent:
    """Q actor-critic with a linear random-Fourier-feature critic (see the module docstring).

    AgentState.params = {"policy": θ, "q": w [A, D + 1] (zeros at the start), "features": the fixed
    projection}; update_state = {"actor_opt", "critic_opt"}. In `learn`, step t of the batch draws its
    next actions a' with `jax.random.split(key, T)[t]`. Raises ConfigError for non-Discrete actions.
    """
    del num_iterations
    if not isinstance(env.action_space, Discrete):
        raise ConfigError(f"qac needs Discrete actions (its critic's features are one-hot(a) ⊗ ψ(s)); this "
                          f"environment's are {env.action_space!r}; use td_ac or td_lambda_ac")
    policy = make_policy(config, env)
    num_actions = env.action_space.n
    obs_dim = int(env.observation_space.shape[-1])
    bandwidth = config.feature_bandwidth
    if len(bandwidth) not in (1, obs_dim):
        raise ConfigError(f"--feature-bandwidth has {len(bandwidth)} values but the observations have {obs_dim} "
                          f"dimensions; give one value or {obs_dim} (the default is CartPole's)")
    actor_opt = _optimizer(config.actor_optimizer, config.actor_lr, config.optimizer_eps)
    critic_opt = _optimizer(config.critic_optimizer, config.critic_lr, config.optimizer_eps)

    def init(key, obs):
        k_policy, k_features = jax.random.split(key)
        params = {"policy": policy.init(k_policy, obs),
                  "q": jnp.zeros((num_actions, config.num_features + 1), jnp.float32),
                  "features": init_fourier_features(k_features, obs_dim, config.num_features, bandwidth)}
        return AgentState(params, {"actor_opt": actor_opt.init(params["policy"]),
                                   "critic_opt": critic_opt.init(params["q"])})

    def step(carry, xs):
        params, opt = carry
        (obs, action, reward, terminated, truncated, next_obs, discount_weight), key = xs
        del truncated  # a truncated episode bootstraps from Q_w(s', a') like any non-terminal step
        psi = fourier_features(params["features"], obs)                      # [N, D + 1]
        q_all = psi @ params["q"].T                                          # [N, A]
        q_sa = jnp.take_along_axis(q_all, action[:, None].astype(jnp.int32), axis=-1)[:, 0]
        next_action = policy.apply(params["policy"], next_obs).sample(key)   # a' ~ π_θ(·|s')
        q_next = jnp.take_along_axis(q_values(params, next_obs), next_action[:, None], axis=-1)[:, 0]
        delta = reward + config.gamma * (1.0 - terminated.astype(q_sa.dtype)) * q_next - q_sa

        dist = policy.apply(params["policy"], obs)
        v = jnp.sum(dist.probs * q_all, axis=-1)
        weight = jax.lax.stop_gradient((q_sa - v if config.baseline else q_sa) * discount_weight)

        def actor_objective(theta):  # its gradient: mean_i X_i ∇ log π_θ(a_i|s_i)
            return jnp.mean(weight * policy.apply(theta, obs).log_prob(action))

        actor_direction = jax.grad(actor_objective)(params["policy"])
        one_hot = jax.nn.one_hot(action, num_actions, dtype=psi.dtype)        # [N, A]
        critic_direction = jnp.einsum("n,na,nd->ad", delta, one_hot, psi) / delta.shape[0]  # mean_i δ_i φ_i
        theta, actor_state = ascend(actor_opt, params["policy"], opt["actor_opt"], actor_direction)
        w, critic_state = ascend(critic_opt, params["q"], opt["critic_opt"], critic_direction)
        metrics = {"td_error": jnp.mean(delta), "critic_loss": 0.5 * jnp.mean(jnp.square(delta)),
                   "q_mean": jnp.mean(q_sa), "advantage_abs": jnp.mean(jnp.abs(q_sa - v)),
                   "entropy": jnp.mean(dist.entropy()), "actor_grad_norm": optax.tree.norm(actor_direction),
                   "critic_grad_norm": optax.tree.norm(critic_direction)}
        opt = {**opt, "actor_opt": actor_state, "critic_opt": critic_state}
        return ({**params, "policy": theta, "q": w}, opt), metrics

    def learn(state: AgentState, batch: Batch, key):
        weight = (discount_weights(batch, config.gamma) if config.discount_weighting
                  else jnp.ones_like(batch.reward, jnp.float32))
        xs = ((batch.obs, batch.action, batch.reward, batch.terminated, batch.truncated, batch.next_obs, weight),
              jax.random.split(key, batch.reward.shape[0]))
        (params, update_state), metrics = jax.lax.scan(step, (state.params, state.update_state), xs)
        return AgentState(params, update_state), jax.tree_util.tree_map(jnp.mean, metrics)

    return Agent(init, sample_action(policy), mode_action(policy), learn)
