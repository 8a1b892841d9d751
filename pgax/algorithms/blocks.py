"""Config blocks: the groups of hyperparameters that mean the same thing in every preset.

Layer 2. A preset's config is a frozen dataclass made of blocks (its bases) and its own fields, so a
concept has one name, one docstring and one check everywhere, and the config stays flat: every field
is a `--flag` of `pgax train` and a key of the run's config.yaml. A preset that wants another default
redeclares the field in one line (`num_envs: int = 4`); its docstring is the block's. Bases are
listed last block first (`class PPOConfig(NetworkBlock, GAEBlock, OptimizerBlock, RolloutBlock)`),
so the rollout fields come first in `--help`. Each block's `check_*` function validates its fields
with one-line `ConfigError`s.
"""

from __future__ import annotations

from dataclasses import dataclass

import optax

from pgax.algorithms.core import (check_divides, check_non_negative, check_positive, check_positive_ints,
                                  check_unit_interval)
from pgax.errors import ConfigError


@dataclass(frozen=True)
class RolloutBlock:
    """One iteration's rollout: num_envs × num_steps transitions per seed."""

    num_envs: int = 8
    """Environments stepped in parallel (vmapped) per seed."""
    num_steps: int = 128
    """Steps per environment in each rollout; a batch holds num_envs × num_steps transitions."""

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps


def check_rollout(config) -> None:
    check_positive_ints(config, ("num_envs", "num_steps"))


@dataclass(frozen=True)
class OnlineRolloutBlock(RolloutBlock):
    """Online presets: one update per environment step, the mean over the vmapped environments."""

    num_envs: int = 16
    """Environments stepped in parallel (vmapped) per seed; each step's update is the mean over them."""
    num_steps: int = 1
    """Steps per environment in each rollout; `learn` scans them in order with one update per step."""


STEP_OPTIMIZERS = ("adam", "sgd")
"""How an online preset applies a per-step direction d: Adam on −d, or plain θ + α d."""


@dataclass(frozen=True)
class NetworkBlock:
    """The policy (and critic) networks."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and critic MLPs."""
    activation: str = "tanh"
    """Hidden activation: tanh or relu."""
    network: str = "auto"
    """Observation torso before the MLP of --policy mlp: auto (for image observations nature_cnn when both
    sides are ≥ 36 pixels, else cnn; nothing for vectors), mlp (images read as flat vectors), cnn (MinAtar:
    one 3×3 conv of 16), nature_cnn (DQN: 8×8/4 conv 32, 4×4/2 conv 64, 3×3/1 conv 64). Actor and critic
    each have their own."""
    policy: str = "mlp"
    """Policy: mlp (Categorical / Gaussian head), linear (the seeds' linear Gaussian N(θ·s, σ²)), linear_gain
    (u = −Kx + σξ), tabular (softmax table on one-hot observations)."""
    init_log_std: float = 0.0
    """Initial log σ of Gaussian policies (mlp on Box actions, linear_gain)."""
    linear_init: tuple[float, ...] | None = None
    """Initial θ of --policy linear (weights then σ); default zeros and σ = 1 (e.g. [0, 1] on the regulator)."""



@dataclass(frozen=True)
class DiscountBlock:
    """The discount of the return."""

    gamma: float = 0.99
    """Discount factor γ."""
    discount_weighting: bool = False
    """Weight step t's term of the policy gradient by γ^τ_t, τ_t the steps since its episode began: the factor
    of the policy gradient theorem, ∇J = Σ_τ γ^τ E[∇log π(a_τ|s_τ) Q(s_τ, a_τ)], which makes the estimate
    unbiased for the discounted objective J; off (common practice) drops it (the bias: docs/theory.md)."""


def check_discount(config) -> None:
    check_unit_interval(config, ("gamma",))


@dataclass(frozen=True)
class GAEBlock(DiscountBlock):
    """GAE(λ) advantages from a value critic."""

    gae_lambda: float = 0.95
    """GAE trace parameter λ (0: TD error, 1: Monte Carlo return minus value)."""
    normalize_advantages: bool = True
    """Standardise the advantages (per batch, or per minibatch for minibatched rules)."""


def check_gae(config) -> None:
    check_unit_interval(config, ("gamma", "gae_lambda"))


@dataclass(frozen=True)
class OptimizerBlock:
    """The optimiser of a gradient-step policy update."""

    lr: float = 2.5e-4
    """Learning rate (initial value when annealed)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the run."""
    optimizer_eps: float = 1e-5
    """ε of Adam / RMSprop."""
    max_grad_norm: float = 0.5
    """Rescale the gradient to at most this global L2 norm (12.2); 0 disables."""


def clip_then(config, optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
    """`optimizer` after rescaling the gradient to global norm ≤ config.max_grad_norm (none when 0)."""
    if config.max_grad_norm > 0:
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optimizer)
    return optimizer


def annealed(config, total_steps: int) -> float | optax.Schedule:
    """config.lr, or a linear decay from it to 0 over `total_steps` optimizer steps with anneal_lr."""
    return optax.linear_schedule(config.lr, 0.0, max(1, total_steps)) if config.anneal_lr else config.lr


def check_optimizer(config) -> None:
    check_positive(config, ("lr", "optimizer_eps"))
    check_non_negative(config, ("max_grad_norm",))


@dataclass(frozen=True)
class CriticFitBlock:
    """The value critic's regression on each batch's targets (`updates.value_regression`)."""

    critic_lr: float = 1e-3
    """Adam learning rate of the critic's regression."""
    critic_epochs: int = 8
    """Passes of the critic optimizer over each batch."""
    critic_minibatches: int = 4
    """Critic minibatches per epoch; must divide num_envs × num_steps."""


def check_critic_fit(config, divides_batch: bool = True) -> None:
    check_positive_ints(config, ("critic_epochs", "critic_minibatches"))
    check_positive(config, ("critic_lr",))
    if divides_batch:
        check_divides(config, "critic_minibatches")


@dataclass(frozen=True)
class NaturalStepBlock:
    """A natural step of KL size ε: u = (F + λI)⁻¹ g by conjugate gradient."""

    max_kl: float = 0.02
    """ε: the step's second-order mean KL ½ΔθᵀFΔθ (12.12)."""
    cg_iters: int = 10
    """Conjugate-gradient iterations (≥ the number of parameters for an exact solve)."""
    cg_damping: float = 0.1
    """Damping λ added to the Fisher (or least-squares) system in the CG solve."""


def check_natural_step(config) -> None:
    check_positive_ints(config, ("cg_iters",))
    check_positive(config, ("max_kl",))
    check_non_negative(config, ("cg_damping",))


@dataclass(frozen=True)
class LineSearchBlock:
    """TRPO's backtracking line search (12.20)."""

    shrink: float = 0.5
    """Line-search factor α: the j-th candidate is θ + α^j Δθ."""
    max_backtracks: int = 10
    """Candidates after the full step; without an acceptable one the policy is kept."""


def check_line_search(config) -> None:
    if config.max_backtracks < 0:
        raise ConfigError(f"--max-backtracks must be non-negative, got {config.max_backtracks}")
    if not 0.0 < config.shrink < 1.0:
        raise ConfigError(f"--shrink must lie strictly between 0 and 1, got {config.shrink}")
