"""Rows (seeds, a sweep's configurations × seeds) split over several devices: `--devices`, checked on two
host CPU devices (`XLA_FLAGS=--xla_force_host_platform_device_count=2`, set in a child process because
the device count is fixed when JAX starts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pgax import cli
from pgax.errors import ConfigError
from pgax.train import row_devices

CHILD = textwrap.dedent("""
    import dataclasses, json, sys
    import jax, numpy as np
    from pgax.algorithms import PRESETS
    from pgax.experiment import RunOptions, make_run_driver, plan_run
    from pgax.sweep import plan_sweep, run_sweep

    assert len(jax.devices()) == 2, jax.devices()
    out = sys.argv[1]
    ppo = PRESETS["ppo"]
    config = dataclasses.replace(ppo.config_type(), num_envs=2, num_steps=32, epochs=2, minibatches=2,
                                 hidden_sizes=(16,))
    result = {}
    for devices in (1, 2):
        run = RunOptions(env="CartPole-v1", steps=6 * 64, seeds=2, eval_episodes=3, tensorboard=False,
                         progress=False, chunk_iterations=2, devices=devices)
        # plain training: 2 seeds, one per device
        plan = plan_run(ppo, run, config)
        driver = make_run_driver(plan)
        state, _, _ = driver.run(driver.init(), 0, plan.num_iterations, lambda: False)
        shards = {str(d) for leaf in jax.tree_util.tree_leaves(state) for d in leaf.sharding.device_set}
        params = [np.asarray(x).tolist() for x in jax.tree_util.tree_leaves(state.agent.params)]
        # a sweep: 2 learning rates × 2 seeds = 4 rows in one program, 2 per device
        splan = plan_sweep(ppo, run, config, {"lr": [1e-3, 3e-3]})
        record = run_sweep(splan, f"{out}/sweep-{devices}")
        from pgax.experiment import load_policy
        sweep_params = [[np.asarray(x).tolist() for x in jax.tree_util.tree_leaves(
                            load_policy(f"{out}/sweep-{devices}/{r['run_dir']}", "latest", seed).params)]
                        for r in record["rows"] for seed in range(2)]
        result[devices] = {"devices": sorted(shards), "params": params, "sweep_params": sweep_params,
                           "status": record["status"]}
    from pgax.train import row_devices
    result["divides"] = [len(row_devices(r, d)) for r, d in ((3, 0), (4, 0), (4, 1), (6, 2))]
    print(json.dumps(result))
""")


def test_rows_split_over_two_devices_equal_one_device_to_float32_rounding(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    one, two = result["1"], result["2"]
    assert len(one["devices"]) == 1 and len(two["devices"]) == 2  # the state really is split
    assert one["status"] == two["status"] == "finished"
    # Each device runs a block of rows of another shape than the one-device program, so XLA may order
    # float operations differently: equal to float32 rounding, not bit for bit (docs/sweeps.md).
    for a, b in zip(one["params"], two["params"]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-5)
    for a, b in zip(one["sweep_params"], two["sweep_params"]):  # each configuration kept its own values
        for x, y in zip(a, b):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=1e-5)
    first, second = (np.asarray(one["sweep_params"][i][0]) for i in (0, 2))  # lr 1e-3 and 3e-3, seed 0
    assert np.max(np.abs(first - second)) > 1e-4
    # the largest device count up to --devices that divides the rows: 3 rows stay on one device
    assert result["divides"] == [1, 2, 1, 2]


def test_asking_for_more_devices_than_jax_sees_is_refused():
    with pytest.raises(ConfigError, match=r"--devices 99: JAX sees \d+ device\(s\) \(cpu\); give a number from 1"):
        row_devices(4, 99)


def test_more_devices_than_jax_sees_is_one_line_before_anything_compiles(capsys):
    assert cli.main(["train", "ppo", "--env", "CartPole-v1", "--steps", "1000", "--devices", "99",
                     "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--devices 99: JAX sees" in err and "\n" not in err, err
