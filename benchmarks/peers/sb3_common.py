"""What the SB3 peer benchmarks share: pgax's PPO settings expressed as an SB3 `PPO`, and the timed
`learn()` that prints one JSON line. Runs in benchmarks/.venv-peers (imported by the scripts beside it)."""

from __future__ import annotations

import json
import time

import gymnasium
import stable_baselines3
import torch
from stable_baselines3 import PPO


def make_ppo(env, *, lr: float, n_steps: int, batch_size: int, n_epochs: int, ent_coef: float, seed: int) -> PPO:
    """SB3 PPO with pgax's PPOConfig defaults for everything not passed: lr annealed linearly to 0,
    γ 0.99, GAE λ 0.95, clip 0.2 (also on the value function, as pgax's clip_value_loss), value 0.5,
    grad norm 0.5, Adam ε 1e-5 (SB3's default), separate 64×64 tanh MLPs, CPU."""
    return PPO(
        "MlpPolicy",
        env,
        learning_rate=lambda progress_remaining: lr * progress_remaining,
        n_steps=n_steps,
        batch_size=batch_size,
        n_epochs=n_epochs,
        gamma=0.99,
        gae_lambda=0.95,
        clip_range=0.2,
        clip_range_vf=0.2,
        normalize_advantage=True,
        ent_coef=ent_coef,
        vf_coef=0.5,
        max_grad_norm=0.5,
        policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.Tanh),
        seed=seed,
        device="cpu",
        verbose=0,
    )


def time_learn(model: PPO, env, steps: int, **extra) -> None:
    """Time `model.learn(steps)` alone and print one JSON line (plus `extra` fields). cpu_seconds is
    process CPU time over all threads: far below seconds means other load took the CPU."""
    start, cpu_start = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    env.close()
    done = int(model.num_timesteps)
    print(json.dumps({
        "peer": "stable-baselines3",
        "version": stable_baselines3.__version__,
        "torch": torch.__version__,
        **extra,
        "steps": done,
        "seconds": round(seconds, 3),
        "steps_per_second": round(done / seconds),
        "gymnasium": gymnasium.__version__,
        "cpu_seconds": round(cpu_seconds, 3),
        "torch_threads": torch.get_num_threads(),
    }))
