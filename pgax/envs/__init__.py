"""Environments: JAX-native ones behind the `JaxEnv` interface, and their registry."""

from __future__ import annotations

from pgax.envs.core import JaxEnv, Transition
from pgax.envs.gymnax_env import gymnax_ids, make_gymnax
from pgax.envs.wrappers import episode_statistics
from pgax.errors import ConfigError

__all__ = ["JaxEnv", "Transition", "make", "list_envs", "episode_statistics"]


def list_envs() -> dict[str, str]:
    """Every environment id pgax can make, with a one-line description."""
    return {env_id: "gymnax (JAX-native)" for env_id in gymnax_ids()}


def make(env_id: str) -> JaxEnv:
    """The JAX-native environment `env_id`, or a ConfigError naming the known ids."""
    known = list_envs()
    if env_id not in known:
        close = [k for k in known if k.lower().split("-")[0] == env_id.lower().split("-")[0]]
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown environment {env_id!r}; {hint}run `pgax list` to see the available ids")
    return make_gymnax(env_id)
