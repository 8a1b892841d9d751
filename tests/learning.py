"""Learning claims: statements about training outcomes that hold across seeds and machines.

A learning test trains one agent per seed (the seeds vmapped in one program) and scores each seed;
its claim is that at least `at_least` of the `num_seeds` seeds meet every condition. The conditions
sit well below the typical outcome, and each claim's docstring records the per-seed outcomes it was
calibrated on: `python -m tests.calibrate` reruns every claim on disjoint seed sets (default: the
offsets 0, 100, 200 and 300, so the sets PGAX_TEST_SEED_OFFSET=100 and =200 use are among them) and
prints the outcomes as a table (docs/testing.md).

Floating-point results differ between CPUs and a learning trajectory amplifies the difference, so a
claim about seeds 0-4 is a claim about a distribution, never about one run.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from tests.helpers import seeds as offset_seeds

OPERATORS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class LearningClaim:
    """`measure(seeds) -> {score name: [num_seeds] array}`; the claim holds when at least `at_least`
    seeds satisfy every `conditions[name] = (op, threshold)`, e.g. {"eval_return": (">=", 400.0)}."""

    name: str
    measure: Callable[[list[int]], dict[str, np.ndarray]]
    conditions: dict[str, tuple[str, float]]
    at_least: int = 4
    num_seeds: int = 5
    measure_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        assert 0 < self.at_least <= self.num_seeds and self.num_seeds >= 5, self.name
        assert all(op in OPERATORS for op, _ in self.conditions.values()), self.name

    def run(self, seeds: list[int]) -> dict[str, np.ndarray]:
        scores = {k: np.asarray(v, np.float64).reshape(len(seeds)) for k, v in
                  self.measure(list(seeds), **self.measure_kwargs).items()}
        missing = set(self.conditions) - set(scores)
        assert not missing, f"{self.name}: measure returned no {sorted(missing)}"
        return scores

    def passing(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        """[num_seeds] bool: the seeds that meet every condition."""
        ok = np.ones(len(next(iter(scores.values()))), bool)
        for key, (op, threshold) in self.conditions.items():
            ok &= OPERATORS[op](scores[key], threshold)
        return ok

    def describe(self) -> str:
        conditions = " and ".join(f"{k} {op} {t:g}" for k, (op, t) in self.conditions.items())
        return f"at least {self.at_least} of {self.num_seeds} seeds with {conditions}"

    def check(self, base: int = 0) -> dict[str, np.ndarray]:
        """Run on `num_seeds` seeds from `base` (shifted by PGAX_TEST_SEED_OFFSET) and assert the claim."""
        seeds = offset_seeds(self.num_seeds, base)
        scores = self.run(seeds)
        ok = self.passing(scores)
        table = "; ".join(f"{k}=" + ", ".join(f"{x:.4g}" for x in v) for k, v in scores.items())
        assert ok.sum() >= self.at_least, (
            f"{self.name}: {ok.sum()} of {len(seeds)} seeds (seeds {seeds}) pass, needed {self.describe()}: {table}")
        return scores


# ------------------------------------------------------------------ shared measures


def train_preset(make, config, env, iterations: int, seeds: list[int]):
    """Train `make(config, env, iterations)` for `iterations` on `seeds` (one vmapped program).
    Returns (agent, TrainResult, metrics: {name: [num_seeds, iterations]})."""
    from pgax.train import train

    agent = make(config, env, iterations)
    chunks = []
    result = train(agent, env, num_envs=config.num_envs, num_steps=config.num_steps, num_iterations=iterations,
                   seeds=seeds, on_chunk=lambda done, m: chunks.append(m))
    metrics = {k: np.concatenate([c[k] for c in chunks], axis=1) for k in chunks[0]}
    return agent, result, metrics


def return_scores(agent, env, result, metrics, eval_episodes: int = 0, last: int = 10) -> dict[str, np.ndarray]:
    """{"train_return": mean episode return of the sampling policy over the last `last` iterations,
    "eval_return": deterministic evaluation over `eval_episodes` episodes (when > 0)}, each [num_seeds]."""
    from pgax.train import evaluate

    scores = {"train_return": np.nanmean(metrics["episode_return_mean"][:, -last:], axis=1)}
    if eval_episodes:
        returns = evaluate(agent, env, result.state.agent.params, result.seeds, episodes=eval_episodes)
        scores["eval_return"] = returns.mean(axis=1)
    return scores


def regulator_scores(theta) -> dict[str, np.ndarray]:
    """The simple regulator's linear Gaussian policy θ = [w, σ] per seed ([num_seeds, 2]), from θ0 = [0, 1]:
    "distance" ‖[w, |σ|] − θ*‖ (σ's sign is irrelevant; 1.41 at θ0), "gain" w (→ −1), and
    "gap_closed" (U(θ) − U(θ0)) / (U(θ*) − U(θ0)) with the exact expected return U."""
    from pgax.envs.regulator import REGULATOR_OPTIMAL_THETA, regulator_expected_return

    theta = np.asarray(theta, np.float64).reshape(-1, 2)
    optimum, start = np.asarray(REGULATOR_OPTIMAL_THETA), np.array([0.0, 1.0])
    folded = np.stack([theta[:, 0], np.abs(theta[:, 1])], axis=1)
    u_start, u_best = float(regulator_expected_return(start)), float(regulator_expected_return(optimum))
    u = np.array([float(regulator_expected_return(th)) for th in folded])
    return {"distance": np.linalg.norm(folded - optimum, axis=1), "gain": theta[:, 0],
            "gap_closed": (u - u_start) / (u_best - u_start)}


def preset_returns(seeds, make, config, steps: int, eval_episodes: int = 20, env_id: str = "CartPole-v1"):
    """Measure for a preset on a JAX-native env: train `steps` per seed (whole batches), then
    `return_scores` (training return over the last 10 iterations; evaluation when eval_episodes > 0)."""
    from pgax import envs

    config.validate()
    env = envs.make(env_id)
    agent, result, metrics = train_preset(make, config, env, steps // (config.num_envs * config.num_steps), seeds)
    return return_scores(agent, env, result, metrics, eval_episodes)


def preset_regulator(seeds, make, config, iterations: int):
    """Measure for a preset with the linear Gaussian policy on SimpleRegulator-v0: `regulator_scores`
    of θ after `iterations` iterations."""
    from pgax import envs

    config.validate()
    _, result, _ = train_preset(make, config, envs.make("SimpleRegulator-v0"), iterations, seeds)
    return regulator_scores(result.state.agent.params["policy"])
