"""`pgax sweep`: grid parsing and bad input, which keys share a program, the equivalences (a configuration
does not depend on the others of its program; it equals a plain run to float32 rounding), the sweep
folder, diverging configurations, and resume after an interruption."""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
import pytest

from pgax import cli, envs
from pgax.algorithms import PRESETS
from pgax.errors import ConfigError
from pgax.experiment import RunOptions, plan_run
from pgax.logging import read_metrics
from pgax.sweep import expand_grid, parse_grid_values, plan_sweep, run_sweep, split_keys


PPO = PRESETS["ppo"]
SMALL = dict(num_envs=2, num_steps=32, epochs=2, minibatches=2, hidden_sizes=(16,))
RUN = RunOptions(env="CartPole-v1", steps=6 * 64, seeds=2, eval_episodes=3, tensorboard=False, progress=False,
                 chunk_iterations=2)


def small_ppo(**changes):
    return dataclasses.replace(PPO.config_type(), **SMALL, **changes)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def _restore(store, step, config):
    from pgax.experiment import make_run_driver

    plan = plan_run(PPO, RUN, config)
    like = make_run_driver(plan).init()
    return store.restore(step, "state", like).agent.params


# ------------------------------------------------------------------------------------- bad input


def test_grid_values_take_the_fields_types():
    config_type = PPO.config_type
    assert parse_grid_values(config_type, "lr", "1e-4,3e-4") == ("lr", [1e-4, 3e-4])
    assert parse_grid_values(config_type, "clip-eps", "1,0.2") == ("clip_eps", [1.0, 0.2])
    assert parse_grid_values(config_type, "hidden_sizes", "64x64,32") == ("hidden_sizes", [(64, 64), (32,)])
    assert parse_grid_values(config_type, "anneal_lr", "true,false") == ("anneal_lr", [True, False])
    assert parse_grid_values(config_type, "num_steps", [64, 128]) == ("num_steps", [64, 128])
    configs, values = expand_grid(config_type(), {"lr": [1e-4, 3e-4], "epochs": [1, 2]})
    assert [(c.lr, c.epochs) for c in configs] == [(1e-4, 1), (1e-4, 2), (3e-4, 1), (3e-4, 2)]
    assert values[1] == {"lr": 1e-4, "epochs": 2}


@pytest.mark.parametrize("grid, match", [
    ("lrr=1,2", r"--grid lrr: PPOConfig has no hyperparameter 'lrr'; the ones it has: .*clip-eps"),
    ("lr=fast,1e-3", r"--grid lr: lr must be a number \(like 0.00025\), got 'fast'"),
    ("num_steps=64,1.5", r"--grid num_steps: num_steps must be a whole number"),
    ("lr=1e-3,1e-3", r"repeats a value"),
    ("lr=", r"give values separated by commas"),
])
def test_bad_grid_values_are_one_line(grid, match):
    key, _, values = grid.partition("=")
    with pytest.raises(ConfigError, match=match) as info:
        parse_grid_values(PPO.config_type, key, values)
    assert "\n" not in str(info.value)


def test_a_bad_configuration_or_too_large_a_grid_is_refused_before_anything_compiles(capsys):
    with pytest.raises(ConfigError, match=r"configuration lr=0.001,clip_eps=-1: --clip-eps must be positive"):
        plan_sweep(PPO, RUN, small_ppo(), {"lr": [1e-3], "clip_eps": [0.2, -1.0]})
    with pytest.raises(ConfigError, match="the grid has 6 configurations, more than --max-configs 4"):
        plan_sweep(PPO, RUN, small_ppo(), {"lr": [1e-3, 2e-3, 3e-3], "clip_eps": [0.1, 0.2]}, max_configs=4)
    for argv, match in [(["sweep", "ppo"], "needs at least one --grid"),
                        (["sweep", "ppo", "--grid", "lr"], "write --grid KEY=V1,V2"),
                        (["sweep", "ppo", "--grid", "lr=1,2", "--grid", "lr=3,4"], "lr is given twice"),
                        (["sweep", "--resume", "/nonexistent"], "has no sweep.json"),
                        (["sweep", "ppo", "--sweep", "/nonexistent.yaml"], "holding a mapping `grid:"),
                        (["sweep", "ppo", "--grid", "num_steps=16,32", "--num-envs", "0"],
                         "--num-envs must be a positive integer, got 0")]:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert match in err and "\n" not in err, err


def test_float_keys_the_builder_takes_traced_share_a_program_the_others_do_not():
    env, base = envs.make("CartPole-v1"), small_ppo()
    assert split_keys(PPO, base, env, 6, ["lr", "clip_eps", "gae_lambda", "max_grad_norm", "num_steps",
                                          "anneal_lr"]) == ("lr", "clip_eps", "gae_lambda")
    splan = plan_sweep(PPO, RUN, base, {"lr": [1e-3, 3e-3], "max_grad_norm": [0.0, 0.5], "num_steps": [16, 32]})
    assert splan.vmapped == ("lr",)
    assert splan.programs == [[0, 4], [1, 5], [2, 6], [3, 7]]  # lr varies slowest; each program holds both lrs


# ------------------------------------------------------------------------------------ equivalences


def test_a_configuration_does_not_depend_on_the_others_and_equals_a_plain_run(tmp_path):
    base = small_ppo()
    record_a = run_sweep(plan_sweep(PPO, RUN, base, {"lr": [1e-3, 3e-3]}), tmp_path / "a")
    record_b = run_sweep(plan_sweep(PPO, RUN, base, {"lr": [3e-3, 1e-2]}), tmp_path / "b")
    assert record_a["exit_code"] == record_b["exit_code"] == 0
    row_a, row_b = record_a["rows"][1], record_b["rows"][0]
    assert row_a["values"] == row_b["values"] == {"lr": 3e-3}
    config = dataclasses.replace(base, lr=3e-3)
    a = leaves(_restore_dir(tmp_path / "a" / row_a["run_dir"], config))
    b = leaves(_restore_dir(tmp_path / "b" / row_b["run_dir"], config))
    assert all(np.array_equal(x, y) for x, y in zip(a, b)), "a configuration's rows depend on its neighbours"
    assert row_a["final_return_per_seed"] == row_b["final_return_per_seed"]
    ma = read_metrics(tmp_path / "a" / row_a["run_dir"] / "metrics.csv")
    mb = read_metrics(tmp_path / "b" / row_b["run_dir"] / "metrics.csv")
    np.testing.assert_array_equal(ma["value_loss"], mb["value_loss"])

    from pgax.experiment import run_experiment

    summary = run_experiment(PPO, RUN, config, tmp_path / "plain")
    plain = leaves(_restore_dir(tmp_path / "plain", config))
    worst = max(float(np.max(np.abs(x - y))) for x, y in zip(a, plain))
    assert summary["status"] == "finished"
    assert worst < 1e-5, f"the sweep's configuration is {worst} away from the plain run"


def _restore_dir(run_dir, config):
    from pgax import checkpoints

    store, step = checkpoints.resolve(run_dir, "latest")
    return _restore(store, step, config)


# ---------------------------------------------------------------------------------- the sweep folder


def test_cli_sweep_writes_the_folder_and_each_configuration_is_a_run(tmp_path, capsys):
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text("grid:\n  epochs: [1, 2]\nclip_eps: 0.3\n")
    argv = ["sweep", "ppo", "--env", "CartPole-v1", "--steps", str(6 * 64), "--seeds", "2", "--eval-episodes", "3",
            "--num-envs", "2", "--num-steps", "32", "--epochs", "2", "--minibatches", "2", "--hidden-sizes", "16",
            "--no-tensorboard", "--no-progress", "--out", str(tmp_path), "--grid", "lr=1e-3,1e30",
            "--sweep", str(sweep_file)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    (sweep_dir,) = tmp_path.glob("*-sweep-ppo-CartPole-v1")
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert record["status"] == "finished" and record["vmapped"] == ["lr"] and len(record["programs"]) == 2
    assert record["base_config"]["clip_eps"] == 0.3
    statuses = {r["label"]: r["status"] for r in record["rows"]}
    assert statuses == {"epochs=1,lr=0.001": "finished", "epochs=1,lr=1e+30": "diverged",
                        "epochs=2,lr=0.001": "finished", "epochs=2,lr=1e+30": "diverged"}
    best = record["best"]
    assert best["label"] in ("epochs=1,lr=0.001", "epochs=2,lr=0.001")
    assert best["ci95_low"] <= best["final_return_mean"] <= best["ci95_high"]
    table = (sweep_dir / "table.txt").read_text()
    assert table.splitlines()[3].startswith(best["label"]) and "diverged" in table and f"best: {best['label']}" in table
    assert "best: " in out and (sweep_dir / "curves.png").stat().st_size > 0
    for r in record["rows"]:
        folder = sweep_dir / r["run_dir"]
        assert {"config.yaml", "metrics.csv", "summary.json", "checkpoints"} <= {p.name for p in folder.iterdir()}
    capsys.readouterr()
    assert cli.main(["eval", str(sweep_dir / best["run_dir"]), "--episodes", "3"]) == 0
    said = capsys.readouterr().out
    assert f"per seed: {', '.join(f'{x:.1f}' for x in best['final_return_per_seed'])}" in said
    assert cli.main(["sweep", "--resume", str(sweep_dir)]) == 0
    said = capsys.readouterr().out
    assert said.count("finished earlier; skipped") == 2


def test_an_interrupted_sweep_resumes_from_its_checkpoints_bit_identically(tmp_path):
    base, grid = small_ppo(), {"lr": [1e-3, 3e-3]}
    whole = run_sweep(plan_sweep(PPO, RUN, base, grid), tmp_path / "whole")
    calls = []
    stopped = run_sweep(plan_sweep(PPO, RUN, base, grid), tmp_path / "cut", stop_when=lambda: calls.append(1) or
                        len(calls) > 2)
    assert stopped["status"] == "interrupted" and stopped["exit_code"] == 130
    assert all(0 < r["steps"] < RUN.steps for r in stopped["rows"])
    resumed = run_sweep(plan_sweep(PPO, RUN, base, grid), tmp_path / "cut", resume=True)
    assert resumed["status"] == "finished"
    for r_whole, r_cut in zip(whole["rows"], resumed["rows"]):
        config = dataclasses.replace(base, **r_whole["values"])
        a = leaves(_restore_dir(tmp_path / "whole" / r_whole["run_dir"], config))
        b = leaves(_restore_dir(tmp_path / "cut" / r_cut["run_dir"], config))
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
        assert r_whole["final_return_per_seed"] == r_cut["final_return_per_seed"]
        mw = read_metrics(tmp_path / "whole" / r_whole["run_dir"] / "metrics.csv")
        mc = read_metrics(tmp_path / "cut" / r_cut["run_dir"] / "metrics.csv")
        np.testing.assert_array_equal(mw["step"], mc["step"])
        np.testing.assert_array_equal(mw["value_loss"], mc["value_loss"])


def test_on_a_gymnasium_env_each_configuration_is_its_own_run(tmp_path):
    run = dataclasses.replace(RUN, driver="gymnasium", steps=2 * 64, eval_episodes=1, chunk_iterations=0)
    splan = plan_sweep(PPO, run, small_ppo(), {"lr": [1e-3, 3e-3]})
    assert splan.vmapped == () and splan.programs == [[0], [1]]
    record = run_sweep(splan, tmp_path)
    assert record["status"] == "finished" and [r["status"] for r in record["rows"]] == ["finished", "finished"]
    for r in record["rows"]:
        config = json.loads((tmp_path / r["run_dir"] / "summary.json").read_text())
        assert config["steps"] == 2 * 64 and len(config["final_return_per_seed"]) == 2
        assert f"lr: {r['values']['lr']}" in (tmp_path / r["run_dir"] / "config.yaml").read_text()
