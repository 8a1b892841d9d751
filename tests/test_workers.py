"""WorkerVectorEnv (pgax/envs/workers.py): the same steps as a same-step-autoreset SyncVectorEnv in
every layout, with spinning and with sleeping waits, errors from workers, closing, and its use by the
gymnasium-async driver."""

from __future__ import annotations

import multiprocessing as mp

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces as gs
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from pgax.cli import main
from pgax.envs.gymnasium_env import make_gymnasium, make_vector
from pgax.envs import workers
from pgax.envs.workers import WorkerVectorEnv, default_num_workers, worker_blocks
from pgax.errors import ConfigError

MODULE = "tests.test_workers"

# The workers come from a forkserver, which by default preloads only `__main__`, so every worker of
# every test imported jax, gymnasium and gymnax's scipy / seaborn afresh: 3-6 s of CPU each, and a
# 5-worker env took 20-30 s to start on 2 busy cores. Preloading those modules in the forkserver
# makes a worker start in a fraction of a second. None of them starts a JAX backend (pgax.envs and
# gymnax do, so they stay out: forking a process whose XLA threads run is what the forkserver is
# for). This applies to the whole pytest process (collection imports this module before any test
# runs), so the async drivers of tests/test_gymnasium_driver.py start faster too; what a worker
# does once started is unchanged.
mp.set_forkserver_preload(["__main__", "pgax", "gymnasium", "flax", "optax", "scipy.stats", "seaborn"])


class FailsAtStep(gymnasium.Env):
    """Raises at step 5 when it was reset with a seed >= 2; steps fine otherwise."""

    observation_space = gs.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gs.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.fails = 0, seed is not None and seed >= 2
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        if self.t == 5 and self.fails:
            raise ValueError("the simulator diverged at step 5")
        return np.zeros(2, np.float32), 1.0, False, False, {}


class EOFAtStep(FailsAtStep):
    """Raises EOFError (as a simulator behind a socket might) where FailsAtStep raises ValueError."""

    def step(self, action):
        try:
            return super().step(action)
        except ValueError:
            raise EOFError("the simulator's socket closed") from None


def test_worker_blocks_partition_the_copies_evenly():
    for n in range(1, 12):
        for b in range(1, n + 1):
            blocks = worker_blocks(n, b)
            assert [i for block in blocks for i in block] == list(range(n))
            sizes = [len(block) for block in blocks]
            assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


@pytest.mark.parametrize("cores, expected", [
    (2, {1: 1, 2: 1, 8: 1}),  # fewer copies than cores: a worker per copy
    (4, {1: 1, 3: 3, 4: 3, 8: 3}),
    (1, {1: 0, 8: 0}),
])
def test_default_worker_counts(monkeypatch, cores, expected):
    monkeypatch.setattr(workers, "_cores", lambda: cores)
    assert {n: default_num_workers(n) for n in expected} == expected


@pytest.mark.parametrize("env_id, n, num_workers", [
    ("CartPole-v1", 5, 2),  # this process and 2 workers
    ("FrozenLake-v1", 5, 1),  # Discrete observations and actions; spinning waits on a machine with 2+ cores
    ("Pendulum-v1", 5, 0),  # every copy here
    ("CartPole-v1", 5, 5),  # a worker per copy, none here
    ("FrozenLake-v1", 1, 1),
    ("Pendulum-v1", 1, 1),  # Box actions
])
def test_worker_vector_env_steps_exactly_as_sync_vector_env(env_id, n, num_workers):
    """Observations (Box and Discrete), rewards, flags with their dtypes, and the final observations
    of ended episodes, step by step, through many autoresets (CartPole and FrozenLake end often)."""
    sync = SyncVectorEnv([lambda: gymnasium.make(env_id)] * n, autoreset_mode=AutoresetMode.SAME_STEP)
    vec = WorkerVectorEnv([lambda: gymnasium.make(env_id)] * n, num_workers)
    try:
        assert vec.spins == (num_workers < workers._cores())
        assert vec.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        assert vec.single_observation_space == sync.single_observation_space
        assert vec.observation_space == sync.observation_space and vec.action_space == sync.action_space
        a, _ = sync.reset(seed=list(range(10, 10 + n)))
        b, _ = vec.reset(seed=list(range(10, 10 + n)))
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
        sync.action_space.seed(0)
        ends = 0
        for _ in range(300):
            action = sync.action_space.sample()
            out_sync, out_vec = sync.step(action), vec.step(action)
            for x, y in zip(out_sync[:4], out_vec[:4]):
                np.testing.assert_array_equal(x, y)
                assert x.dtype == y.dtype
            info_sync, info_vec = out_sync[4], out_vec[4]
            assert ("_final_obs" in info_sync) == ("_final_obs" in info_vec)
            if "_final_obs" in info_sync:
                np.testing.assert_array_equal(info_sync["_final_obs"], info_vec["_final_obs"])
                for i in np.flatnonzero(info_sync["_final_obs"]):
                    np.testing.assert_array_equal(info_sync["final_obs"][i], info_vec["final_obs"][i])
                ends += int(info_sync["_final_obs"].sum())
        assert ends > 0 or env_id == "Pendulum-v1"  # Pendulum's time limit is 200 steps: it ends once per copy
    finally:
        sync.close()
        vec.close()


@pytest.mark.parametrize("why", ["more processes than cores", "spin=False"])
def test_sleeping_waits_step_the_same(monkeypatch, why):
    if why == "more processes than cores":
        monkeypatch.setattr(workers, "_cores", lambda: 1)
    sync = SyncVectorEnv([lambda: gymnasium.make("Pendulum-v1")], autoreset_mode=AutoresetMode.SAME_STEP)
    vec = WorkerVectorEnv([lambda: gymnasium.make("Pendulum-v1")], 1, spin=False if why == "spin=False" else None)
    try:
        assert not vec.spins
        np.testing.assert_array_equal(sync.reset(seed=3)[0], vec.reset(seed=3)[0])
        for a in np.linspace(-2.0, 2.0, 40, dtype=np.float32):
            for x, y in zip(sync.step(np.full((1, 1), a))[:4], vec.step(np.full((1, 1), a))[:4]):
                np.testing.assert_array_equal(x, y)
    finally:
        sync.close()
        vec.close()


def test_shared_memory_segments_are_removed_on_close():
    from multiprocessing import shared_memory

    vec = WorkerVectorEnv([lambda: gymnasium.make("Pendulum-v1")], 1)
    name = vec._slots[0].memory.name
    vec.reset(seed=0)
    vec.step(np.zeros((1, 1), np.float32))
    vec.close()
    with pytest.raises(FileNotFoundError):
        shared_memory.SharedMemory(name=name)


def test_a_worker_that_dies_during_a_step_is_reported_and_closes_the_env():
    vec = WorkerVectorEnv([lambda: gymnasium.make("CartPole-v1")] * 2, 1)  # copy 1 in worker 1
    vec.reset(seed=0)
    vec.step(np.zeros(2, np.int64))
    vec._processes[0].kill()
    vec._processes[0].join(timeout=10)
    with pytest.raises(RuntimeError, match=r"env worker 1 \(copies 1-1\) raised EOFError: the worker process died"):
        vec.step(np.zeros(2, np.int64))
    assert vec.closed


def test_an_int_seed_seeds_copies_seed_plus_i_as_gymnasium_does():
    sync = SyncVectorEnv([lambda: gymnasium.make("CartPole-v1")] * 3)
    vec = WorkerVectorEnv([lambda: gymnasium.make("CartPole-v1")] * 3, 1)
    try:
        np.testing.assert_array_equal(sync.reset(seed=7)[0], vec.reset(seed=7)[0])
        with pytest.raises(ValueError, match="2 seeds for 3 envs"):
            vec.reset(seed=[1, 2])
    finally:
        sync.close()
        vec.close()


def assert_fifth_step_raises_and_closes(vec, error, match: str) -> None:
    """Four steps go through; the fifth raises `error` matching `match`, closes the env and ends
    every worker process."""
    processes = list(vec._processes)
    for _ in range(4):
        vec.step(np.zeros(vec.num_envs, np.int64))
    with pytest.raises(error, match=match):
        vec.step(np.zeros(vec.num_envs, np.int64))
    assert vec.closed
    for process in processes:
        process.join(timeout=10)
        assert not process.is_alive()


@pytest.mark.parametrize("cores", [4, 1])  # spinning waits, sleeping waits
def test_an_exception_in_a_worker_names_the_worker_and_closes_the_env(monkeypatch, cores):
    monkeypatch.setattr(workers, "_cores", lambda: cores)
    vec = WorkerVectorEnv([FailsAtStep] * 4, 1)  # copies 2-3 step in worker 1
    vec.reset(seed=0)  # seeds 0-3: copies 2 and 3 fail
    assert_fifth_step_raises_and_closes(vec, RuntimeError,
                                        r"env worker 1 \(copies 2-3\) raised ValueError: the simulator diverged")


def test_an_exception_in_this_process_block_is_raised_as_is_and_closes_the_env():
    vec = WorkerVectorEnv([FailsAtStep] * 4, 1)  # copies 0-1 step in this process
    vec.reset(seed=[2, 0, 0, 0])
    assert_fifth_step_raises_and_closes(vec, ValueError, "the simulator diverged")


def test_close_stops_the_workers_and_bad_worker_counts_are_refused():
    vec = WorkerVectorEnv([lambda: gymnasium.make("CartPole-v1")] * 3, 2)
    processes = list(vec._processes)
    assert len(processes) == 2 and all(p.is_alive() for p in processes)
    vec.close()
    vec.close()  # twice is fine
    assert all(not p.is_alive() for p in processes)
    with pytest.raises(ValueError, match="between 0 and 3"):
        WorkerVectorEnv([lambda: gymnasium.make("CartPole-v1")] * 3, 4)
    with pytest.raises(ConfigError, match="--env-workers must be between 0 and 4"):
        make_vector(make_gymnasium("CartPole-v1"), 4, asynchronous=True, num_workers=5)


def test_env_workers_flag_needs_the_async_driver_and_enough_copies(capsys, tmp_path):
    assert main(["train", "ppo", "--env", "CartPole-v1", "--env-workers", "1", "--steps", "2048"]) == 2
    assert "--driver gymnasium-async" in capsys.readouterr().err
    assert main(["train", "ppo", "--env", "CartPole-v1", "--driver", "gymnasium-async", "--env-workers", "5",
                 "--num-envs", "2", "--seeds", "2", "--steps", "2048", "--out", str(tmp_path)]) == 2
    assert "use at most 4" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before the run folder is made


def test_the_async_driver_trains_from_the_cli(tmp_path, capsys):
    """3 workers for the 4 training copies; the 2 evaluation copies get 1."""
    code = main(["train", "ppo", "--env", "CartPole-v1", "--driver", "gymnasium-async", "--env-workers", "3",
                 "--num-envs", "4", "--num-steps", "32", "--steps", "256", "--seeds", "1", "--eval-episodes", "2",
                 "--no-progress", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    assert "evaluation: mean return" in capsys.readouterr().out


def test_an_eof_error_raised_by_the_env_is_reported_as_such():
    vec = WorkerVectorEnv([EOFAtStep] * 2, 1)
    vec.reset(seed=[0, 2])  # copy 1, in worker 1, fails
    assert_fifth_step_raises_and_closes(vec, RuntimeError, "raised EOFError: the simulator's socket closed")


def test_a_large_reset_options_payload_then_steps_as_sync_vector_env():
    """A reset whose message takes a while to write (the worker may see the pipe before the post
    that goes with it), followed by steps: nothing is left over to confuse a later step."""
    options = {"padding": np.zeros(200_000)}  # 1.6 MB: more than a pipe buffer; CartPole ignores the key
    sync = SyncVectorEnv([lambda: gymnasium.make("CartPole-v1")] * 2, autoreset_mode=AutoresetMode.SAME_STEP)
    vec = WorkerVectorEnv([lambda: gymnasium.make("CartPole-v1")] * 2, 2)
    try:
        for round_ in range(3):
            np.testing.assert_array_equal(sync.reset(seed=round_, options=options)[0],
                                          vec.reset(seed=round_, options=options)[0])
            for t in range(30):
                action = np.array([t % 2, (t // 3) % 2])
                for x, y in zip(sync.step(action)[:4], vec.step(action)[:4]):
                    np.testing.assert_array_equal(x, y)
    finally:
        sync.close()
        vec.close()


def test_bad_actions_are_refused_before_any_worker_steps_and_a_closed_env_says_so():
    vec = WorkerVectorEnv([lambda: gymnasium.make("Pendulum-v1")] * 2, 1)
    sync = SyncVectorEnv([lambda: gymnasium.make("Pendulum-v1")] * 2, autoreset_mode=AutoresetMode.SAME_STEP)
    try:
        vec.reset(seed=0)
        sync.reset(seed=0)
        with pytest.raises(ValueError, match=r"actions of shape \(1, 1\) for 2 envs"):
            vec.step(np.zeros((1, 1), np.float32))
        assert not vec.closed  # nothing was handed over: the env goes on
        # float64 actions reach every copy, here and in the worker, in the space's dtype (float32)
        action = np.array([[0.123456789012], [-1.98765432101]])
        for x, y in zip(sync.step(action.astype(np.float32))[:4], vec.step(action)[:4]):
            np.testing.assert_array_equal(x, y)
    finally:
        vec.close()
        sync.close()
    with pytest.raises(RuntimeError, match="closed"):
        vec.step(np.zeros((2, 1), np.float32))
    with pytest.raises(RuntimeError, match="closed"):
        vec.reset(seed=0)
