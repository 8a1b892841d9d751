"""The experiment core (`pgax.experiment`): checkpoints, exact resume, load and eval, periodic
evaluation, loggers, and faults that lose nothing and say one line."""

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pgax
from pgax import checkpoints, envs
from pgax.algorithms import PPOConfig, make_ppo
from pgax.cli import main
from pgax.logging import CsvWriter, make_run_dir, read_metrics
from pgax.train import evaluate, train
from tests.helpers import seed

MODULE = "tests.test_experiment"
TINY = ["--num-envs", "2", "--num-steps", "32", "--hidden-sizes", "16", "--minibatches", "2", "--epochs", "2"]
TINY_TRPO = ["--num-envs", "2", "--num-steps", "32", "--hidden-sizes", "16"]


def pgax_cmd(*args):
    return [sys.executable, "-m", "pgax", *args]


def run_folder(out: Path) -> Path:
    (run_dir,) = [p for p in Path(out).iterdir() if p.is_dir()]
    return run_dir


def summary_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def latest_state(run_dir: Path):
    """The raw arrays of the latest checkpoint's state item (as saved)."""
    store, step = checkpoints.resolve(run_dir, "latest")
    ocp = checkpoints._ocp()
    restored = store._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
    return step, [np.asarray(x) for x in jax.tree_util.tree_leaves(restored)]


def wait_for(predicate, timeout=240.0):
    t0 = time.time()
    while not predicate():
        if time.time() - t0 > timeout:
            raise TimeoutError("the condition was not reached")
        time.sleep(0.05)


def has_checkpoint(out: Path) -> bool:
    for run_dir in Path(out).glob("*"):
        latest = run_dir / "checkpoints" / "latest"
        if latest.is_dir() and any(p.name.isdigit() for p in latest.iterdir()):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Exact resume
# ---------------------------------------------------------------------------------------------


def test_a_run_killed_with_sigkill_and_resumed_is_bit_identical_to_the_uninterrupted_run(tmp_path):
    """JAX-native env: kill -9 after the first checkpoint, `pgax resume`: metrics.csv and every array of
    the final state (parameters, optimiser states, keys, env states) equal the uninterrupted run's."""
    args = ["train", "ppo", "--env", "CartPole-v1", "--steps", str(64 * 100), "--seeds", "2", "--seed", str(seed(3)),
            "--eval-episodes", "0", "--checkpoint-every", "10", "--chunk-seconds", "0.02", "--no-progress",
            "--no-tensorboard", *TINY]
    killed = subprocess.Popen(pgax_cmd(*args, "--out", str(tmp_path / "killed")), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    wait_for(lambda: has_checkpoint(tmp_path / "killed") or killed.poll() is not None)
    killed.send_signal(signal.SIGKILL)
    killed.wait(60)
    run_dir = run_folder(tmp_path / "killed")
    assert not (run_dir / "summary.json").exists(), "the run finished before it was killed: nothing was tested"
    ckpt_step = checkpoints.resolve(run_dir, "latest")[1]
    assert 0 < ckpt_step < 100
    assert main(["resume", str(run_dir), "--no-progress"]) == 0
    summary = summary_of(run_dir)
    assert summary["status"] == "finished" and summary["resumed_from"] == ckpt_step
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0  # the same run, never interrupted
    assert_same_run(run_folder(tmp_path / "whole"), run_dir, 100)


def assert_same_run(reference: Path, run_dir: Path, iterations: int) -> None:
    """metrics.csv byte for byte and every array of the latest checkpoint's state are equal."""
    assert (run_dir / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()
    step_a, leaves_a = latest_state(reference)
    step_b, leaves_b = latest_state(run_dir)
    assert step_a == step_b == iterations and len(leaves_a) == len(leaves_b)
    for a, b in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(a, b)


def test_resume_from_an_earlier_checkpoint_or_with_more_steps_is_bit_identical_to_the_whole_run(tmp_path, capsys):
    """TRPO (no schedule, so a longer --steps changes nothing before it): a 6-iteration run resumed to 10
    from its latest checkpoint, and a copy resumed from its checkpoint at iteration 2, both equal the
    10-iteration run; a finished run asks for more steps."""
    base = ["train", "trpo", "--env", "CartPole-v1", "--seeds", "2", "--seed", str(seed(5)), "--eval-episodes", "0",
            "--checkpoint-every", "2", "--keep-checkpoints", "5", "--chunk-seconds", "0.02", "--no-progress",
            "--no-tensorboard", *TINY_TRPO]
    assert main(base + ["--steps", str(64 * 10), "--out", str(tmp_path / "whole")]) == 0
    assert main(base + ["--steps", str(64 * 6), "--out", str(tmp_path / "short")]) == 0
    short = run_folder(tmp_path / "short")
    assert main(["resume", str(short)]) == 2
    assert "already has 384 steps per seed" in capsys.readouterr().err
    early = tmp_path / "early"
    shutil.copytree(short, early)
    assert main(["resume", str(short), "--steps", str(64 * 10), "--no-progress"]) == 0
    assert main(["resume", str(early), "--steps", str(64 * 10), "--checkpoint", "2", "--no-progress"]) == 0
    assert summary_of(short)["resumed_from"] == 6 and summary_of(early)["resumed_from"] == 2
    reference = run_folder(tmp_path / "whole")
    np.testing.assert_array_equal(np.unique(read_metrics(reference / "metrics.csv")["step"]), np.arange(1, 11) * 64)
    assert_same_run(reference, short, 10)
    assert_same_run(reference, early, 10)


def test_sigterm_stops_at_a_chunk_boundary_keeps_the_chunk_and_resume_finishes(tmp_path):
    args = ["train", "ppo", "--env", "CartPole-v1", "--steps", str(64 * 150), "--seeds", "1", "--eval-episodes", "0",
            "--chunk-seconds", "0.1", "--no-progress", "--out", str(tmp_path), *TINY]
    proc = subprocess.Popen(pgax_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any((p / "metrics.csv").exists() and (p / "metrics.csv").stat().st_size > 2000
                         for p in tmp_path.glob("*")) or proc.poll() is not None)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "SIGTERM received" in out and "Traceback" not in err
    run_dir = run_folder(tmp_path)
    summary = summary_of(run_dir)
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM" and summary["exit_code"] == 143
    done = summary["steps"] // 64
    assert 0 < done < 150
    rows = read_metrics(run_dir / "metrics.csv")
    assert rows["step"].max() == done * 64  # the chunk running at the signal is kept, nothing after it
    assert checkpoints.resolve(run_dir, "latest")[1] == done
    assert main(["resume", str(run_dir), "--no-progress"]) == 0
    assert summary_of(run_dir)["status"] == "finished"
    assert read_metrics(run_dir / "metrics.csv")["step"].max() == 150 * 64


def test_sigint_during_compilation_ends_the_run_cleanly(tmp_path):
    proc = subprocess.Popen(pgax_cmd("train", "ppo", "--env", "CartPole-v1", "--steps", "100000", "--seeds", "1",
                                     "--no-progress", "--out", str(tmp_path), *TINY),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("pgax: training ppo")  # printed just before compiling
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "Traceback" not in err, err
    summary = summary_of(run_folder(tmp_path))
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGINT"
    assert summary["steps"] < 100000


def test_gymnasium_resume_restores_the_normaliser_statistics(tmp_path):
    """Gymnasium env: the resumed run starts from fresh env resets with the checkpoint's observation
    statistics, so its count goes on from the checkpoint's (plus the fresh reset observations)."""
    base = ["train", "ppo", "--env", "CartPole-v1", "--driver", "gymnasium", "--seeds", "1",
            "--eval-episodes", "0", "--no-progress", "--normalize-obs", "--out", str(tmp_path), *TINY]
    assert main(base + ["--steps", str(64 * 3)]) == 0
    run_dir = run_folder(tmp_path)
    first = pgax.load(run_dir, "latest").obs_stats
    assert main(["resume", str(run_dir), "--steps", str(64 * 5), "--no-progress"]) == 0
    second = pgax.load(run_dir, "latest").obs_stats
    # 2 envs: 2 reset observations, then 2 per step; the resumed run adds 2 fresh resets and 2 × 32 × 2.
    np.testing.assert_allclose(float(first.count), 1e-4 + 2 * (1 + 3 * 32), rtol=1e-6)
    np.testing.assert_allclose(float(second.count), float(first.count) + 2 * (1 + 2 * 32), rtol=1e-6)
    assert summary_of(run_dir)["status"] == "finished"


# ---------------------------------------------------------------------------------------------
# Checkpoints that do not fit
# ---------------------------------------------------------------------------------------------


# The tests that read these runs share one xdist worker (`make test` runs `--dist loadgroup`), so the
# runs are made once.
TWO_RUNS = pytest.mark.xdist_group("two_runs")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Finished tiny runs: PPO on CartPole (with periodic evaluation) and REINFORCE on CartPole."""
    out = tmp_path_factory.mktemp("runs")
    folders = {}
    for name, algo, env, extra in (("ppo", "ppo", "CartPole-v1", [*TINY, "--eval-every", "2"]),
                                   ("reinforce", "reinforce", "CartPole-v1", TINY_TRPO)):
        assert main(["train", algo, "--env", env, "--steps", str(64 * 4), "--seeds", "2", "--eval-episodes", "0",
                     "--eval-every-episodes", "2", "--no-progress", "--out", str(out / name), *extra]) == 0
        folders[name] = run_folder(out / name)
    return folders


def copy_checkpoints(source: Path, target: Path) -> None:
    shutil.rmtree(target / "checkpoints")
    shutil.copytree(source / "checkpoints", target / "checkpoints")


@TWO_RUNS
@pytest.mark.parametrize("other, message", [("reinforce", "algorithm 'reinforce', this run has 'ppo'"),
                                            ("acrobot", "env 'CartPole-v1', this run has 'Acrobot-v1'")])
def test_a_checkpoint_of_another_run_is_one_line_and_exit_2(two_runs, tmp_path, capsys, other, message):
    """Checkpoints of another algorithm's run, or a run whose config now names another env."""
    target = tmp_path / "target"
    shutil.copytree(two_runs["ppo"], target)
    if other == "acrobot":
        config = target / "config.yaml"
        config.write_text(config.read_text().replace("CartPole-v1", "Acrobot-v1"))
    else:
        copy_checkpoints(two_runs[other], target)
    for argv in (["resume", str(target), "--steps", "1000"], ["eval", str(target)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


@TWO_RUNS
def test_a_truncated_checkpoint_is_one_line_and_exit_2(two_runs, tmp_path, capsys):
    target = tmp_path / "target"
    shutil.copytree(two_runs["ppo"], target)
    store, step = checkpoints.resolve(target, "latest")
    for path in sorted((store.directory / str(step) / "state").rglob("*")):
        if path.is_file() and path.stat().st_size > 100:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert main(["resume", str(target), "--steps", "1000"]) == 2
    err = capsys.readouterr().err
    assert "does not fit this run or is damaged" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


@TWO_RUNS
def test_eval_and_load_give_the_trained_policy(two_runs, capsys):
    run_dir = two_runs["ppo"]
    policy = pgax.load(run_dir, "latest", seed_index=1)
    store, step = checkpoints.resolve(run_dir, "latest")
    obs = np.random.default_rng(seed(0)).normal(size=(7, 4)).astype(np.float32)
    # The same deterministic action as the trained agent's own function on seed 1's parameters, read
    # from the training state (not from the policy item that load uses).
    ocp = checkpoints._ocp()
    raw = store._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
    agent = make_ppo(PPOConfig(num_envs=2, num_steps=32, hidden_sizes=(16,), minibatches=2, epochs=2),
                     envs.make("CartPole-v1"), 4)
    params_1 = jax.tree_util.tree_map(lambda x: jnp.asarray(x[1]), raw["agent"]["params"])
    np.testing.assert_array_equal(policy.act(obs), np.asarray(agent.act_deterministic(params_1, jnp.asarray(obs))))
    assert policy.act(obs[0]).shape == () and policy.act(obs, deterministic=False).shape == (7,)
    # pgax eval reports per-seed returns; evaluation keys come from each seed alone.
    assert main(["eval", str(run_dir), "--checkpoint", "latest", "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "over 2 seed(s) × 3 episodes (deterministic policy)" in out
    assert main(["eval", str(run_dir), "--checkpoint", "latest", "--episodes", "3", "--stochastic"]) == 0
    assert "(stochastic policy)" in capsys.readouterr().out
    assert main(["eval", str(run_dir), "--checkpoint", "999"]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(["eval", str(run_dir), "--video", "x.gif"]) == 2
    assert "JAX-native env, which renders no frames" in capsys.readouterr().err


def test_eval_records_a_video_of_an_episode(tmp_path, capsys):
    import imageio

    assert main(["train", "ppo", "--env", f"{MODULE}:Corridor", "--steps", "128", "--seeds", "1",
                 "--eval-episodes", "0", "--no-progress", "--no-tensorboard", "--out", str(tmp_path), *TINY]) == 0
    video = tmp_path / "episode.gif"
    assert main(["eval", str(run_folder(tmp_path)), "--episodes", "1", "--video", str(video)]) == 0
    assert "mean return 500.0" in capsys.readouterr().out
    frames = imageio.mimread(video)
    assert len(frames) == 501 and [int(f[0, 0, 0]) for f in frames[:3]] == [0, 1, 2]
    assert main(["eval", str(run_folder(tmp_path)), "--video", str(tmp_path / "x.avi")]) == 2
    assert "name a .gif or .mp4 file" in capsys.readouterr().err


@TWO_RUNS
def test_periodic_evaluation_writes_eval_csv_and_keeps_the_best_checkpoint(two_runs):
    run_dir = two_runs["ppo"]
    rows = read_metrics(run_dir / "eval.csv")
    np.testing.assert_array_equal(rows["step"], [128, 128, 256, 256])
    np.testing.assert_array_equal(rows["seed"], [0, 1, 0, 1])
    best_store, best_step = checkpoints.resolve(run_dir, "best")
    means = {int(s): rows["return_mean"][rows["step"] == s].mean() for s in (128, 256)}
    assert best_step * 64 == max(means, key=means.get)
    assert best_store.meta(best_step)["eval_return"] == pytest.approx(max(means.values()), rel=1e-5)
    assert summary_of(run_dir)["best_eval_return"] == pytest.approx(max(means.values()), rel=1e-5)


@TWO_RUNS
def test_tensorboard_events_are_readable(two_runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = two_runs["ppo"]
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"train/episode_return_mean", "train/policy_loss", "eval/return_mean"} <= set(tags)
    loss = acc.Scalars("train/policy_loss")
    assert [e.step for e in loss] == [64, 128, 192, 256]
    rows = read_metrics(run_dir / "metrics.csv")
    for event in loss:
        np.testing.assert_allclose(event.value, rows["policy_loss"][rows["step"] == event.step].mean(), rtol=1e-4)
    assert [e.step for e in acc.Scalars("eval/return_mean")] == [128, 256]


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------


def test_a_diverging_run_is_detected_and_stops_with_exit_3(tmp_path, capsys):
    code = main(["train", "ppo", "--env", "CartPole-v1", "--lr", "1e30", "--max-grad-norm", "1e30",
                 "--steps", str(64 * 20), "--seeds", "2", "--no-progress", "--out", str(tmp_path), *TINY])
    assert code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pgax: diverged: non-finite parameters") and "lower --lr" in err[0]
    run_dir = run_folder(tmp_path)
    summary = summary_of(run_dir)
    assert summary["status"] == "diverged" and summary["final_return_mean"] is None
    iteration = summary["diverged"]["iteration"]
    assert 1 <= iteration <= 20
    if iteration > 1:  # the last finite state is checkpointed
        step, leaves = latest_state(run_dir)
        assert step == iteration - 1 or step < iteration
        assert all(np.all(np.isfinite(x)) for x in leaves if np.issubdtype(x.dtype, np.floating))


class Corridor(gymnasium.Env):
    """A 500-step episode (truncated, never terminated) of a constant observation and reward 1; it
    renders 4×4 frames whose red channel is the step count."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)
    render_mode = "rgb_array"

    def render(self):
        frame = np.zeros((4, 4, 3), np.uint8)
        frame[..., 0] = self.t % 256
        return frame

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.full(3, 0.5, np.float32), 1.0, False, self.t >= 500, {}


class NaNAfter250(Corridor):
    """Observations turn NaN after step 250 of an episode (past the 200 steps `pgax check-env` tries)."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return (np.full(3, np.nan, np.float32) if self.t > 250 else obs), reward, terminated, truncated, info


class RaisesAt1000(Corridor):
    """Raises on the 1000th step of an env copy (counted over episodes)."""

    steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps >= 1000:
            raise RuntimeError("the simulator lost its licence server")
        return super().step(action)


def test_an_env_that_turns_nan_is_reported_as_non_finite_env_outputs(tmp_path, capsys):
    code = main(["train", "ppo", "--env", f"{MODULE}:NaNAfter250", "--steps", str(64 * 10), "--seeds", "1",
                 "--no-progress", "--out", str(tmp_path), *TINY])
    assert code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "env outputs at iteration 8" in err[0] and "environment returned NaN" in err[0]
    summary = summary_of(run_folder(tmp_path))
    # 32 steps per iteration from a fresh reset: step 251 of the episode is in iteration 8.
    assert "env outputs" in summary["diverged"]["what"] and summary["diverged"]["iteration"] == 8
    assert checkpoints.resolve(run_folder(tmp_path), "latest")[1] == 7


def test_an_env_that_raises_gives_one_line_a_summary_and_keeps_the_completed_iterations(tmp_path, capsys):
    code = main(["train", "ppo", "--env", f"{MODULE}:RaisesAt1000", "--steps", str(64 * 40), "--seeds", "1",
                 "--no-progress", "--out", str(tmp_path), *TINY])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RuntimeError: the simulator lost its licence server" in err[0]
    run_dir = run_folder(tmp_path)
    summary = summary_of(run_dir)
    assert summary["status"] == "error" and "licence server" in summary["error"]
    # Each env copy steps 32 times per iteration (and in the driver's warm-up), so its 1000th step
    # comes after about 30 iterations; every iteration before it is kept.
    done = summary["steps"] // 64
    assert 25 <= done < 31
    assert checkpoints.resolve(run_dir, "latest")[1] == done
    assert read_metrics(run_dir / "metrics.csv")["step"].max() == done * 64
    assert (run_dir / "curve.png").exists()


def test_a_failed_write_never_leaves_a_partial_row(tmp_path):
    writer = CsvWriter(tmp_path / "m.csv", ["a", "b"])
    writer.write_rows([[1, 2]])
    real = writer._file

    class DiskFull:
        def write(self, data):
            real.write(data[: len(data) // 2])
            real.flush()
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

        def close(self):
            real.close()

    writer._file = DiskFull()
    with pytest.raises(OSError):
        writer.write_rows([[3, 4], [5, 6]])
    assert (tmp_path / "m.csv").read_text() == "a,b\n1,2\n"
    writer.write_rows([[7, 8]])
    writer.close()
    assert (tmp_path / "m.csv").read_text() == "a,b\n1,2\n7,8\n"


def _claim(args):
    out, stamp = args
    import datetime

    return str(make_run_dir(out, "ppo", "CartPole-v1", now=datetime.datetime(2026, 1, 1, 12, 0, 0)))


def test_concurrent_starts_with_one_out_each_get_their_own_folder(tmp_path):
    with multiprocessing.get_context("fork").Pool(8) as pool:  # fork: the children only call mkdir
        folders = pool.map(_claim, [(str(tmp_path), i) for i in range(8)])
    assert len(set(folders)) == 8 and all(Path(f).is_dir() for f in folders)


@pytest.mark.parametrize("out, message", [("file", "cannot create a run folder there"),
                                          ("/proc/pgax-test", "cannot create a run folder there")])
def test_an_out_that_cannot_hold_folders_is_one_line(tmp_path, capsys, out, message):
    if out == "file":
        out = str(tmp_path / "a-file")
        Path(out).write_text("x")
    assert main(["train", "ppo", "--steps", "2048", "--no-progress", "--out", out]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# Seeds, evaluation keys, JAX-native normalisation
# ---------------------------------------------------------------------------------------------


def test_a_seeds_evaluation_does_not_depend_on_the_seeds_beside_it():
    env = envs.make("CartPole-v1")
    cfg = PPOConfig(num_envs=2, num_steps=16, minibatches=2, epochs=1, hidden_sizes=(8,))
    agent = make_ppo(cfg, env, 1)
    params = jax.tree_util.tree_map(
        lambda *x: jnp.stack(x), *[agent.init(jax.random.PRNGKey(s), jnp.zeros(4)).params for s in (0, 1)])
    together = evaluate(agent, env, params, [seed(0), seed(1)], episodes=4, deterministic=False)
    alone = evaluate(agent, env, jax.tree_util.tree_map(lambda x: x[1:], params), [seed(1)], episodes=4,
                     deterministic=False)
    np.testing.assert_array_equal(together[1], alone[0])
    with pytest.raises(pgax.errors.ConfigError, match="outside"):
        evaluate(agent, env, params, [0, 2 ** 32], episodes=1)


def test_jax_native_observation_normalisation_counts_every_observation_acted_on():
    env = envs.make("CartPole-v1")
    cfg = PPOConfig(num_envs=2, num_steps=16, minibatches=2, epochs=1, hidden_sizes=(8,))
    agent = make_ppo(cfg, env, 3)
    result = train(agent, env, num_envs=2, num_steps=16, num_iterations=3, seeds=[seed(0)], normalize_obs=True,
                   normalize_reward=True)
    stats = result.state.obs_stats
    np.testing.assert_allclose(stats.count, [1e-4 + 2 * (1 + 3 * 16)], rtol=1e-6)
    assert np.all(np.abs(np.asarray(result.state.obs)) <= 10.0)
    assert result.state.reward_scale.stats.count[0] == pytest.approx(1e-4 + 2 * 3 * 16, rel=1e-6)


def test_the_compilation_cache_is_on_in_its_own_folder():
    assert jax.config.jax_compilation_cache_dir == os.environ["PGAX_CACHE_DIR"]


def test_curve_smoothing_is_the_trailing_mean_of_each_seed():
    from pgax.plotting import smooth_per_seed

    step = np.array([2, 1, 1, 2, 3, 3, 4])
    seed_ = np.array([0, 0, 1, 1, 0, 1, 0])
    value = np.array([4.0, np.nan, 10.0, 20.0, 6.0, 30.0, 8.0])
    # seed 0 by step: nan, 4, 6, 8 → window 2: nan, 4, 5, 7; seed 1: 10, 20, 30 → 10, 15, 25
    np.testing.assert_allclose(smooth_per_seed(step, seed_, value, 2), [4.0, np.nan, 10.0, 15.0, 5.0, 25.0, 7.0])
    np.testing.assert_array_equal(smooth_per_seed(step, seed_, value, 1), value)
