"""Named algorithms as presets: estimator × critic × update rule, with typed default configs.

Layer 2. One module per preset family (its config dataclass and `make_*` builder); `core.py` holds
the shared `Agent`, `Preset`, validation and factories. `PRESETS` names them for the CLI.
"""

from __future__ import annotations

from pgax.algorithms.core import Agent, AgentState, Preset, add_gae, config_to_dict
from pgax.algorithms.ppo import PPOConfig, make_ppo
from pgax.errors import ConfigError

PRESETS: dict[str, Preset] = {}


def register(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


register(Preset("ppo", PPOConfig, make_ppo, "PPO, clipped surrogate (12.22) with GAE(λ) and a value critic"))


def get_preset(name: str) -> Preset:
    """The preset called `name`, or a ConfigError listing the known ones."""
    if name not in PRESETS:
        raise ConfigError(f"unknown algorithm {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


__all__ = ["Agent", "AgentState", "Preset", "PRESETS", "PPOConfig", "add_gae", "config_to_dict", "get_preset",
           "make_ppo", "register"]
