"""`pgax sweep --search random|optuna`: the space's syntax and bad input, a search end to end (its trials
recorded in the study and in sweep.json, each trial's value its run's evaluation), pruning against the
median of completed trials, invalid sampled configurations, and resume after an interruption."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import optuna
import pytest

from pgax import cli
from pgax.algorithms import PRESETS
from pgax.errors import ConfigError
from pgax.experiment import RunOptions
from pgax.search import Dimension, open_study, parse_space, plan_search, run_search

PPO = PRESETS["ppo"]
SMALL = dict(num_envs=2, num_steps=32, epochs=2, minibatches=2, hidden_sizes=(16,))
RUN = RunOptions(env="CartPole-v1", steps=10 * 64, seeds=2, eval_episodes=3, tensorboard=False, progress=False,
                 chunk_iterations=1)
SPACE = {"lr": Dimension("lr", 1e-4, 1e-2, log=True), "clip_eps": Dimension("clip_eps", 0.1, 0.3)}


def small_ppo(**changes):
    return dataclasses.replace(PPO.config_type(), **SMALL, **changes)


def test_the_space_takes_ranges_log_ranges_integers_and_choices():
    config_type = PPO.config_type
    assert parse_space(config_type, "lr", "1e-5:1e-2:log") == Dimension("lr", 1e-5, 1e-2, log=True)
    assert parse_space(config_type, "clip-eps", "0.1:0.3") == Dimension("clip_eps", 0.1, 0.3)
    assert parse_space(config_type, "epochs", "2:10") == Dimension("epochs", 2, 10, integer=True)
    assert parse_space(config_type, "hidden_sizes", "64x64,32") == Dimension("hidden_sizes", choices=((64, 64), (32,)))
    assert parse_space(config_type, "anneal_lr", [True, False]) == Dimension("anneal_lr", choices=(True, False))
    dim = parse_space(config_type, "hidden_sizes", [[64, 64], [128]])
    assert dim.value(1) == (128,) and dim.spec() == "hidden_sizes=64x64,128"
    assert parse_space(config_type, "epochs", "2:10").distribution() == optuna.distributions.IntDistribution(2, 10)


@pytest.mark.parametrize("key, spec, match", [
    ("lrr", "1:2", r"PPOConfig has no hyperparameter 'lrr'"),
    ("lr", "1e-2:1e-4", r"--space lr=1e-2:1e-4: LOW must be below HIGH"),
    ("lr", "0:1e-2:log", r"a log range needs LOW > 0"),
    ("lr", "1e-4:1e-2:ln", r"write LOW:HIGH or LOW:HIGH:log"),
    ("hidden_sizes", "16:64", r"hidden_sizes \(not a number\)"),
    ("epochs", "1:2.5", r"epochs must be a whole number"),
])
def test_a_bad_space_is_one_line(key, spec, match):
    with pytest.raises(ConfigError, match=match) as info:
        parse_space(PPO.config_type, key, spec)
    assert "\n" not in str(info.value)


def test_bad_search_options_are_refused_before_anything_compiles(tmp_path, capsys):
    base = ["sweep", "ppo", "--out", str(tmp_path)]
    for extra, match in [(["--space", "lr=1e-4:1e-2"], "--space needs --search random|optuna"),
                         (["--search", "grid", "--space", "lr=1e-4:1e-2"], "--search grid: use one of random, optuna"),
                         (["--search", "random"], "--search needs at least one --space"),
                         (["--search", "random", "--space", "lr=1e-4:1e-2", "--grid", "epochs=1,2"],
                          "either a grid (--grid) or a search"),
                         (["--search", "random", "--space", "lr=1e-4:1e-2", "--trials", "0"], "whole numbers ≥ 1"),
                         (["--search", "random", "--space", "lr=1e-4:1e-2", "--trials", "x"],
                          "--trials takes a whole number, got 'x'"),
                         (["--search", "random", "--space", "lr=1e-4:1e-2", "--pruner", "hyperband"],
                          "--pruner hyperband: use one of median, none"),
                         (["--search", "random", "--space", "lr=1e-4:1e-2", "--eval-episodes", "0"],
                          "give --eval-episodes ≥ 1"),
                         (["--search", "random", "--space", "lr"], "write --space KEY=LOW:HIGH[:log]"),
                         (["--grid", "lr=1,2", "--trials", "4"], "--trials belong to a search")]:
        assert cli.main(base + extra) == 2, extra
        err = capsys.readouterr().err.strip()
        assert match in err and "\n" not in err, err
    assert not list(tmp_path.iterdir()), "a refused search wrote a folder"


def test_a_search_records_its_trials_and_each_value_is_its_runs_evaluation(tmp_path, capsys):
    sweep_file = tmp_path / "search.yaml"
    sweep_file.write_text("search: optuna\ntrials: 4\nbatch: 4\npruner: none\n"
                          "space:\n  lr: 1.0e-4:1.0e-2:log\n  clip_eps: 0.1:0.3\n  epochs: [1, 2]\n")
    argv = ["sweep", "ppo", "--env", "CartPole-v1", "--steps", str(6 * 64), "--seeds", "2", "--eval-episodes", "3",
            "--num-envs", "2", "--num-steps", "32", "--minibatches", "2", "--hidden-sizes", "16", "--seed", "3",
            "--no-tensorboard", "--no-progress", "--out", str(tmp_path), "--sweep", str(sweep_file)]
    assert cli.main(argv) == 0
    (sweep_dir,) = tmp_path.glob("*-search-ppo-CartPole-v1")
    record = json.loads((sweep_dir / "sweep.json").read_text())
    search = record["search"]
    assert record["status"] == "finished" and search["method"] == "optuna" and search["trials_told"] == 4
    assert search["space"] == ["lr=0.0001:0.01:log", "clip_eps=0.1:0.3", "epochs=1,2"]
    study = optuna.load_study(study_name="pgax", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(sweep_dir / "study.journal"))))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    rows = {r["index"]: r for r in record["rows"]}
    for trial, entry in zip(study.trials, search["trials"]):
        values = entry["values"]
        assert 1e-4 <= values["lr"] <= 1e-2 and 0.1 <= values["clip_eps"] <= 0.3 and values["epochs"] in (1, 2)
        summary = json.loads((sweep_dir / rows[trial.number]["run_dir"] / "summary.json").read_text())
        assert trial.value == pytest.approx(summary["final_return_mean"]) == entry["value"]
        assert summary["sweep"]["values"] == values
    assert record["best"]["index"] == study.best_trial.number, "the best trial is not the highest return"
    assert f"best: {record['best']['label']}" in (sweep_dir / "table.txt").read_text()
    assert cli.main(["eval", str(sweep_dir / record["best"]["run_dir"]), "--episodes", "2"]) == 0


def test_trials_below_the_median_of_completed_ones_are_pruned_and_their_program_stops(tmp_path):
    search = plan_search(PPO, RUN, small_ppo(), SPACE, "random", trials=7, batch=2, pruner="median")
    study = open_study(search, tmp_path)
    distributions = {k: d.distribution() for k, d in SPACE.items()}
    for number in range(5):  # five completed trials far above anything CartPole returns early
        study.add_trial(optuna.trial.create_trial(
            params={"lr": 1e-3, "clip_eps": 0.2}, distributions=distributions, value=1e6,
            intermediate_values={step: 1e6 for step in range(0, RUN.steps + 1, 64)}))
    record = run_search(search, tmp_path)
    pruned = [t for t in record["search"]["trials"] if t["number"] >= 5]
    assert [t["state"] for t in pruned] == ["PRUNED", "PRUNED"]
    warmup, chunk = math.ceil(0.3 * RUN.steps), 64  # one iteration of 2 envs × 32 steps per chunk
    summaries = []
    for t in pruned:
        row = next(r for r in record["rows"] if r["index"] == t["number"])
        summaries.append(json.loads((tmp_path / row["run_dir"] / "summary.json").read_text()))
        assert summaries[-1]["status"] == "pruned" and warmup <= summaries[-1]["pruned_at_step"] < RUN.steps
        assert [int(s) for s in t["intermediate"]][-1] <= summaries[-1]["pruned_at_step"]
    last = max(s["pruned_at_step"] for s in summaries)
    # the chunk in flight when the last trial was pruned still finishes; nothing after it runs
    assert all(s["steps"] <= last + chunk for s in summaries), "the program trained on after every trial was pruned"


def test_an_invalid_sampled_configuration_is_told_fail_and_the_search_goes_on(tmp_path):
    space = {"minibatches": Dimension("minibatches", choices=(2, 3))}  # 3 does not divide 2 × 32
    search = plan_search(PPO, RUN, small_ppo(), space, "random", trials=4, batch=4, pruner="none")
    record = run_search(search, tmp_path)
    states = {t["values"]["minibatches"]: t["state"] for t in record["search"]["trials"]}
    assert states == {2: "COMPLETE", 3: "FAIL"}
    failed = [t for t in record["search"]["trials"] if t["state"] == "FAIL"]
    assert all("minibatches" in t["invalid"] for t in failed)
    assert record["status"] == "finished" and len(record["search"]["trials"]) == 4


def test_an_interrupted_search_keeps_its_told_trials_and_resumes_the_rest(tmp_path):
    search = plan_search(PPO, RUN, small_ppo(), SPACE, "random", trials=4, batch=2, pruner="none")

    def third_trial_trained_a_little():
        return any(len(m.read_text().splitlines()) > 1 + 3 * RUN.seeds for m in tmp_path.glob("002-*/metrics.csv"))

    cut = run_search(search, tmp_path, stop_when=third_trial_trained_a_little)
    assert cut["status"] == "interrupted" and cut["exit_code"] == 130
    states = [t["state"] for t in cut["search"]["trials"]]
    assert states == ["COMPLETE", "COMPLETE", "RUNNING", "RUNNING"], states
    first = {r["index"]: r["final_return_per_seed"] for r in cut["rows"] if r["status"] == "finished"}
    values = [t["values"] for t in cut["search"]["trials"]]
    resumed = run_search(search, tmp_path, resume=True)
    assert resumed["status"] == "finished"
    assert [t["state"] for t in resumed["search"]["trials"]] == ["COMPLETE"] * 4
    assert [t["values"] for t in resumed["search"]["trials"]] == values, "resume sampled the interrupted trials anew"
    rows = {r["index"]: r for r in resumed["rows"]}
    assert {i: rows[i]["final_return_per_seed"] for i in first} == first
    assert all(rows[i]["steps"] == 10 * 64 and rows[i]["final_return_mean"] is not None for i in (2, 3))
    summary = json.loads((tmp_path / rows[2]["run_dir"] / "summary.json").read_text())
    assert summary["resumed_from"] is not None and 0 < summary["resumed_from"] < 10


def test_random_search_samples_reproducibly_from_the_seed(tmp_path):
    search = plan_search(PPO, dataclasses.replace(RUN, seed=7), small_ppo(), SPACE, "random", 3, 3, "none")
    values = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        study = open_study(search, tmp_path / name)
        values.append([study.ask({k: d.distribution() for k, d in SPACE.items()}).params for _ in range(3)])
    assert values[0] == values[1]
    lrs = np.log10([p["lr"] for p in values[0]])
    assert np.all((lrs >= -4) & (lrs <= -2))
