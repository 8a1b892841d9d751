"""Off-policy actor-critic from a replay buffer: sac, td3, ddpg and offpac.

Source: lecture 003 (seeds/003_7ac8bb56629a59eb.txt), "Off-Policy Reinforcement Learning". Every
preset here alternates the lecture's two steps on transitions (s, a, r, s′) drawn uniformly from a
replay buffer D of everything the agent has done:

    policy evaluation   min_φ E_D (Q_φ(s, a) − (r + γ (1 − terminated) Q_φ̂(s′, a′)))²,  a′ ~ π(·|s′)
    policy improvement  max_θ E_{s~D} E_{a~π_θ(·|s)} Q_φ(s, a)

with a target network φ̂ ← τ φ + (1 − τ) φ̂ (`updates.polyak_update`) that moves slowly (the
lecture's warning: this is not gradient descent on the Bellman error). A truncated episode
bootstraps from its final observation like any non-terminal step; termination zeroes the discount.

    sac     tanh-squashed Gaussian actor, twin Q with the minimum in the target, entropy bonus α
            with automatic temperature (Haarnoja et al. 2018); the soft target
            r + γ (1 − d) (min_i Q_φ̂i(s′, a′) − α log π(a′|s′)); actor by the pathwise gradient
            (`actor_gradient=pathwise`, the default) or the likelihood-ratio one.
    td3     deterministic actor μ_θ, twin Q, target policy smoothing a′ = clip(μ_θ̂(s′) + clip(ε, ±c)),
            actor and targets updated every `policy_delay` critic steps (Fujimoto et al. 2018).
    ddpg    deterministic actor, one Q, no smoothing, no delay (Lillicrap et al. 2016).
    offpac  likelihood-ratio actor with importance weights π_θ(a|s) / β(a|s) from the behaviour
            log-probabilities stored with each transition (Degris et al. 2012), a learned Q critic
            with the expected next value Σ_a′ π(a′|s′) Q_φ̂(s′, a′) (Discrete) or one sampled a′ (Box),
            and the baseline V(s) = E_π Q(s, ·); Discrete and Box actions.

One iteration (num_envs × num_steps environment steps; 1 × 1 by default) adds its transitions to the
buffer, then runs num_envs × num_steps × `updates_per_step` gradient steps on minibatches sampled
from it, once the buffer holds `learning_starts` transitions; until then actions are drawn uniformly
from the action space (Box actions need finite bounds for that). The buffer lives in the update
state, so seeds stay one program and checkpoints hold it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pgax import estimators, replay
from pgax.algorithms.core import (Agent, AgentState, check_network, check_positive, check_positive_ints,
                                  check_unit_interval, make_policy, mode_action)
from pgax.algorithms.blocks import RolloutBlock, check_rollout
from pgax.batch import Batch, rows_in_program
from pgax.critics import mlp_action_value, mlp_action_values
from pgax.errors import ConfigError
from pgax.policies import deterministic_policy, squashed_gaussian_policy
from pgax.spaces import Box, Discrete
from pgax.updates import (importance_weighted_actor_objective, likelihood_ratio_actor_objective,
                          pathwise_actor_objective, polyak_update)

ACTOR_GRADIENTS = ("pathwise", "likelihood_ratio")
CONTINUOUS_PRESETS = ("sac", "td3", "ddpg")
"""The presets that need Box actions; offpac (and every on-policy preset) also takes Discrete ones."""


@dataclass(frozen=True)
class ReplayBlock(RolloutBlock):
    """Off-policy training: a replay buffer, minibatch updates from it and a slowly moving target network."""

    num_envs: int = 1
    """Environments stepped in parallel (vmapped) per seed."""
    num_steps: int = 1
    """Steps per environment between two rounds of updates (the transitions are added to the buffer first)."""
    buffer_size: int = 1_000_000
    """Capacity of the replay buffer (transitions per seed); the oldest are overwritten once it is full."""
    minibatch_size: int = 256
    """Transitions sampled uniformly from the buffer for each gradient step."""
    learning_starts: int = 5_000
    """Transitions collected with uniformly random actions before the first update."""
    updates_per_step: int = 1
    """Gradient steps per environment step (the update-to-data ratio)."""
    tau: float = 0.005
    """Target network step τ of φ̂ ← τ φ + (1 − τ) φ̂ after each update."""
    gamma: float = 0.99
    """Discount factor γ."""
    actor_lr: float = 3e-4
    """Adam step size of the actor."""
    critic_lr: float = 1e-3
    """Adam step size of the Q critic(s)."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor and critic MLPs."""
    activation: str = "relu"
    """Hidden activation: tanh or relu."""


def check_replay(config) -> None:
    check_rollout(config)
    check_positive_ints(config, ("buffer_size", "minibatch_size", "updates_per_step"))
    if config.learning_starts < 0:
        raise ConfigError(f"--learning-starts must be non-negative, got {config.learning_starts}")
    if config.minibatch_size > config.buffer_size:
        raise ConfigError(f"--minibatch-size {config.minibatch_size} exceeds --buffer-size {config.buffer_size}; "
                          "lower the minibatch or raise the buffer")
    if not 0.0 < config.tau <= 1.0:
        raise ConfigError(f"--tau must lie in (0, 1], got {config.tau}")
    check_unit_interval(config, ("gamma",))
    check_positive(config, ("actor_lr", "critic_lr"))
    check_network(config)


@dataclass(frozen=True)
class SACConfig(ReplayBlock):
    """Soft actor-critic (lecture 003's off-policy actor-critic with an entropy bonus): squashed Gaussian
    actor, twin Q critics with target networks, automatic entropy temperature."""

    alpha: float = 0.2
    """Initial entropy temperature α (the fixed one with --no-autotune)."""
    autotune: bool = True
    """Learn α by min_α E[−α (log π(a|s) + H̄)], H̄ = target_entropy."""
    target_entropy: float | None = None
    """Target entropy H̄ of the automatic temperature (default −dim(A))."""
    alpha_lr: float = 1e-3
    """Adam step size of log α."""
    actor_gradient: str = "pathwise"
    """Actor gradient: pathwise (∇_a Q through a = μ_θ + zσ_θ) or likelihood_ratio (∇ log π · (Q − α log π − b))."""

    def validate(self) -> None:
        check_replay(self)
        check_positive(self, ("alpha", "alpha_lr"))
        check_actor_gradient(self)


@dataclass(frozen=True)
class DDPGConfig(ReplayBlock):
    """DDPG: deterministic actor μ_θ moved along ∇_a Q(s, a)|_{a=μ_θ(s)} ∇_θ μ_θ(s), one Q critic with targets."""

    exploration_noise: float = 0.1
    """Standard deviation of the Gaussian noise added to μ_θ(s) when acting, in units of the box's half width."""

    def validate(self) -> None:
        check_replay(self)
        if self.exploration_noise < 0:
            raise ConfigError(f"--exploration-noise must be non-negative, got {self.exploration_noise}")


@dataclass(frozen=True)
class TD3Config(DDPGConfig):
    """TD3: DDPG with twin Q critics (the minimum in the target), target policy smoothing and delayed actor updates."""

    policy_noise: float = 0.2
    """Standard deviation of the target policy smoothing noise, in units of the box's half width."""
    noise_clip: float = 0.5
    """The smoothing noise is clipped to ±noise_clip (half widths)."""
    policy_delay: int = 2
    """Critic updates per actor (and target) update."""

    def validate(self) -> None:
        super().validate()
        check_positive_ints(self, ("policy_delay",))
        if self.policy_noise < 0 or self.noise_clip < 0:
            raise ConfigError(f"--policy-noise and --noise-clip must be non-negative, got {self.policy_noise} "
                              f"and {self.noise_clip}")


@dataclass(frozen=True)
class OffPACConfig(ReplayBlock):
    """Off-policy actor-critic (Degris et al. 2012; lecture 003): θ along E_β[(π_θ/β)(Q − V) ∇ log π_θ] from
    replayed actions of older policies, Q critic by the expected Bellman target with a target network."""

    max_importance_weight: float | None = 10.0
    """Truncate ρ = π_θ/β at this value (none: untruncated, unbiased but high-variance)."""
    entropy_coef: float = 0.0
    """Weight of the policy's entropy bonus in the actor's objective."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and critic MLPs."""
    activation: str = "tanh"
    """Hidden activation: tanh or relu."""
    policy: str = "mlp"
    """Policy: mlp (Categorical / Gaussian head) or tabular (softmax table on one-hot observations)."""
    init_log_std: float = 0.0
    """Initial log σ of Gaussian policies."""

    def validate(self) -> None:
        check_replay(self)
        if self.max_importance_weight is not None and not self.max_importance_weight > 0:
            raise ConfigError(f"--max-importance-weight must be positive (or none), got {self.max_importance_weight}")
        if self.entropy_coef < 0:
            raise ConfigError(f"--entropy-coef must be non-negative, got {self.entropy_coef}")
        if self.policy not in ("mlp", "tabular"):
            raise ConfigError(f"--policy {self.policy!r} is not available in offpac; use mlp or tabular")


def check_actor_gradient(config) -> None:
    if config.actor_gradient not in ACTOR_GRADIENTS:
        raise ConfigError(f"--actor-gradient {config.actor_gradient!r} is not known; use one of "
                          f"{', '.join(ACTOR_GRADIENTS)}")


# ------------------------------------------------------------------------------------ shared parts


def require_box(name: str, env) -> Box:
    """The env's Box action space, or a one-line ConfigError naming the space and the presets that fit."""
    space = env.action_space
    if not isinstance(space, Box):
        raise ConfigError(f"{name} needs continuous (Box) actions; this environment's are {space!r}; for "
                          "Discrete actions use offpac, ppo, a2c, trpo or another on-policy preset")
    return space


def available_memory_bytes() -> int:
    """Memory a new buffer may take: the first device's free memory, or the host's available RAM on CPU."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    import psutil

    return int(psutil.virtual_memory().available)


def check_buffer_memory(config, env, available: int | None = None) -> None:
    """A ConfigError before anything is allocated when the replay buffer cannot fit (per seed)."""
    obs_shape = env.observation_space.shape
    action_space = env.action_space
    action_shape, action_dtype = ((), np.int32) if isinstance(action_space, Discrete) else (action_space.shape,
                                                                                           np.float32)
    need = config.buffer_size * replay.transition_bytes(obs_shape, np.float32, action_shape, action_dtype)
    available = available_memory_bytes() if available is None else available
    if need > available:
        raise ConfigError(f"--buffer-size {config.buffer_size} needs {need / 2**30:.1f} GiB per seed for its replay "
                          f"buffer but {available / 2**30:.1f} GiB is available; lower --buffer-size")


def uniform_action_sampler(action_space):
    """`sample(key, batch_shape) -> (action, log_prob)` uniform over the action space (a finite Box or Discrete)."""
    if isinstance(action_space, Discrete):
        n = action_space.n

        def sample(key, batch_shape):
            return (jax.random.randint(key, batch_shape, 0, n),
                    jnp.full(batch_shape, -math.log(n), jnp.float32))
        return sample
    low, high = np.asarray(action_space.low, np.float32), np.asarray(action_space.high, np.float32)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        return None
    log_density = -float(np.sum(np.log(high - low)))

    def sample(key, batch_shape):
        action = jax.random.uniform(key, batch_shape + low.shape, jnp.float32, low, high)
        return action, jnp.full(batch_shape, log_density, jnp.float32)
    return sample


def exploring_act(act, action_space, learning_starts: int):
    """Wrap `act(params, obs, key)`: uniform actions while params["uniform_actions"] is set (the buffer holds
    fewer than `learning_starts` transitions). Without finite bounds, the policy acts from the start."""
    uniform = uniform_action_sampler(action_space)
    if uniform is None or learning_starts == 0:
        return act

    def wrapped(params, obs, key):
        k_policy, k_uniform = jax.random.split(key)
        action, log_prob = act(params, obs, k_policy)
        u_action, u_log_prob = uniform(k_uniform, obs.shape[:-1])
        explore = params["uniform_actions"]
        return (jnp.where(explore, u_action.astype(action.dtype), action), jnp.where(explore, u_log_prob, log_prob))

    return wrapped


def replay_learn(config, buffer: replay.ReplayBuffer, update_step, learning_starts: int):
    """`learn(agent_state, batch, key)`: add the batch to the buffer, then (once it holds
    max(learning_starts, minibatch_size) transitions) num_envs × num_steps × updates_per_step times
    `update_step(params, update_state, minibatch, key) -> (params, update_state, metrics)`.

    update_state["replay"] is the buffer (`update_step` sees the update state without it);
    params["uniform_actions"] tells `act` to explore uniformly.

    The buffer is updated in place when the agent state is donated, which needs no read of the old
    buffer after the insert. Under a vmap of several rows (`pgax.batch.ROWS_AXIS`) the insert is a
    scatter that XLA keeps apart from the sampling gathers, so inserting first and then sampling is
    the cheaper program. With one row, XLA turns the scatter into a dynamic-update-slice fused into
    the gathers, which copies the whole buffer each step; there the minibatches are drawn by
    `sample_after_add` (the same rows) and the insert comes last (`after_every_read`).
    """
    num_updates = config.num_envs * config.num_steps * config.updates_per_step
    ready_at = max(learning_starts, config.minibatch_size)

    def learn(state: AgentState, batch: Batch, key):
        # minibatches drawn before the branch: the conditional's operands stay small (no buffer copy)
        sample_keys, update_keys = jnp.split(jax.random.split(key, 2 * num_updates), 2)
        items, buffer_state = replay.transitions(batch), state.update_state["replay"]
        stored = jnp.minimum(buffer.size(buffer_state) + items["reward"].shape[0], buffer.capacity)
        # The same draws either way: insert then sample, or sample as from the buffer with the batch
        # added and insert after every read (which order fits which case: the docstring).
        insert_first = rows_in_program() > 1
        if insert_first:
            buffer_state = buffer.add(buffer_state, items)
            minibatches = jax.vmap(lambda k: buffer.sample(buffer_state, k))(sample_keys)
        else:
            minibatches = buffer.sample_after_add(buffer_state, items, sample_keys)
        update_state = {k: v for k, v in state.update_state.items() if k != "replay"}  # the buffer is only read

        def one(carry, xs):
            params, update_state = carry
            minibatch, k = xs
            params, update_state, metrics = update_step(params, update_state, minibatch, k)
            return (params, update_state), metrics

        first = jax.tree_util.tree_map(lambda x: x[0], (minibatches, update_keys))
        metric_shapes = jax.eval_shape(lambda c: one(c, first)[1], (state.params, update_state))

        def run(carry):
            carry, metrics = jax.lax.scan(one, carry, (minibatches, update_keys))
            return carry, jax.tree_util.tree_map(jnp.mean, metrics)

        def skip(carry):
            return carry, jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes)

        (params, update_state), metrics = jax.lax.cond(stored >= ready_at, run, skip, (state.params, update_state))
        if not insert_first:
            buffer_state = buffer.add(buffer_state, after_every_read(items, (params, update_state, metrics)))
        if "uniform_actions" in params:
            params = {**params, "uniform_actions": stored < learning_starts}
        metrics = {**metrics, "buffer_size": stored.astype(jnp.float32),
                   "updating": (stored >= ready_at).astype(jnp.float32)}
        return AgentState(params, {**update_state, "replay": buffer_state}), metrics

    return learn


def after_every_read(items, results):
    """`items` unchanged, made data-dependent on `results` (0 · Σ results; non-finite results make
    them NaN, a run the non-finite check stops anyway).

    XLA updates a donated buffer in place only if the insert is scheduled after every read of the
    old buffer, otherwise it copies the whole buffer first; a data dependency on what the reads
    computed fixes that order (a scheduling barrier alone does not survive fusion).
    """
    leaves = [x for x in jax.tree_util.tree_leaves(results) if jnp.issubdtype(x.dtype, jnp.floating)]
    zero = 0.0 * sum(jnp.sum(x).astype(jnp.float32) for x in leaves)
    return jax.tree_util.tree_map(lambda x: x + zero.astype(x.dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                                  items)


def init_replay(buffer: replay.ReplayBuffer, env, obs: jax.Array):
    """The empty buffer for transitions of `env` (obs: one observation)."""
    space = env.action_space
    action = jnp.zeros((), jnp.int32) if isinstance(space, Discrete) else jnp.zeros(space.shape, jnp.float32)
    return buffer.init(replay.example_transition(jnp.asarray(obs, jnp.float32), action))


def twin(model, count: int):
    """`count` independent copies of an action-value model: init stacks their parameters on a leading
    axis, apply returns [count, ...]."""

    def init(key, obs, action):
        return jax.vmap(lambda k: model.init(k, obs, action))(jax.random.split(key, count))

    def apply(params, obs, action):
        return jax.vmap(model.apply, in_axes=(0, None, None))(params, obs, action)

    return init, apply


def _adam_step(optimizer, loss_fn, params, opt_state):
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, aux, optax.tree.norm(grads)


def _prepare(config, env):
    check_buffer_memory(config, env)
    return replay.replay_buffer(config.buffer_size, config.minibatch_size)


# --------------------------------------------------------------------------------------------- sac


def make_sac(config: SACConfig, env, num_iterations: int) -> Agent:
    """Soft actor-critic (see the module docstring).

    params = {"policy", "q" (two stacked critics), "q_target", "log_alpha", "uniform_actions"};
    update_state = {"replay", "actor_opt", "critic_opt", "alpha_opt"}.
    """
    del num_iterations
    space = require_box("sac", env)
    buffer = _prepare(config, env)
    policy = squashed_gaussian_policy(space, config.hidden_sizes, config.activation)
    q_init, q_apply = twin(mlp_action_value(config.hidden_sizes, config.activation), 2)
    target_entropy = -float(space.dim) if config.target_entropy is None else float(config.target_entropy)
    actor_opt, critic_opt, alpha_opt = (optax.adam(config.actor_lr), optax.adam(config.critic_lr),
                                        optax.adam(config.alpha_lr))

    def init(key, obs):
        k_policy, k_q = jax.random.split(key)
        action = jnp.zeros((space.dim,), jnp.float32)
        q = q_init(k_q, obs, action)
        params = {"policy": policy.init(k_policy, obs), "q": q, "q_target": q,
                  "log_alpha": jnp.asarray(math.log(config.alpha), jnp.float32),
                  "uniform_actions": jnp.asarray(config.learning_starts > 0)}
        return AgentState(params, {"replay": init_replay(buffer, env, obs), "actor_opt": actor_opt.init(params["policy"]),
                                   "critic_opt": critic_opt.init(q), "alpha_opt": alpha_opt.init(params["log_alpha"])})

    def update_step(params, update_state, s, key):
        k_next, k_actor = jax.random.split(key)
        alpha = jnp.exp(params["log_alpha"])
        next_action, next_log_prob = policy.apply(params["policy"], s["next_obs"]).sample_and_log_prob(k_next)
        q_next = jnp.min(q_apply(params["q_target"], s["next_obs"], next_action), axis=0)
        target = jax.lax.stop_gradient(estimators.sarsa_targets(
            s["reward"], config.gamma * (1.0 - s["terminated"]), q_next - alpha * next_log_prob))

        def critic_loss(q_params):
            q = q_apply(q_params, s["obs"], s["action"])                     # [2, B]
            return jnp.sum(jnp.mean(jnp.square(q - target), axis=-1)), q

        q, critic_state, critic_loss_value, q_sa, critic_norm = _adam_step(
            critic_opt, critic_loss, params["q"], update_state["critic_opt"])

        def min_q(obs, action):
            return jnp.min(q_apply(q, obs, action), axis=0)

        def actor_loss(theta):
            if config.actor_gradient == "pathwise":
                objective = pathwise_actor_objective(policy.apply, theta, s["obs"], min_q, k_actor, entropy_coef=alpha)
            else:
                objective = likelihood_ratio_actor_objective(policy.apply, theta, s["obs"], min_q, k_actor,
                                                             entropy_coef=alpha)
            _, log_prob = policy.apply(theta, s["obs"]).sample_and_log_prob(k_actor)
            return -objective, jax.lax.stop_gradient(log_prob)

        theta, actor_state, actor_loss_value, log_prob, actor_norm = _adam_step(
            actor_opt, actor_loss, params["policy"], update_state["actor_opt"])
        log_alpha, alpha_state = params["log_alpha"], update_state["alpha_opt"]
        if config.autotune:
            def alpha_loss(la):
                return -jnp.mean(la * (log_prob + target_entropy)), None
            log_alpha, alpha_state, _, _, _ = _adam_step(alpha_opt, alpha_loss, log_alpha, alpha_state)
        params = {**params, "policy": theta, "q": q, "q_target": polyak_update(params["q_target"], q, config.tau),
                  "log_alpha": log_alpha}
        update_state = {**update_state, "actor_opt": actor_state, "critic_opt": critic_state, "alpha_opt": alpha_state}
        metrics = {"critic_loss": critic_loss_value, "actor_loss": actor_loss_value, "q_mean": jnp.mean(q_sa),
                   "alpha": alpha, "entropy": -jnp.mean(log_prob), "actor_grad_norm": actor_norm,
                   "critic_grad_norm": critic_norm}
        return params, update_state, metrics

    def act(params, obs, key):
        return policy.apply(params["policy"], obs).sample_and_log_prob(key)

    return Agent(init, exploring_act(act, space, config.learning_starts), mode_action(policy),
                 replay_learn(config, buffer, update_step, config.learning_starts))


# ------------------------------------------------------------------------------------ td3 and ddpg


def _make_deterministic(config, env, name: str, *, num_critics: int, policy_noise: float, noise_clip: float,
                        policy_delay: int) -> Agent:
    """DDPG and TD3: deterministic actor μ_θ, `num_critics` Q critics (the minimum in the target), target
    policy smoothing of `policy_noise` clipped at `noise_clip`, actor and targets every `policy_delay` updates.

    params = {"policy", "policy_target", "q" (stacked critics), "q_target", "uniform_actions"};
    update_state = {"replay", "actor_opt", "critic_opt", "updates"}.
    """
    space = require_box(name, env)
    buffer = _prepare(config, env)
    actor = deterministic_policy(space, config.hidden_sizes, config.activation)
    q_init, q_apply = twin(mlp_action_value(config.hidden_sizes, config.activation), num_critics)
    low, high = jnp.asarray(space.low, jnp.float32), jnp.asarray(space.high, jnp.float32)
    half_width = (high - low) / 2.0
    actor_opt, critic_opt = optax.adam(config.actor_lr), optax.adam(config.critic_lr)

    def init(key, obs):
        k_policy, k_q = jax.random.split(key)
        theta = actor.init(k_policy, obs)
        q = q_init(k_q, obs, jnp.zeros((space.dim,), jnp.float32))
        params = {"policy": theta, "policy_target": theta, "q": q, "q_target": q,
                  "uniform_actions": jnp.asarray(config.learning_starts > 0)}
        return AgentState(params, {"replay": init_replay(buffer, env, obs), "actor_opt": actor_opt.init(theta),
                                   "critic_opt": critic_opt.init(q), "updates": jnp.zeros((), jnp.int32)})

    def update_step(params, update_state, s, key):
        noise = jnp.clip(policy_noise * jax.random.normal(key, s["action"].shape), -noise_clip, noise_clip)
        next_action = jnp.clip(actor.apply(params["policy_target"], s["next_obs"]) + noise * half_width, low, high)
        q_next = jnp.min(q_apply(params["q_target"], s["next_obs"], next_action), axis=0)
        target = jax.lax.stop_gradient(estimators.sarsa_targets(
            s["reward"], config.gamma * (1.0 - s["terminated"]), q_next))

        def critic_loss(q_params):
            q = q_apply(q_params, s["obs"], s["action"])
            return jnp.sum(jnp.mean(jnp.square(q - target), axis=-1)), q

        q, critic_state, critic_loss_value, q_sa, critic_norm = _adam_step(
            critic_opt, critic_loss, params["q"], update_state["critic_opt"])
        updates = update_state["updates"] + 1

        def actor_and_targets(_):
            def actor_loss(theta):  # the deterministic policy gradient: ∇_a Q_1(s, a)|_{a=μ_θ(s)} ∇_θ μ_θ(s)
                return -jnp.mean(q_apply(q, s["obs"], actor.apply(theta, s["obs"]))[0]), None
            theta, actor_state, loss, _, norm = _adam_step(actor_opt, actor_loss, params["policy"],
                                                           update_state["actor_opt"])
            return (theta, actor_state, polyak_update(params["policy_target"], theta, config.tau),
                    polyak_update(params["q_target"], q, config.tau), loss, norm)

        def hold(_):
            return (params["policy"], update_state["actor_opt"], params["policy_target"], params["q_target"],
                    jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))

        theta, actor_state, policy_target, q_target, actor_loss_value, actor_norm = jax.lax.cond(
            updates % policy_delay == 0, actor_and_targets, hold, None)
        params = {**params, "policy": theta, "policy_target": policy_target, "q": q, "q_target": q_target}
        update_state = {**update_state, "actor_opt": actor_state, "critic_opt": critic_state, "updates": updates}
        metrics = {"critic_loss": critic_loss_value, "actor_loss": actor_loss_value, "q_mean": jnp.mean(q_sa),
                   "actor_grad_norm": actor_norm, "critic_grad_norm": critic_norm}
        return params, update_state, metrics

    noise_std = config.exploration_noise * half_width

    def act(params, obs, key):
        mean = actor.apply(params["policy"], obs)
        noise = noise_std * jax.random.normal(key, mean.shape)
        log_prob = jnp.sum(-0.5 * jnp.square(noise / jnp.maximum(noise_std, 1e-12)) - jnp.log(
            jnp.maximum(noise_std, 1e-12)) - 0.5 * math.log(2 * math.pi), axis=-1)
        return jnp.clip(mean + noise, low, high), log_prob

    def act_deterministic(params, obs):
        return actor.apply(params["policy"], obs)

    return Agent(init, exploring_act(act, space, config.learning_starts), act_deterministic,
                 replay_learn(config, buffer, update_step, config.learning_starts))


def make_td3(config: TD3Config, env, num_iterations: int) -> Agent:
    """TD3 (see the module docstring and `_make_deterministic`)."""
    del num_iterations
    return _make_deterministic(config, env, "td3", num_critics=2, policy_noise=config.policy_noise,
                               noise_clip=config.noise_clip, policy_delay=config.policy_delay)


def make_ddpg(config: DDPGConfig, env, num_iterations: int) -> Agent:
    """DDPG (see the module docstring and `_make_deterministic`)."""
    del num_iterations
    return _make_deterministic(config, env, "ddpg", num_critics=1, policy_noise=0.0, noise_clip=0.0, policy_delay=1)


# ------------------------------------------------------------------------------------------ offpac


def offpac_critic(config, env):
    """(init(key, obs), q_sa(params, obs, action) -> [B], next_value(params, policy_dist, next_obs, key) -> [B])
    of offpac's Q critic: one output per action for Discrete actions (the next value Σ_a π Q exactly), an MLP
    of [s, a] for Box ones (the next value Q(s′, a′) at one a′ ~ π)."""
    space = env.action_space
    if isinstance(space, Discrete):
        model = mlp_action_values(space.n, config.hidden_sizes, config.activation)

        def q_sa(params, obs, action):
            return jnp.take_along_axis(model.apply(params, obs), action[..., None].astype(jnp.int32), -1)[..., 0]

        def state_value(params, dist, obs, key):
            del key
            return jnp.sum(dist.probs * model.apply(params, obs), axis=-1)

        return model.init, q_sa, state_value
    model = mlp_action_value(config.hidden_sizes, config.activation)

    def init(key, obs):
        return model.init(key, obs, jnp.zeros((space.dim,), jnp.float32))

    def state_value(params, dist, obs, key):
        return model.apply(params, obs, dist.sample(key))

    return init, model.apply, state_value


def make_offpac(config: OffPACConfig, env, num_iterations: int) -> Agent:
    """Off-policy actor-critic (see the module docstring).

    params = {"policy", "q", "q_target", "uniform_actions"}; update_state = {"replay", "actor_opt", "critic_opt"}.
    Each transition's `log_prob` is the behaviour policy's log β(a|s) at acting time.
    """
    del num_iterations
    if not isinstance(env.action_space, (Box, Discrete)):
        raise ConfigError(f"offpac needs Discrete or Box actions (its Q critic takes one of them); this environment's "
                          f"are {env.action_space!r}; use ppo, a2c, trpo or another on-policy preset")
    buffer = _prepare(config, env)
    policy = make_policy(config, env)
    q_init, q_sa, state_value = offpac_critic(config, env)
    actor_opt, critic_opt = optax.adam(config.actor_lr), optax.adam(config.critic_lr)
    explores = uniform_action_sampler(env.action_space) is not None and config.learning_starts > 0

    def init(key, obs):
        k_policy, k_q = jax.random.split(key)
        theta, q = policy.init(k_policy, obs), q_init(k_q, obs)
        params = {"policy": theta, "q": q, "q_target": q}
        if explores:
            params["uniform_actions"] = jnp.asarray(True)
        return AgentState(params, {"replay": init_replay(buffer, env, obs), "actor_opt": actor_opt.init(theta),
                                   "critic_opt": critic_opt.init(q)})

    def update_step(params, update_state, s, key):
        k_next, k_baseline = jax.random.split(key)
        next_dist = policy.apply(params["policy"], s["next_obs"])
        target = jax.lax.stop_gradient(estimators.sarsa_targets(
            s["reward"], config.gamma * (1.0 - s["terminated"]),
            state_value(params["q_target"], next_dist, s["next_obs"], k_next)))

        def critic_loss(q_params):
            q = q_sa(q_params, s["obs"], s["action"])
            return jnp.mean(jnp.square(q - target)), q

        q, critic_state, critic_loss_value, q_values, critic_norm = _adam_step(
            critic_opt, critic_loss, params["q"], update_state["critic_opt"])

        def actor_loss(theta):
            dist = policy.apply(theta, s["obs"])
            log_prob = dist.log_prob(s["action"])
            baseline = state_value(q, jax.lax.stop_gradient(dist), s["obs"], k_baseline)
            objective = importance_weighted_actor_objective(log_prob, s["log_prob"], q_sa(q, s["obs"], s["action"]),
                                                            baseline, config.max_importance_weight)
            entropy = jnp.mean(dist.entropy())
            return -(objective + config.entropy_coef * entropy), (entropy, jnp.exp(log_prob - s["log_prob"]))

        theta, actor_state, actor_loss_value, (entropy, ratio), actor_norm = _adam_step(
            actor_opt, actor_loss, params["policy"], update_state["actor_opt"])
        params = {**params, "policy": theta, "q": q, "q_target": polyak_update(params["q_target"], q, config.tau)}
        update_state = {**update_state, "actor_opt": actor_state, "critic_opt": critic_state}
        metrics = {"critic_loss": critic_loss_value, "actor_loss": actor_loss_value, "q_mean": jnp.mean(q_values),
                   "entropy": entropy, "importance_weight": jnp.mean(ratio), "actor_grad_norm": actor_norm,
                   "critic_grad_norm": critic_norm}
        return params, update_state, metrics

    def act(params, obs, key):
        dist = policy.apply(params["policy"], obs)
        action = dist.sample(key)
        return action, dist.log_prob(action)

    return Agent(init, exploring_act(act, env.action_space, config.learning_starts if explores else 0),
                 mode_action(policy), replay_learn(config, buffer, update_step, config.learning_starts))
