"""Print a hash of every preset's final training state on a tiny config (3 iterations, seeds 1 and 2).

A refactor that should not change any result is checked by running this before and after (e.g. the
old commit in a `git worktree`, with PYTHONPATH pointing at it) and comparing the lines:

    .venv/bin/python tools/state_hashes.py
"""

from __future__ import annotations

import hashlib

import jax
import numpy as np

from pgax import envs
from pgax.algorithms import get_preset
from pgax.train import train

TINY = {
    "ppo": dict(num_envs=2, num_steps=16, minibatches=2, epochs=2, hidden_sizes=(8,)),
    "ppo_kl": dict(num_envs=2, num_steps=16, minibatches=2, epochs=2, critic_minibatches=2, hidden_sizes=(8,)),
    "a2c": dict(num_envs=2, num_steps=8, hidden_sizes=(8,)),
    "nac": dict(num_envs=2, num_steps=16, critic_minibatches=2, hidden_sizes=(8,)),
    "trpo": dict(num_envs=2, num_steps=16, critic_minibatches=2, hidden_sizes=(8,)),
    "npg": dict(num_envs=2, num_steps=16, critic_minibatches=2, hidden_sizes=(8,)),
    "vine": dict(num_envs=2, num_steps=8, num_branch_states=4, branch_horizon=5, critic_minibatches=2,
                 hidden_sizes=(8,)),
    "reinforce_baseline": dict(num_envs=2, num_steps=64, critic_minibatches=2, hidden_sizes=(8,)),
    "reinforce": dict(num_envs=2, num_steps=64, hidden_sizes=(8,)),
    "td_ac": dict(num_envs=2, num_steps=8, hidden_sizes=(8,)),
    "td_lambda_ac": dict(num_envs=2, num_steps=8, hidden_sizes=(8,)),
    "qac": dict(num_envs=2, num_steps=8, hidden_sizes=(8,), num_features=16),
    "cpi": dict(num_envs=2, num_steps=64, advantages="sampled", return_horizon=10),
}


def main() -> None:
    for name, kwargs in TINY.items():
        preset = get_preset(name)
        config = preset.config_type(**kwargs)
        env = envs.make("Garnet-v0" if name == "cpi" else "CartPole-v1")
        agent = preset.make_agent(config, env, 3)
        result = train(agent, env, num_envs=config.num_envs, num_steps=config.num_steps, num_iterations=3, seeds=[1, 2])
        leaves = jax.tree_util.tree_leaves(result.state.agent)
        digest = hashlib.sha256(b"".join(np.asarray(x).tobytes() for x in leaves)).hexdigest()[:16]
        print(name, digest, flush=True)


if __name__ == "__main__":
    main()
