"""td_ac and td_lambda_ac: exact per-step semi-gradient updates, eligibility traces (backward view) and
their resets, config errors, and learning on CartPole-v1 and the simple regulator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgax import envs, estimators
from pgax.algorithms.core import make_policy, make_value
from pgax.algorithms.online import TDACConfig, TDLambdaACConfig, make_td_ac, make_td_lambda_ac
from pgax.batch import Batch
from pgax.cli import main
from tests.helpers import seeded_key, seeded_rng
from tests.learning import LearningClaim, preset_regulator, preset_returns

CARTPOLE = envs.make("CartPole-v1")


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def random_batch(seed, num_steps, num_envs, terminated=(), truncated=()):
    """A [T, N] CartPole-shaped batch (numpy draws: no device programs to compile); `terminated` and
    `truncated` list the (t, i) of episode ends."""
    rng = seeded_rng(seed)
    term = np.zeros((num_steps, num_envs), bool)
    trunc = np.zeros((num_steps, num_envs), bool)
    for t, i in terminated:
        term[t, i] = True
    for t, i in truncated:
        trunc[t, i] = True
    shape = (num_steps, num_envs)
    return Batch(obs=jnp.asarray(rng.normal(size=shape + (4,)), jnp.float32),
                 action=jnp.asarray(rng.integers(0, 2, shape), jnp.int32),
                 reward=jnp.asarray(rng.uniform(-1.0, 2.0, shape), jnp.float32),
                 terminated=jnp.asarray(term), truncated=jnp.asarray(trunc),
                 next_obs=jnp.asarray(rng.normal(size=shape + (4,)), jnp.float32),
                 log_prob=jnp.zeros(shape, jnp.float32))


def test_td_ac_learn_is_the_per_step_semi_gradient_update():
    """Two steps of 3 envs, plain SGD, with the I = γ^t factor: each step is θ + α mean_i I_i δ_i ∇log π and
    w + β mean_i δ_i ∇V, δ from the parameters before the step, recomputed here sample by sample."""
    cfg = TDACConfig(num_envs=3, num_steps=2, gamma=0.9, actor_lr=0.3, critic_lr=0.2, optimizer="sgd",
                     discount_weighting=True, hidden_sizes=(8,))
    agent = make_td_ac(cfg, CARTPOLE, 1)
    policy, critic = make_policy(cfg, CARTPOLE), make_value(cfg, CARTPOLE)
    state = agent.init(seeded_key(0), jnp.zeros(4))
    # env 1 terminates and env 2 is truncated after step 0; their I restart at 1 for step 1.
    batch = random_batch(1, 2, 3, terminated=[(0, 1)], truncated=[(0, 2)])
    state = state.replace(update_state={**state.update_state, "discount_weight": jnp.array([0.5, 0.9, 1.0])})

    @jax.jit
    def sample_update(theta, w, weight, s, a, r, terminated, s_next):  # one sample's (I δ ∇log π, δ ∇V)
        delta = r + 0.9 * (1.0 - terminated) * critic.apply(w, s_next) - critic.apply(w, s)
        g_theta = jax.grad(lambda p: policy.apply(p, s).log_prob(a))(theta)
        g_w = jax.grad(lambda p: critic.apply(p, s))(w)
        return (jax.tree_util.tree_map(lambda g: weight * delta * g, g_theta),
                jax.tree_util.tree_map(lambda g: delta * g, g_w))

    theta, w = state.params["policy"], state.params["value"]
    weight = np.array([0.5, 0.9, 1.0])
    for t in range(2):
        updates = [sample_update(theta, w, weight[i], batch.obs[t, i], batch.action[t, i], batch.reward[t, i],
                                 batch.terminated[t, i].astype(jnp.float32), batch.next_obs[t, i]) for i in range(3)]
        theta = jax.tree_util.tree_map(lambda p, *g: p + 0.3 * sum(g) / 3, theta, *[u[0] for u in updates])
        w = jax.tree_util.tree_map(lambda p, *g: p + 0.2 * sum(g) / 3, w, *[u[1] for u in updates])
        done = np.asarray(batch.terminated[t] | batch.truncated[t])
        weight = np.where(done, 1.0, 0.9 * weight)

    new_state, metrics = jax.jit(agent.learn)(state, batch, seeded_key(2))
    assert_trees_close(new_state.params["policy"], theta)
    assert_trees_close(new_state.params["value"], w)
    np.testing.assert_allclose(new_state.update_state["discount_weight"], weight, rtol=1e-6)
    assert set(metrics) == {"td_error", "value_loss", "entropy", "actor_grad_norm", "critic_grad_norm",
                            "discount_weight"}


def test_truncation_bootstraps_unless_told_otherwise():
    """A truncated step's δ uses V(next_obs); with --no-bootstrap-truncation it does not (δ = r − V(s))."""
    batch = random_batch(3, 1, 2, truncated=[(0, 0), (0, 1)])
    results = {}
    for bootstrap in (True, False):
        cfg = TDACConfig(num_envs=2, optimizer="sgd", critic_lr=0.1, hidden_sizes=(8,),
                         bootstrap_truncation=bootstrap, reward_scale=0.5)
        agent = make_td_ac(cfg, CARTPOLE, 1)
        state = agent.init(seeded_key(0), jnp.zeros(4))
        results[bootstrap] = agent.learn(state, batch, seeded_key(0))[1]["td_error"]
        critic, w = make_value(cfg, CARTPOLE), state.params["value"]
        v, v_next = critic.apply(w, batch.obs[0]), critic.apply(w, batch.next_obs[0])
        expected = 0.5 * batch.reward[0] + (cfg.gamma * v_next if bootstrap else 0.0) - v
        np.testing.assert_allclose(results[bootstrap], jnp.mean(expected), rtol=1e-5, atol=1e-6)
    assert not np.isclose(results[True], results[False])


def test_td_lambda_with_lambda_zero_is_td_ac():
    """λ_w = λ_θ = 0: each trace is the current gradient, so three steps equal td_ac's (I factor, annealing)."""
    common = dict(num_envs=3, num_steps=3, gamma=0.95, actor_lr=1e-2, critic_lr=1e-2, hidden_sizes=(8,),
                  discount_weighting=True, anneal_lr=True)
    batch = random_batch(4, 3, 3, terminated=[(1, 0)], truncated=[(0, 2)])
    one_step = make_td_ac(TDACConfig(**common), CARTPOLE, 2)
    traces = make_td_lambda_ac(TDLambdaACConfig(**common, actor_lambda=0.0, critic_lambda=0.0), CARTPOLE, 2)
    a = jax.jit(one_step.learn)(one_step.init(seeded_key(5), jnp.zeros(4)), batch, seeded_key(0))[0]
    b = jax.jit(traces.learn)(traces.init(seeded_key(5), jnp.zeros(4)), batch, seeded_key(0))[0]
    assert_trees_close(a.params, b.params)


def test_traces_follow_the_backward_view_and_reset_at_episode_ends():
    """With zero step sizes the parameters stay put, so after T steps each environment's traces must equal
    `estimators.eligibility_traces` of its per-step gradients (critic: ∇V; actor: γ^{t−t0} ∇log π), which
    restart after a termination or truncation; a trace whose episode ended at the last step is zero."""
    gamma, lam_w, lam_theta = 0.9, 0.7, 0.5
    cfg = TDLambdaACConfig(num_envs=3, num_steps=4, gamma=gamma, critic_lambda=lam_w, actor_lambda=lam_theta,
                           actor_lr=0.0, critic_lr=0.0, optimizer="sgd", discount_weighting=True,
                           hidden_sizes=(8,))
    agent = make_td_lambda_ac(cfg, CARTPOLE, 1)
    policy, critic = make_policy(cfg, CARTPOLE), make_value(cfg, CARTPOLE)
    state = agent.init(seeded_key(6), jnp.zeros(4))
    # env 0 terminates after step 1; env 1 is truncated after the last step; env 2 runs through.
    batch = random_batch(7, 4, 3, terminated=[(1, 0)], truncated=[(3, 1)])
    new_state, _ = jax.jit(agent.learn)(state, batch, seeded_key(0))
    assert_trees_close(new_state.params, state.params)

    theta, w = state.params["policy"], state.params["value"]

    @jax.jit
    def expected_traces(obs, action, terminated, truncated):  # one environment's stream of T steps
        discount = gamma * (1.0 - terminated.astype(jnp.float32))
        grads_v = jax.vmap(jax.grad(lambda p, s: critic.apply(p, s)), in_axes=(None, 0))(w, obs)
        scores = jax.vmap(jax.grad(lambda p, s, a: policy.apply(p, s).log_prob(a)), in_axes=(None, 0, 0))(
            theta, obs, action)
        i_factor = estimators.discount_from_episode_start(discount, truncated)
        keep = 1.0 - (terminated[-1] | truncated[-1]).astype(jnp.float32)
        z_w = jax.tree_util.tree_map(
            lambda g: keep * estimators.eligibility_traces(g, discount, lam_w, truncated)[-1], grads_v)
        z_theta = jax.tree_util.tree_map(
            lambda g: keep * estimators.eligibility_traces(i_factor.reshape((-1,) + (1,) * (g.ndim - 1)) * g,
                                                           discount, lam_theta, truncated)[-1], scores)
        return z_w, z_theta

    for i in range(3):
        z_w, z_theta = expected_traces(batch.obs[:, i], batch.action[:, i], batch.terminated[:, i],
                                       batch.truncated[:, i])
        assert_trees_close(jax.tree_util.tree_map(lambda z: z[i], new_state.update_state["critic_trace"]), z_w)
        assert_trees_close(jax.tree_util.tree_map(lambda z: z[i], new_state.update_state["actor_trace"]), z_theta)
    assert all(np.all(z[1] == 0) for z in leaves(new_state.update_state["critic_trace"]))
    assert all(np.any(z[0] != 0) for z in leaves(new_state.update_state["critic_trace"]) if z.ndim > 1)
    np.testing.assert_allclose(new_state.update_state["discount_weight"], [gamma**2, 1.0, gamma**4], rtol=1e-6)


def test_traces_carry_across_iterations():
    """Two learn calls on the halves of a batch equal one call on the whole batch (traces, I and the
    optimizer state live in AgentState.update_state)."""
    cfg = TDLambdaACConfig(num_envs=3, num_steps=4, hidden_sizes=(8,), discount_weighting=True)
    agent = make_td_lambda_ac(cfg, CARTPOLE, 1)
    state = agent.init(seeded_key(8), jnp.zeros(4))
    batch = random_batch(9, 4, 3, terminated=[(1, 1)], truncated=[(2, 0)])
    learn = jax.jit(agent.learn)
    whole = learn(state, batch, seeded_key(0))[0]
    halves = state
    for part in (slice(0, 2), slice(2, 4)):
        halves = learn(halves, jax.tree_util.tree_map(lambda x: x[part], batch), seeded_key(0))[0]
    assert_trees_close(whole, halves)


@pytest.mark.parametrize("argv, message", [
    (["train", "td_ac", "--optimizer", "rmsprop"], "--optimizer 'rmsprop' is not known"),
    (["train", "td_ac", "--critic-lr", "0"], "--critic-lr must be positive"),
    (["train", "td_ac", "--reward-scale", "-1"], "--reward-scale must be positive"),
    (["train", "td_ac", "--num-steps", "0"], "--num-steps must be a positive integer"),
    (["train", "td_lambda_ac", "--actor-lambda", "1.5"], "--actor-lambda must lie in [0, 1]"),
    (["train", "td_lambda_ac", "--max-grad-norm", "-1"], "--max-grad-norm must be non-negative"),
    (["train", "td_lambda_ac", "--policy", "linear"], "--policy linear needs a scalar Box action"),
])
def test_config_errors_are_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code = main(argv + ["--out", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())


ONLINE = {"td_ac": (TDACConfig, make_td_ac), "td_lambda_ac": (TDLambdaACConfig, make_td_lambda_ac)}


CARTPOLE_CLAIMS = {
    # td_ac occasionally collapses late in training (one seed in 15 ended at 46): 3 of 5 must pass.
    "td_ac": LearningClaim("td_ac CartPole-v1 200k", preset_returns, {"train_return": (">=", 150.0)}, at_least=3,
                           measure_kwargs=dict(make=make_td_ac, config=TDACConfig(), steps=200_000, eval_episodes=0)),
    "td_lambda_ac": LearningClaim("td_lambda_ac CartPole-v1 150k", preset_returns, {"train_return": (">=", 300.0)},
                                  measure_kwargs=dict(make=make_td_lambda_ac, config=TDLambdaACConfig(), steps=150_000,
                                                      eval_episodes=0)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CARTPOLE_CLAIMS))
def test_default_config_learns_cartpole(name):
    """Default hyperparameters within the documented budget (docs/algorithms/<name>.md): the sampling
    policy's mean episode return over the last 10 iterations (see CARTPOLE_CLAIMS for the bars)."""
    CARTPOLE_CLAIMS[name].check()


REGULATOR_FLAGS = dict(policy="linear", gamma=1.0, reward_scale=0.01, bootstrap_truncation=False, critic_lr=1e-2,
                       actor_lr=2e-3, hidden_sizes=(32,), anneal_lr=False)


REGULATOR = {name: LearningClaim(f"{name} SimpleRegulator-v0", preset_regulator,
                                 {"distance": ("<", 0.85), "gain": ("<", -0.2), "gap_closed": (">", 0.9)},
                                 measure_kwargs=dict(make=make, config=config_type(**REGULATOR_FLAGS),
                                                     iterations=30_000 // config_type(**REGULATOR_FLAGS).batch_size))
             for name, (config_type, make) in ONLINE.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REGULATOR))
def test_linear_gaussian_policy_moves_toward_the_regulator_optimum(name):
    """SimpleRegulator-v0 with --policy linear --gamma 1 (and the flags of docs/algorithms/td_ac.md), 30k
    steps: θ moves from [0, 1] toward [−1, 0] and the exact return U(θ) closes most of the gap to the
    optimum (−46.45 at the start, −0.19 at the optimum)."""
    REGULATOR[name].check()
