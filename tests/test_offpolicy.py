"""Off-policy actor-critic (lecture 003): the replay buffer, the squashed Gaussian, the actor gradients
against exact ones, off-policy evaluation against exact Q^π, the importance-weighted gradient against
exact.policy_gradient, bad input, and learning on Pendulum.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp
import optax
import pytest

from pgax import envs, estimators, exact
from pgax.algorithms import PRESETS
from pgax.batch import ROWS_AXIS, Batch
from pgax.algorithms.offpolicy import SACConfig, TD3Config, check_buffer_memory, make_sac, make_td3
from pgax.distributions import SquashedGaussian
from pgax.envs.lqr import default_lqr, lqr_gradient, lqr_optimal_gain, lqr_state_covariance, lqr_value_matrix
from pgax.envs.tabular import garnet_mdp
from pgax.errors import ConfigError
from pgax.policies import linear_gain_policy, linear_gaussian_policy
from pgax.replay import replay_buffer
from pgax.updates import (importance_weighted_actor_objective, likelihood_ratio_actor_objective,
                          pathwise_actor_objective, polyak_update)
from tests.helpers import seed
from tests.learning import LearningClaim, preset_returns


# ------------------------------------------------------------------------------- parts, exactly


def test_replay_buffer_is_a_ring_that_samples_every_stored_transition_uniformly():
    buffer = replay_buffer(capacity=10, sample_size=10)
    state = buffer.init({"x": jnp.zeros(())})
    for i in range(4):  # 12 items into 10 slots: 0 and 1 are overwritten by 10 and 11
        state = buffer.add(state, {"x": jnp.arange(3.0) + 3 * i})
    assert int(buffer.size(state)) == 10
    assert sorted(np.asarray(state.experience["x"][0]).tolist()) == list(range(2, 12))
    keys = jax.random.split(jax.random.key(seed(0)), 500)
    samples = jax.vmap(buffer.sample, in_axes=(None, 0))(state, keys)["x"]
    counts = np.bincount(np.asarray(samples, int).ravel(), minlength=12)
    assert counts[:2].sum() == 0
    expected = 5000 / 10
    assert np.all(np.abs(counts[2:] - expected) < 5 * np.sqrt(expected))  # each stored item with probability 1/10


@pytest.mark.parametrize("capacity,count,adds", [(10, 3, 7), (7, 7, 3), (8, 1, 12), (8, 3, 9), (1000, 4, 5)])
def test_sample_after_add_draws_exactly_what_sample_draws_from_the_added_buffer(capacity, count, adds):
    """The same rows as `sample(add(state, items), key)`, also while the insert window wraps around
    the ring and overwrites the oldest items."""
    buffer = replay_buffer(capacity, sample_size=6)
    state = buffer.init({"x": jnp.zeros(()), "y": jnp.zeros((2,))})
    for i in range(adds):
        items = {"x": jnp.arange(count, dtype=jnp.float32) + 100 * i, "y": jnp.ones((count, 2)) * i}
        keys = jax.random.split(jax.random.key(seed(i)), 4)
        added = buffer.add(state, items)
        expected = jax.vmap(buffer.sample, in_axes=(None, 0))(added, keys)
        got = buffer.sample_after_add(state, items, keys)
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name])
        state = added


def zero_learn_inputs(agent, env, config, rows):
    obs = jnp.zeros(env.observation_space.shape)
    state = jax.vmap(agent.init, in_axes=(0, None))(jax.random.split(jax.random.key(0), rows), obs)
    shape = (rows, config.num_steps, config.num_envs)
    batch = Batch(obs=jnp.zeros(shape + obs.shape), action=jnp.zeros(shape + env.action_space.shape),
                  reward=jnp.zeros(shape), terminated=jnp.zeros(shape, bool), truncated=jnp.zeros(shape, bool),
                  next_obs=jnp.zeros(shape + obs.shape), log_prob=jnp.zeros(shape))
    return state, batch, jax.random.split(jax.random.key(1), rows)


@pytest.mark.parametrize("preset, rows", [("sac", 1), ("td3", 1), ("sac", 3)])
def test_the_learn_step_inserts_into_a_donated_buffer_in_place(preset, rows):
    """With the agent state donated (as the drivers do), the compiled learn step holds no copy of
    a buffer-sized array (XLA copies the whole buffer when a read of it is scheduled after the
    in-place insert): with one row, where XLA fuses the insert into the sampling gathers, and with
    several rows of the drivers' vmap over `ROWS_AXIS`, where the learn step inserts first."""
    capacity = 100_003  # a size no other array has
    env = envs.make("Pendulum-v1")
    config = PRESETS[preset].config_type(buffer_size=capacity, learning_starts=10, hidden_sizes=(16,),
                                         minibatch_size=32)
    agent = PRESETS[preset].make_agent(config, env, 10)
    text = jax.jit(jax.vmap(agent.learn, axis_name=ROWS_AXIS), donate_argnums=(0,)).lower(
        *zero_learn_inputs(agent, env, config, rows)).compile().as_text()
    copies = [line for line in text.splitlines() if " copy(" in line and str(capacity) in line]
    assert copies == []


def test_inserting_first_or_last_gives_the_same_learn_steps():
    """The learn step under a vmap over `ROWS_AXIS` (several rows: insert, then sample) and under an
    unnamed vmap (sample as from the added buffer, insert last) draw the same minibatches: the same
    buffers, exactly, and the same parameters."""
    env = envs.make("Pendulum-v1")
    config = SACConfig(buffer_size=64, learning_starts=8, hidden_sizes=(8,), minibatch_size=8)
    agent = make_sac(config, env, 10)
    state, batch, _ = zero_learn_inputs(agent, env, config, 2)
    named, unnamed = (jax.jit(jax.vmap(agent.learn, axis_name=name) if name else jax.vmap(agent.learn))
                      for name in (ROWS_AXIS, None))
    first = last = state
    for step in range(80):  # past learning_starts and around the ring
        noise = jax.random.normal(jax.random.key(seed(step)), batch.obs.shape)
        step_batch = batch.replace(obs=noise, next_obs=noise + 1, reward=noise[..., 0])
        keys = jax.random.split(jax.random.key(seed(1000 + step)), 2)
        first, _ = named(first, step_batch, keys)
        last, _ = unnamed(last, step_batch, keys)
    for a, b in zip(jax.tree_util.tree_leaves(first.update_state["replay"]),
                    jax.tree_util.tree_leaves(last.update_state["replay"])):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(jax.tree_util.tree_leaves(first.params), jax.tree_util.tree_leaves(last.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_squashed_gaussian_density_is_the_change_of_variables_and_integrates_to_one():
    dist = SquashedGaussian(jnp.array([[0.3]]), jnp.array([[-0.2]]), jnp.array([1.0]), jnp.array([2.0]))
    action, log_prob = dist.sample_and_log_prob(jax.random.key(0))
    assert float(jnp.abs(log_prob - dist.log_prob(action)).max()) < 1e-4
    assert -1.0 < float(action.min()) and float(action.max()) < 3.0
    grid = jnp.linspace(-1.0 + 1e-4, 3.0 - 1e-4, 200_001)[:, None, None]
    density = jnp.exp(dist.log_prob(grid))[:, 0]
    assert abs(float(jnp.sum(density)) * (4.0 - 2e-4) / 200_000 - 1.0) < 1e-3
    assert float(dist.mode()[0, 0]) == pytest.approx(1.0 + 2.0 * np.tanh(0.3), rel=1e-6)


def test_polyak_update_moves_the_target_by_tau():
    target, online = {"w": jnp.zeros(3)}, {"w": jnp.ones(3)}
    np.testing.assert_allclose(polyak_update(target, online, 0.1)["w"], 0.1)
    np.testing.assert_allclose(polyak_update(target, online, 1.0)["w"], 1.0)


# ---------------------------------------------------- actor gradients against the exact gradient


def _gradient_samples(objective, params, num):
    """[num, k] per-sample gradients of `objective(params, key)` (each key one sample)."""
    flat = lambda g: jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(g)])
    keys = jax.random.split(jax.random.key(seed(7)), num)
    return np.asarray(jax.vmap(lambda k: flat(jax.grad(objective)(params, k)))(keys), np.float64)


def _assert_unbiased(samples, exact_grad, z_bar=4.5):
    mean, sem = samples.mean(0), samples.std(0, ddof=1) / np.sqrt(len(samples))
    z = np.abs(mean - exact_grad) / np.maximum(sem, 1e-12)
    assert np.all(z < z_bar), f"mean {mean}, exact {exact_grad}, z {z}"


def test_pathwise_and_likelihood_ratio_gradients_are_unbiased_on_lqr():
    """∇_K of E_{x~N(0,Σ_K)} E_{u~N(−Kx,σ²)} Q^K(x, u) = −∇C(K) (Fazel et al.: 2 E_K Σ_K) for Q^K(x, u) =
    −(xᵀQx + uᵀRu + (Ax + Bu)ᵀ P_K (Ax + Bu)); the pathwise estimate has far lower variance."""
    problem = default_lqr()
    K = 0.5 * np.asarray(lqr_optimal_gain(problem)[0])
    P, sigma = lqr_value_matrix(problem, K), lqr_state_covariance(problem, K)
    A, B, Qc, R = (np.asarray(m, np.float32) for m in (problem.A, problem.B, problem.Q, problem.R))
    chol = np.linalg.cholesky(sigma).astype(np.float32)
    P = jnp.asarray(P, jnp.float32)

    def q_fn(x, u):
        nxt = x @ A.T + u @ B.T
        return -(jnp.einsum("bi,ij,bj->b", x, Qc, x) + jnp.einsum("bi,ij,bj->b", u, R, u)
                 + jnp.einsum("bi,ij,bj->b", nxt, P, nxt))

    policy = linear_gain_policy(K.shape[1], K.shape[0], init_log_std=np.log(0.3))
    params = {"gain": jnp.asarray(K, jnp.float32), "log_std": jnp.full((K.shape[0],), np.log(0.3), jnp.float32)}
    exact_grad = np.concatenate([-np.asarray(lqr_gradient(problem, K)).ravel(), np.zeros(K.shape[0])])

    def states(key):
        return jax.random.normal(key, (1, K.shape[1])) @ chol.T

    def pathwise(p, key):
        k_x, k_a = jax.random.split(key)
        return pathwise_actor_objective(policy.apply, p, states(k_x), q_fn, k_a)

    def likelihood_ratio(p, key):
        k_x, k_a = jax.random.split(key)
        return likelihood_ratio_actor_objective(policy.apply, p, states(k_x), q_fn, k_a)

    # leaves in tree order: gain, then log_std (whose exact gradient is σ ∂/∂σ E Q, not 0: compare the gain only)
    gain = slice(0, K.size)
    pw = _gradient_samples(pathwise, params, 100_000)
    lr = _gradient_samples(likelihood_ratio, params, 100_000)
    _assert_unbiased(pw[:, gain], exact_grad[gain])
    _assert_unbiased(lr[:, gain], exact_grad[gain])
    ratio = lr[:, gain].var(0).sum() / pw[:, gain].var(0).sum()
    print(f"LQR gain gradient: variance of likelihood ratio / pathwise = {ratio:.1f}")
    assert ratio > 2.0


def test_pathwise_and_likelihood_ratio_gradients_are_unbiased_on_the_single_state_gaussian():
    """Example 12.1's problem: r = a, Q(s, a) = a + const, so ∇_θ E_{a~N(θ1, θ2²)} Q = [1, 0] per step."""
    policy = linear_gaussian_policy(1, (0.5, 0.8))
    theta = jnp.asarray([0.5, 0.8])
    obs = jnp.ones((1, 1))

    def q_fn(_, a):
        return a[..., 0] + 2.0

    pw = _gradient_samples(lambda p, k: pathwise_actor_objective(policy.apply, p, obs, q_fn, k), theta, 50_000)
    lr = _gradient_samples(lambda p, k: likelihood_ratio_actor_objective(policy.apply, p, obs, q_fn, k), theta, 50_000)
    _assert_unbiased(pw, np.array([1.0, 0.0]))
    _assert_unbiased(lr, np.array([1.0, 0.0]))
    np.testing.assert_allclose(pw[:, 0], 1.0, atol=1e-6)      # pathwise: exactly 1 for the mean, every sample
    assert lr[:, 0].var() > 0.1


def test_importance_weighted_gradient_is_unbiased_for_the_exact_policy_gradient():
    """E_{s~d^π, a~β}[(π/β) (Q^π − V^π) ∇ log π] / (1 − γ) = exact.policy_gradient, for β ≠ π; without the
    weights (plain E_β[(Q − V) ∇ log π]) the estimate is far off."""
    mdp = garnet_mdp(3, 6, 3, discount=0.8)
    rng = np.random.default_rng(5)
    theta = jnp.asarray(rng.normal(size=(6, 3)))
    pi = jax.nn.softmax(theta, -1)
    beta = jax.nn.softmax(jnp.asarray(rng.normal(size=(6, 3))), -1)
    q, v = np.asarray(exact.action_values(mdp, pi)), np.asarray(exact.state_values(mdp, pi))
    d = np.asarray(exact.discounted_visitation(mdp, pi))
    exact_grad = np.asarray(exact.policy_gradient(mdp, theta)).ravel()
    n = 200_000
    key_s, key_a = jax.random.split(jax.random.key(seed(11)))
    s = jax.random.choice(key_s, 6, (n,), p=jnp.asarray(d / d.sum()))
    a = jax.random.categorical(key_a, jnp.log(beta[s]))
    weight = d.sum() / (1.0 - float(mdp.discount))

    def per_sample(th, si, ai, weighted):
        log_pi = jax.nn.log_softmax(th[si])[ai]
        log_beta = jnp.log(beta[si, ai]) if weighted else jax.lax.stop_gradient(log_pi)
        return weight * importance_weighted_actor_objective(log_pi[None], log_beta[None], jnp.asarray(q)[si, ai][None],
                                                            jnp.asarray(v)[si][None])

    grads = lambda weighted: np.asarray(jax.vmap(lambda si, ai: jax.grad(per_sample)(
        theta.astype(jnp.float32), si, ai, weighted).ravel())(s, a), np.float64)
    _assert_unbiased(grads(True), exact_grad)
    plain = grads(False).mean(0)
    assert np.linalg.norm(plain - exact_grad) > 0.25 * np.linalg.norm(exact_grad)


def test_bellman_critic_from_replayed_behaviour_data_converges_to_the_exact_q_of_the_target_policy():
    """Tabular Q_φ fitted from a replay buffer of β's transitions by min (Q_φ(s,a) − (r + γ Σ_a' π Q_φ̂(s',a')))²
    with a Polyak target: it converges to exact Q^π of π ≠ β."""
    mdp = garnet_mdp(1, 5, 2, discount=0.7)
    rng = np.random.default_rng(2)
    pi = jax.nn.softmax(jnp.asarray(rng.normal(size=(5, 2)) * 2.0), -1)
    q_exact = np.asarray(exact.action_values(mdp, pi))
    n = 20_000
    k_s, k_a, k_next, k_train = jax.random.split(jax.random.key(seed(3)), 4)
    s = jax.random.randint(k_s, (n,), 0, 5)
    a = jax.random.randint(k_a, (n,), 0, 2)                                      # β: uniform
    next_s = jax.random.categorical(k_next, jnp.log(jnp.asarray(mdp.transitions, jnp.float32)[s, a]))
    buffer = replay_buffer(n, 256)
    state = buffer.add(buffer.init({"s": jnp.zeros((), jnp.int32), "a": jnp.zeros((), jnp.int32),
                                    "r": jnp.zeros(()), "s2": jnp.zeros((), jnp.int32)}),
                       {"s": s, "a": a, "r": jnp.asarray(mdp.rewards, jnp.float32)[s, a], "s2": next_s})
    opt = optax.adam(0.05)
    gamma, pi32 = float(mdp.discount), pi.astype(jnp.float32)

    def step(carry, key):
        q, q_target, opt_state = carry
        mb = buffer.sample(state, key)
        target = estimators.expected_sarsa_targets(mb["r"], jnp.full_like(mb["r"], gamma), q_target[mb["s2"]],
                                                   pi32[mb["s2"]])
        grads = jax.grad(lambda w: jnp.mean(jnp.square(w[mb["s"], mb["a"]] - target)))(q)
        updates, opt_state = opt.update(grads, opt_state)
        q = optax.apply_updates(q, updates)
        return (q, polyak_update(q_target, q, 0.05), opt_state), None

    q0 = jnp.zeros((5, 2))
    (q, _, _), _ = jax.lax.scan(step, (q0, q0, opt.init(q0)), jax.random.split(k_train, 3000))
    np.testing.assert_allclose(np.asarray(q), q_exact, atol=0.05 * np.abs(q_exact).max())


# ------------------------------------------------------------------------------------ bad input


def test_continuous_presets_refuse_discrete_actions_in_one_line():
    env = envs.make("CartPole-v1")
    for name in ("sac", "td3", "ddpg"):
        preset = PRESETS[name]
        with pytest.raises(ConfigError, match=r"needs continuous \(Box\) actions.*offpac") as info:
            preset.make_agent(preset.config_type(), env, 10)
        assert "\n" not in str(info.value)


def test_a_buffer_larger_than_memory_is_refused_before_allocation():
    env = envs.make("Pendulum-v1")
    with pytest.raises(ConfigError, match="--buffer-size 1000000 needs .* GiB per seed .* lower --buffer-size"):
        check_buffer_memory(SACConfig(), env, available=2**20)
    check_buffer_memory(SACConfig(), env, available=2**30)
    with pytest.raises(ConfigError, match="--minibatch-size 256 exceeds --buffer-size 100"):
        SACConfig(buffer_size=100).validate()


# ------------------------------------------------------------------------------------- learning

SMALL = dict(hidden_sizes=(64, 64), learning_starts=1000, buffer_size=10_000, minibatch_size=128)
PENDULUM_CLAIMS = {
    # Calibrated with `pgax train sac --env Pendulum-v1 --steps 5000 --seeds 5 --seed S --learning-starts 1000
    # --hidden-sizes 64 64 --buffer-size 10000 --minibatch-size 128 --eval-episodes 10` (deterministic
    # evaluation; random actions score about −1200) on S = 0, 100, 200, 300 (docs/testing.md).
    "sac": LearningClaim("sac Pendulum-v1 5k", preset_returns, {"eval_return": (">=", -450.0)},
                         measure_kwargs=dict(make=make_sac, config=SACConfig(**SMALL), steps=5000, eval_episodes=10,
                                             env_id="Pendulum-v1")),
    # The same with `pgax train td3 ... --steps 8000 --actor-lr 1e-3 --gamma 0.98`: TD3's deterministic actor
    # explores by additive noise only and lags SAC at 5k steps (−910..−238 on S = 0). At 8k the fourth-best
    # seed of each set is at −409 or better (−465 and −409 on S = 200).
    "td3": LearningClaim("td3 Pendulum-v1 8k", preset_returns, {"eval_return": (">=", -600.0)},
                         measure_kwargs=dict(make=make_td3, config=TD3Config(**SMALL, actor_lr=1e-3, gamma=0.98),
                                             steps=8000, eval_episodes=10, env_id="Pendulum-v1")),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PENDULUM_CLAIMS))
def test_learns_pendulum(name):
    PENDULUM_CLAIMS[name].check()


# ------------------------------------------------------------------------------------- resume


def test_a_resumed_sac_run_restores_its_replay_buffer_and_equals_the_whole_run(tmp_path):
    """120 steps, then `pgax resume --steps 200`, equals 200 steps in one go (metrics byte for byte and every
    array of the final state, the buffer included); losing the buffer at the checkpoint would change both."""
    from pgax.cli import main
    from tests.test_experiment import assert_same_run, run_folder

    base = ["train", "sac", "--env", "Pendulum-v1", "--seeds", "2", "--seed", str(seed(1)), "--eval-episodes", "0",
            "--no-progress", "--no-tensorboard", "--checkpoint-every", "0", "--hidden-sizes", "8", "8",
            "--buffer-size", "300", "--minibatch-size", "16", "--learning-starts", "40", "--chunk-iterations", "20"]
    assert main(base + ["--steps", "200", "--out", str(tmp_path / "whole")]) == 0
    assert main(base + ["--steps", "120", "--out", str(tmp_path / "part")]) == 0
    part = run_folder(tmp_path / "part")
    assert main(["resume", str(part), "--steps", "200", "--no-progress"]) == 0
    assert_same_run(run_folder(tmp_path / "whole"), part, 200)


@pytest.mark.parametrize("name", sorted(PENDULUM_CLAIMS))
def test_the_pendulum_config_files_are_the_claims_settings(name):
    """configs/<name>-pendulum.yaml loads with `--config` and holds exactly the settings the claim tests."""
    from pathlib import Path

    from pgax.cli import RunOptions, load_config_file
    preset = PRESETS[name]
    path = Path(__file__).resolve().parents[1] / "configs" / f"{name}-pendulum.yaml"
    run, config = load_config_file(str(path), preset, RunOptions(), preset.config_type())
    config.validate()
    claim = PENDULUM_CLAIMS[name].measure_kwargs
    assert config == claim["config"] and run.env == claim["env_id"] and run.steps == claim["steps"]
