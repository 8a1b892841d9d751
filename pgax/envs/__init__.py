"""Environments: JAX-native ones behind the `JaxEnv` interface, and their registry.

    make(env_id) -> JaxEnv        list_envs() -> {env_id: description}

Registered ids: every gymnax environment (CartPole-v1, Pendulum-v1, Acrobot-v1, ...), and the
source notes' own problems: SimpleRegulator-v0, SingleStateGaussian-v0, LQR-v0 and the tabular
MDPs Garnet-v0, Chain-v0 and GridWorld-v0. Any other id (a Gymnasium id such as Hopper-v5, or
module:Class) is a Gymnasium environment for the host driver: `resolve_driver` picks the driver,
`pgax.envs.gymnasium_env.make_gymnasium` makes it (or `pgax.envs.envpool_env.make_envpool`, for
--driver envpool).
"""

from __future__ import annotations

from collections.abc import Callable

from pgax.envs.core import JaxEnv, Transition
from pgax.envs.gymnasium_env import DRIVERS, GymnasiumEnv, make_checked_gymnasium, make_gymnasium
from pgax.envs.gymnax_env import gymnax_ids, make_gymnax
from pgax.envs.wrappers import episode_statistics
from pgax.errors import ConfigError

__all__ = ["JaxEnv", "Transition", "make", "list_envs", "episode_statistics", "GymnasiumEnv", "make_gymnasium",
           "make_checked_gymnasium", "resolve_driver", "make_host_env", "DRIVERS"]


def _regulator() -> JaxEnv:
    from pgax.envs.regulator import simple_regulator
    return simple_regulator(depth=10)


def _single_state() -> JaxEnv:
    from pgax.envs.regulator import single_state_gaussian
    return single_state_gaussian(depth=3)


def _lqr() -> JaxEnv:
    from pgax.envs.lqr import default_lqr, lqr_env
    return lqr_env(default_lqr(), horizon=50)


def _tabular(kind: str) -> Callable[[], JaxEnv]:
    def make_it() -> JaxEnv:
        from pgax.envs import tabular
        mdp = {"Garnet-v0": lambda: tabular.garnet_mdp(0), "Chain-v0": tabular.chain_mdp,
               "GridWorld-v0": tabular.gridworld_mdp}[kind]()
        return tabular.make_tabular_env(mdp, max_episode_steps=100, name=kind)
    return make_it


SEED_ENVS: dict[str, tuple[Callable[[], JaxEnv], str]] = {
    "SimpleRegulator-v0": (_regulator, "the book's simple regulator: s' ~ N(s + a, 0.1²), r = −s², depth 10, γ = 1"),
    "SingleStateGaussian-v0": (_single_state, "single-state MDP of Example 12.1: reward = action, depth 3, γ = 1"),
    "LQR-v0": (_lqr, "linear-quadratic regulator (3 states, 2 inputs), horizon 50, exact cost in pgax.envs.lqr"),
    "Garnet-v0": (_tabular("Garnet-v0"), "random tabular MDP (8 states, 3 actions, γ 0.9), one-hot observations"),
    "Chain-v0": (_tabular("Chain-v0"), "tabular chain MDP, one-hot observations"),
    "GridWorld-v0": (_tabular("GridWorld-v0"), "small tabular gridworld, one-hot observations"),
}


def list_envs() -> dict[str, str]:
    """Every environment id pgax can make, with a one-line description."""
    envs = {env_id: "gymnax (JAX-native)" for env_id in gymnax_ids()}
    envs.update({env_id: summary for env_id, (_, summary) in SEED_ENVS.items()})
    return envs


def make(env_id: str) -> JaxEnv:
    """The JAX-native environment `env_id`, or a ConfigError naming the fix."""
    if env_id in SEED_ENVS:
        return SEED_ENVS[env_id][0]()
    known = list_envs()
    if env_id not in known:
        close = [k for k in known if k.lower().split("-")[0] == env_id.lower().split("-")[0]]
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown environment {env_id!r}; {hint}run `pgax list` to see the available ids")
    return make_gymnax(env_id)


ENVPOOL_MIN_COPIES = 4
"""`--driver auto` picks envpool for a verified id from this many env copies (seeds × num_envs) on: below it
one process stepping Gymnasium copies is faster (envpool hands each step to a thread; benchmarks/RESULTS.md)."""


def resolve_driver(env_id: str, driver: str = "auto", copies: int | None = None) -> str:
    """The rollout driver for `env_id`: "jax" (the jitted driver, JAX-native envs), "gymnasium",
    "gymnasium-async" or "envpool" (the host driver). "auto" picks jax for the ids `make` knows;
    envpool, where it is installed, for ids only envpool has (Atari's Pong-v5, ...) and for the ids
    whose envpool dynamics are checked against Gymnasium's (`envpool_env.VERIFIED`) when `copies`
    (seeds × num_envs; None: unknown) is at least ENVPOOL_MIN_COPIES; gymnasium for everything else
    (Gymnasium ids, module:Class)."""
    from pgax.envs import envpool_env

    if driver not in DRIVERS:
        raise ConfigError(f"--driver {driver!r} is not known; use one of {', '.join(DRIVERS)}")
    if driver == "auto":
        if env_id in list_envs():
            return "jax"
        if ":" in env_id:
            return "gymnasium"
        many = copies is None or copies >= ENVPOOL_MIN_COPIES
        if many and env_id in envpool_env.VERIFIED and envpool_env.envpool_task(env_id) is not None:
            return "envpool"
        import gymnasium

        if env_id not in gymnasium.registry and envpool_env.envpool_task(env_id) is not None:
            return "envpool"
        return "gymnasium"
    if driver == "jax" and env_id not in list_envs():
        raise ConfigError(f"--driver jax needs a JAX-native env (pgax list); {env_id!r} is not one: "
                          "use --driver gymnasium")
    return driver


def make_host_env(env_id: str, driver: str):
    """The environment of a host driver (`resolve_driver`'s gymnasium, gymnasium-async or envpool),
    checked: `envpool_env.make_envpool` or `make_checked_gymnasium`."""
    if driver == "envpool":
        from pgax.envs.envpool_env import make_envpool

        return make_envpool(env_id)
    return make_checked_gymnasium(env_id)
