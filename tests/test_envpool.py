"""--driver envpool: same-step autoreset with the true final observation, per-copy seeds, dynamics
equal to Gymnasium's for the verified ids, the driver choice, training and evaluation through the CLI."""

import json

import numpy as np
import pytest

pytest.importorskip("envpool")

from pgax import envs  # noqa: E402
from pgax.cli import main  # noqa: E402
from pgax.envs import envpool_env  # noqa: E402
from pgax.envs.envpool_env import VERIFIED, EnvpoolVectorEnv, make_envpool  # noqa: E402
from pgax.envs.gymnasium_env import make_gymnasium, make_vector, step_observations  # noqa: E402
from pgax.errors import ConfigError  # noqa: E402
from tests.helpers import seed  # noqa: E402


def pendulum_successor(obs, torque):
    """Gymnasium's Pendulum-v1 step from observation [cos θ, sin θ, θ̇] (g 10, m 1, l 1, dt 0.05)."""
    theta, theta_dot = np.arctan2(obs[..., 1], obs[..., 0]), obs[..., 2]
    u = np.clip(torque, -2.0, 2.0)
    new_dot = np.clip(theta_dot + (3 * 10.0 / 2 * np.sin(theta) + 3.0 * u) * 0.05, -8, 8)
    new_theta = theta + new_dot * 0.05
    return np.stack([np.cos(new_theta), np.sin(new_theta), new_dot], -1)


def test_an_ended_episode_is_reset_within_the_step_and_keeps_its_true_final_observation():
    """envpool resets on the step after an episode ends; the adapter gives same-step autoreset: at the
    truncation (step 200 of Pendulum) the final observation is the dynamics' successor of the last
    state, the returned observation a fresh episode's (|θ̇| ≤ 1), and the next step continues from it."""
    env = make_envpool("Pendulum-v1")
    assert env.max_episode_steps == 200
    vector_env = make_vector(env, 3)
    obs, _ = vector_env.reset(seed=[seed(0), seed(1), seed(2)])
    torque = np.array([[0.3], [-0.3], [0.1]])
    for t in range(450):
        raw, reward, terminated, truncated, info = vector_env.step(env.to_env_action(torque))
        next_obs, final = step_observations(env, raw, info)
        free = np.abs(final[:, 2]) < 7.99  # at |θ̇| = 8 envpool clips after the angle update, Gymnasium before
        np.testing.assert_allclose(final[free], pendulum_successor(obs, torque[:, 0])[free], atol=2e-4)
        assert not terminated.any()
        assert truncated.all() == (t % 200 == 199) and truncated.any() == truncated.all()
        if truncated.any():
            assert np.abs(next_obs[:, 2]).max() <= 1.0 and not np.allclose(next_obs, final)
        else:
            np.testing.assert_array_equal(next_obs, final)
        obs = next_obs
    vector_env.close()


def test_each_copy_depends_on_its_own_seed_only_and_resets_reproduce():
    env = make_envpool("Hopper-v5")
    rng = np.random.default_rng(seed(3))
    actions = rng.uniform(-1, 1, (300, 3))  # every copy gets the same action

    def run(seeds, copy):
        vector_env = EnvpoolVectorEnv(env.envpool_task, len(seeds))
        obs = [vector_env.reset(seed=seeds)[0][copy]]
        for a in actions:
            obs.append(vector_env.step(np.tile(a, (len(seeds), 1)))[0][copy])
        vector_env.close()
        return np.array(obs)

    s = seed(5)
    together = run([s, s + 1, s + 2], 1)
    np.testing.assert_array_equal(together, run([s + 1], 0))
    np.testing.assert_array_equal(together, run([s + 7, s + 1], 1))
    assert not np.array_equal(together, run([s + 2], 0))


def fixed_policy_statistics(env, copies: int, steps: int, seeds):
    """Per copy, under a fixed closed-loop policy a = bound·tanh(sin(Σ obs + t)): the mean reward per
    step, the mean of each observation dimension, and the episode ends per step. [copies, 2 + d]."""
    vector_env = make_vector(env, copies)
    raw, _ = vector_env.reset(seed=list(seeds))
    width = int(np.prod(env.action_space.shape))
    high = np.asarray(env.action_space.high, np.float64).reshape(-1)
    total = np.zeros((copies, 2 + env.observation_space.dim))
    for t in range(steps):
        obs = env.obs_to_array(raw)
        phase = obs.sum(-1, keepdims=True) + t + np.arange(width)
        raw, reward, terminated, truncated, info = vector_env.step(env.to_env_action(high * np.tanh(np.sin(phase))))
        total += np.concatenate([reward[:, None], (terminated | truncated)[:, None], obs], -1)
    vector_env.close()
    return total / steps


@pytest.mark.parametrize("env_id", VERIFIED)
def test_the_verified_ids_have_gymnasiums_dynamics(env_id):
    """Each statistic of `fixed_policy_statistics` (reward, episode ends, every observation dimension)
    has the same mean over 24 copies × 150 steps under envpool and Gymnasium: |difference| ≤ 6 standard
    errors + 1% of the scale. A reward weight changed by a third (Hopper's healthy reward 1 → 2/3) fails."""
    copies, steps = 24, 150
    theirs = fixed_policy_statistics(make_gymnasium(env_id), copies, steps, range(seed(0), seed(0) + copies))
    ours = fixed_policy_statistics(make_envpool(env_id), copies, steps, range(seed(100), seed(100) + copies))

    def differs(a, b):
        se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
        scale = np.maximum(np.abs(a.mean(0)), np.abs(b.mean(0)))
        return np.abs(a.mean(0) - b.mean(0)) > 6 * se + 0.01 * scale + 1e-6

    assert not differs(theirs, ours).any(), np.flatnonzero(differs(theirs, ours))
    if env_id == "Hopper-v5":
        import gymnasium

        altered = make_gymnasium(env_id)._replace(make_env=lambda: gymnasium.make(env_id, healthy_reward=2 / 3))
        assert differs(fixed_policy_statistics(altered, copies, steps, range(seed(0), seed(0) + copies)), ours)[0]


def test_the_driver_choice(monkeypatch):
    assert envs.resolve_driver("Hopper-v5", copies=8) == "envpool"
    assert envs.resolve_driver("Hopper-v5", copies=1) == "gymnasium"  # one process is faster for few copies
    assert envs.resolve_driver("Pong-v5", copies=1) == "envpool"  # only envpool has it
    assert envs.resolve_driver("ALE/Pong-v5") == "envpool"
    assert envs.resolve_driver("LunarLander-v3", copies=8) == "gymnasium"  # not verified
    assert envs.resolve_driver("CartPole-v1", copies=8) == "jax"
    assert envs.resolve_driver("tests.test_gymnasium_driver:Ring", copies=8) == "gymnasium"
    with pytest.raises(ConfigError, match="envpool has no environment 'Hoper-v5'; did you mean 'Hopper-v5'"):
        make_envpool("Hoper-v5")
    monkeypatch.setattr(envpool_env, "envpool_available", lambda: False)
    assert envs.resolve_driver("Hopper-v5", copies=8) == "gymnasium"
    with pytest.raises(ConfigError, match=r"needs envpool, which is not installed; run `pip install 'pgax\[envpool\]'"):
        make_envpool("Hopper-v5")


def test_ppo_trains_and_evaluates_through_envpool_from_the_cli(tmp_path, capsys):
    out = tmp_path / "runs"
    code = main(["train", "ppo", "--env", "Hopper-v5", "--num-envs", "2", "--num-steps", "64", "--steps", "512",
                 "--seeds", "2", "--eval-episodes", "2", "--no-progress", "--out", str(out)])
    assert code == 0
    run_dir = next(out.iterdir())
    assert "driver: envpool" in (run_dir / "config.yaml").read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and len(summary["final_return_per_seed"]) == 2
    assert np.isfinite(summary["final_return_per_seed"]).all()
    assert "evaluation: mean return" in capsys.readouterr().out
