"""Named algorithms as presets: estimator × critic × update rule, with typed default configs.

Layer 2. One module per preset family (its config dataclass and `make_*` builder); `core.py` holds
the shared `Agent`, `Preset`, validation and factories. `PRESETS` names them for the CLI.
"""

from __future__ import annotations

from pgax.algorithms.core import Agent, AgentState, Preset, add_gae, config_to_dict
from pgax.algorithms.natural import NPGConfig, TRPOConfig, make_npg, make_trpo
from pgax.algorithms.ppo import PPOConfig, make_ppo
from pgax.algorithms.cpi import CPIConfig, make_cpi
from pgax.algorithms.nac import NACConfig, make_nac
from pgax.algorithms.ppo_kl import PPOKLConfig, make_ppo_kl
from pgax.algorithms.vine import VineConfig, make_vine
from pgax.algorithms.reinforce import (ReinforceBaselineConfig, ReinforceConfig, make_reinforce,
                                       make_reinforce_baseline)
from pgax.algorithms.a2c import A2CConfig, make_a2c
from pgax.algorithms.online import TDACConfig, TDLambdaACConfig, make_td_ac, make_td_lambda_ac
from pgax.algorithms.qac import QACConfig, make_qac
from pgax.algorithms.offpolicy import (DDPGConfig, OffPACConfig, SACConfig, TD3Config, make_ddpg, make_offpac,
                                       make_sac, make_td3)
from pgax.errors import ConfigError

PRESETS: dict[str, Preset] = {}


def register(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


register(Preset("reinforce", ReinforceConfig, make_reinforce,
                "REINFORCE, Monte Carlo policy gradient with G_t (reward-to-go or whole return)"))
register(Preset("reinforce_baseline", ReinforceBaselineConfig, make_reinforce_baseline,
                "REINFORCE with a learned value baseline re-fitted each iteration"))
register(Preset("a2c", A2CConfig, make_a2c, "A2C, synchronous advantage actor-critic, GAE / n-step, one step per batch"))
register(Preset("td_ac", TDACConfig, make_td_ac,
                "one-step TD actor-critic, online: an update after every step with δ = r + γV(s') − V(s)"))
register(Preset("td_lambda_ac", TDLambdaACConfig, make_td_lambda_ac,
                "TD(λ) actor-critic, online, eligibility traces for actor and critic (backward view)"))
register(Preset("qac", QACConfig, make_qac,
                "Q actor-critic: linear critic Q_w = φ(s,a)ᵀw (random Fourier features) by TD(0), online"))
register(Preset("nac", NACConfig, make_nac,
                "natural actor-critic: compatible critic ψᵀw by CG least squares or TD, actor moved along w"))
register(Preset("npg", NPGConfig, make_npg,
                "natural policy gradient: CG natural step of KL size ε (12.12), GAE(λ), value critic"))
register(Preset("trpo", TRPOConfig, make_trpo,
                "TRPO: natural step + backtracking line search on surrogate and mean KL (12.18-12.20)"))
register(Preset("ppo", PPOConfig, make_ppo, "PPO, clipped surrogate (12.22) with GAE(λ) and a value critic"))
register(Preset("ppo_kl", PPOKLConfig, make_ppo_kl,
                "PPO with the KL-penalised surrogate (12.24), adaptive β, GAE(λ), critic by regression"))
register(Preset("cpi", CPIConfig, make_cpi,
                "conservative policy iteration on tabular MDPs (exact or sampled advantages)"))
register(Preset("vine", VineConfig, make_vine,
                "TRPO with vine sampling: K actions per saved state, branch rollouts, surrogates (15)/(16)"))
register(Preset("sac", SACConfig, make_sac,
                "soft actor-critic: replay, twin Q with targets, squashed Gaussian actor, automatic entropy α"))
register(Preset("td3", TD3Config, make_td3,
                "TD3: replay, deterministic actor, twin Q, target policy smoothing, delayed actor updates"))
register(Preset("ddpg", DDPGConfig, make_ddpg, "DDPG: replay, deterministic actor along ∇_a Q, one Q critic with targets"))
register(Preset("offpac", OffPACConfig, make_offpac,
                "off-policy actor-critic: replay, importance-weighted likelihood-ratio actor (π/β), Q critic"))


def get_preset(name: str) -> Preset:
    """The preset called `name`, or a ConfigError listing the known ones."""
    if name not in PRESETS:
        raise ConfigError(f"unknown algorithm {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


__all__ = ["Agent", "AgentState", "Preset", "PRESETS", "add_gae", "config_to_dict", "get_preset", "register",
           *(name for name in dir() if name.endswith("Config") or name.startswith("make_"))]
