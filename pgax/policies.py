"""Parameterised policies: `init(key, obs) -> params` and `apply(params, obs) -> distribution`.

Layer 1 (learning). An MLP actor (flax linen) with orthogonal initialisation, whose head is chosen
from the action space: a Categorical over logits for `Discrete`, one categorical per component for
`MultiDiscrete` (FactorisedCategorical), a DiagGaussian with a state-independent log standard
deviation for `Box`. For image observations a convolutional encoder (`conv_encoder`: the small
MinAtar CNN or the Nature DQN CNN) turns the flat observation back into an image and its features
feed the MLP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pgax.distributions import Categorical, DiagGaussian, Distribution, FactorisedCategorical, SquashedGaussian
from pgax.spaces import Box, Discrete, ImageLayout, MultiDiscrete, Space

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {"tanh": jnp.tanh, "relu": nn.relu}


class Model(NamedTuple):
    """A pair of pure functions: `init(key, obs) -> params`, `apply(params, obs) -> output`."""

    init: Callable
    apply: Callable


class MLP(nn.Module):
    """Hidden layers with orthogonal(√2) weights and zero biases, then a linear output layer.

    obs: [..., obs_dim] → [..., out_dim]. The output layer's orthogonal gain is `out_scale`.
    """

    hidden_sizes: Sequence[int]
    out_dim: int
    activation: str = "tanh"
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for size in self.hidden_sizes:
            x = act(nn.Dense(size, kernel_init=nn.initializers.orthogonal(np.sqrt(2.0)),
                             bias_init=nn.initializers.zeros)(x))
        return nn.Dense(self.out_dim, kernel_init=nn.initializers.orthogonal(self.out_scale),
                        bias_init=nn.initializers.zeros)(x)


CONV_STACKS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "cnn": ((16, 3, 1),),
    "nature_cnn": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),
}
"""Convolution stacks as (features, kernel size, stride) per layer: `cnn` is the MinAtar network (one
3 × 3 layer of 16 filters, Young & Tian 2019), `nature_cnn` the DQN Nature network (Mnih et al. 2015)."""


class PatchConv(nn.Module):
    """A VALID 2-D convolution of an [N, H, W, C] image computed as patches × kernel (im2col).

    y[n, u, v, o] = b_o + Σ_{i<k, j<k, c} x[n, s·u + i, s·v + j, c] K[i, j, c, o], with K [k, k, C, F]
    (orthogonal(√2)) and b [F] (zeros), so the output is [N, (H − k)//s + 1, (W − k)//s + 1, F]. The
    k² strided slices are concatenated into [N, h, w, k²C] and multiplied by K reshaped to [k²C, F]:
    equal to `lax.conv_general_dilated`, and unlike XLA's CPU convolution it stays fast inside the
    scans of a training iteration.
    """

    features: int
    kernel_size: int
    stride: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, s = self.kernel_size, self.stride
        height, width, channels = x.shape[-3:]
        out_h, out_w = (height - k) // s + 1, (width - k) // s + 1
        kernel = self.param("kernel", nn.initializers.orthogonal(np.sqrt(2.0)), (k, k, channels, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        patches = jnp.concatenate([x[..., i:i + s * (out_h - 1) + 1:s, j:j + s * (out_w - 1) + 1:s, :]
                                   for i in range(k) for j in range(k)], axis=-1)
        return patches @ kernel.reshape(k * k * channels, self.features) + bias


class ConvEncoder(nn.Module):
    """Image features φ(s) for a flat observation: [..., H·W·C] → [..., F].

    The vector is reshaped to the image of `layout` (transposed to H × W × C when channels-first) and
    multiplied by `layout.scale`; then each layer of `stack` is a `PatchConv` and a ReLU, and the last
    feature map is flattened (F = h · w · features).
    """

    layout: ImageLayout
    stack: tuple[tuple[int, int, int], ...]

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        lead = obs.shape[:-1]
        image = obs.reshape((-1,) + ((self.layout.channels, self.layout.height, self.layout.width)
                                     if self.layout.channels_first else
                                     (self.layout.height, self.layout.width, self.layout.channels)))
        if self.layout.channels_first:
            image = jnp.moveaxis(image, 1, -1)
        x = image * self.layout.scale
        for features, kernel, stride in self.stack:
            x = nn.relu(PatchConv(features, kernel, stride)(x))
        return x.reshape(lead + (-1,))


def conv_encoder(layout: ImageLayout, kind: str) -> ConvEncoder:
    """The encoder `kind` ("cnn" or "nature_cnn") for images of `layout`.

    Raises ValueError for an unknown kind or an image too small for the stack's kernels and strides.
    """
    if kind not in CONV_STACKS:
        raise ValueError(f"unknown convolutional network {kind!r}; use one of {sorted(CONV_STACKS)}")
    height, width = layout.height, layout.width
    for _, kernel, stride in CONV_STACKS[kind]:
        height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        if height < 1 or width < 1:
            raise ValueError(f"a {layout.height} × {layout.width} image is too small for {kind} "
                             f"(kernels {[k for _, k, _ in CONV_STACKS[kind]]}, strides "
                             f"{[s for _, _, s in CONV_STACKS[kind]]}); use a smaller network or mlp")
    return ConvEncoder(layout, CONV_STACKS[kind])


def _features(encoder: nn.Module | None, obs: jax.Array) -> jax.Array:
    return obs if encoder is None else encoder(obs)


class CategoricalActor(nn.Module):
    """π(a|s) = softmax(MLP(φ(s))), φ the identity or a `ConvEncoder`; the small output gain (0.01)
    starts the policy near uniform."""

    num_actions: int
    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    encoder: nn.Module | None = None

    @nn.compact
    def __call__(self, obs: jax.Array) -> Categorical:
        features = _features(self.encoder, obs)
        return Categorical(MLP(self.hidden_sizes, self.num_actions, self.activation, 0.01)(features))


class FactorisedCategoricalActor(nn.Module):
    """π(a|s) = Π_d softmax(MLP(φ(s))_d)_{a_d}: one torso, Σ_d n_d logits, one categorical per component."""

    nvec: tuple[int, ...]
    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    encoder: nn.Module | None = None

    @nn.compact
    def __call__(self, obs: jax.Array) -> FactorisedCategorical:
        features = _features(self.encoder, obs)
        return FactorisedCategorical(MLP(self.hidden_sizes, sum(self.nvec), self.activation, 0.01)(features),
                                     self.nvec)


class GaussianActor(nn.Module):
    """π(a|s) = N(MLP(φ(s)), diag(σ²)) with a learned state-independent log σ (initially `init_log_std`)."""

    action_dim: int
    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    init_log_std: float = 0.0
    encoder: nn.Module | None = None

    @nn.compact
    def __call__(self, obs: jax.Array) -> DiagGaussian:
        mean = MLP(self.hidden_sizes, self.action_dim, self.activation, 0.01)(_features(self.encoder, obs))
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,))
        return DiagGaussian(mean, jnp.broadcast_to(log_std, mean.shape))


def mlp_policy(action_space: Space, hidden_sizes: Sequence[int] = (64, 64), activation: str = "tanh",
               init_log_std: float = 0.0, encoder: nn.Module | None = None) -> Model:
    """The MLP actor for `action_space`: Categorical for Discrete, FactorisedCategorical for MultiDiscrete,
    DiagGaussian for Box; with `encoder` (a `ConvEncoder`) the MLP reads the image features.

    Returns a `Model` whose `apply(params, obs: [..., obs_dim])` gives a distribution with batch
    shape [...].
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; use one of {sorted(ACTIVATIONS)}")
    if isinstance(action_space, Discrete):
        module = CategoricalActor(action_space.n, tuple(hidden_sizes), activation, encoder)
    elif isinstance(action_space, MultiDiscrete):
        module = FactorisedCategoricalActor(tuple(action_space.nvec), tuple(hidden_sizes), activation, encoder)
    elif isinstance(action_space, Box):
        module = GaussianActor(action_space.dim, tuple(hidden_sizes), activation, init_log_std, encoder)
    else:
        raise TypeError(f"no policy for action space {action_space!r}; pgax supports Discrete, MultiDiscrete and Box")

    def apply(params, obs: jax.Array) -> Distribution:
        return module.apply(params, obs)

    return Model(module.init, apply)


def linear_gaussian_policy(obs_dim: int = 1, init: tuple[float, ...] | None = None) -> Model:
    """The seeds' linear Gaussian policy π_θ(a|s) = N(θ_{1:d}·s, θ_{d+1}²) for a scalar action.

    θ is a flat array [w_1, ..., w_d, σ]; the standard deviation is the parameter itself (its sign
    is irrelevant, log σ = log |θ_{d+1}|), as in the book's simple regulator, whose optimum is
    θ = [−1, 0]. `init(key, obs)` returns `init` (default: zeros and σ = 1).
    """
    theta0 = jnp.asarray(init if init is not None else (0.0,) * obs_dim + (1.0,), jnp.float32)
    if theta0.shape != (obs_dim + 1,):
        raise ValueError(f"linear_gaussian_policy: init must have {obs_dim + 1} entries, got {theta0.shape}")

    def init_fn(key, obs=None):
        del key, obs
        return theta0

    def apply(theta, obs):
        mean = jnp.sum(obs * theta[:obs_dim], axis=-1, keepdims=True)
        log_std = jnp.broadcast_to(jnp.log(jnp.abs(theta[obs_dim])), mean.shape)
        return DiagGaussian(mean, log_std)

    return Model(init_fn, apply)


def tabular_softmax_policy(num_states: int, num_actions: int) -> Model:
    """π_θ(a|s) = softmax(θ[s])_a for one-hot observations: `apply(θ [S, A], obs [..., S])`."""

    def init_fn(key, obs=None):
        del key, obs
        return jnp.zeros((num_states, num_actions), jnp.float32)

    def apply(theta, obs):
        return Categorical(obs @ theta)

    return Model(init_fn, apply)


def linear_gain_policy(obs_dim: int, action_dim: int, init_log_std: float = 0.0) -> Model:
    """Linear Gaussian state feedback u = −K x + σ ξ, ξ ~ N(0, I): π(u|x) = N(−Kx, diag(σ²)).

    The LQR policy class (Fazel et al. 2018; pgax.envs.lqr), for any Box action of dimension m:
    params {"gain": K [m, n], "log_std": log σ [m]}, initially K = 0 and log σ = `init_log_std`.
    `apply(params, obs [..., n])` gives a DiagGaussian with batch shape [...].
    """

    def init_fn(key, obs=None):
        del key, obs
        return {"gain": jnp.zeros((action_dim, obs_dim), jnp.float32),
                "log_std": jnp.full((action_dim,), init_log_std, jnp.float32)}

    def apply(params, obs):
        mean = -obs @ params["gain"].T
        return DiagGaussian(mean, jnp.broadcast_to(params["log_std"], mean.shape))

    return Model(init_fn, apply)


LOG_STD_RANGE = (-5.0, 2.0)
"""The range of the state-dependent log σ of `squashed_gaussian_policy` (a tanh maps the network into it)."""


def _box_center_half_width(action_space: Box) -> tuple[jax.Array, jax.Array]:
    low, high = np.asarray(action_space.low, np.float32), np.asarray(action_space.high, np.float32)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(f"a squashed or deterministic actor needs a bounded Box; this one is {action_space!r}")
    return jnp.asarray((high + low) / 2.0), jnp.asarray((high - low) / 2.0)


class SquashedGaussianActor(nn.Module):
    """π(a|s) = c + h tanh(N(μ(s), diag σ(s)²)): mean and log σ from one MLP, log σ squashed into LOG_STD_RANGE."""

    action_dim: int
    hidden_sizes: Sequence[int]
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jax.Array):
        out = MLP(self.hidden_sizes, 2 * self.action_dim, self.activation, 0.01)(obs)
        mean, raw_log_std = jnp.split(out, 2, axis=-1)
        low, high = LOG_STD_RANGE
        return mean, low + 0.5 * (high - low) * (jnp.tanh(raw_log_std) + 1.0)


def squashed_gaussian_policy(action_space: Box, hidden_sizes: Sequence[int] = (256, 256),
                             activation: str = "relu") -> Model:
    """The soft actor-critic policy on a bounded Box: `apply(params, obs [..., obs_dim])` gives a
    `SquashedGaussian` with batch shape [...] whose samples lie inside the box."""
    if not isinstance(action_space, Box):
        raise TypeError(f"squashed_gaussian_policy needs a Box action space, got {action_space!r}")
    center, half_width = _box_center_half_width(action_space)
    module = SquashedGaussianActor(action_space.dim, tuple(hidden_sizes), activation)

    def apply(params, obs: jax.Array) -> SquashedGaussian:
        mean, log_std = module.apply(params, obs)
        return SquashedGaussian(mean, log_std, center, half_width)

    return Model(module.init, apply)


def deterministic_policy(action_space: Box, hidden_sizes: Sequence[int] = (256, 256),
                         activation: str = "relu") -> Model:
    """μ_θ(s) = c + h tanh(MLP(s)), a deterministic actor inside a bounded Box (DDPG, TD3):
    `apply(params, obs [..., obs_dim]) -> [..., action_dim]`."""
    if not isinstance(action_space, Box):
        raise TypeError(f"deterministic_policy needs a Box action space, got {action_space!r}")
    center, half_width = _box_center_half_width(action_space)
    module = MLP(tuple(hidden_sizes), action_space.dim, activation, 0.01)

    def apply(params, obs: jax.Array) -> jax.Array:
        return center + half_width * jnp.tanh(module.apply(params, obs))

    return Model(module.init, apply)
