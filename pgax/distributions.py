"""Action distributions as pytrees: Categorical, FactorisedCategorical (MultiDiscrete actions), DiagGaussian
and SquashedGaussian (tanh of a Gaussian).

Layer 0 (math). Each distribution is an immutable pytree, so it can be returned from a jitted
policy, vmapped over and differentiated through. Every method works on arbitrary leading batch
dimensions `[...]`; the event dimension of a DiagGaussian is the last axis.

Methods, with the equation each one implements:
    sample(key)   draw a ~ π
    log_prob(a)   log π(a)
    entropy()     H[π] = -E_π[log π]
    kl(other)     KL(self ‖ other) = E_self[log self - log other]
    mode()        the most likely action (used for deterministic evaluation)
    fisher_vector_product(tangent)  F v w.r.t. the distribution's own parameters, where F is the
                  Hessian of KL(self ‖ ·) at self (the Gauss-Newton building block of linalg)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

_LOG_2PI = math.log(2.0 * math.pi)


@struct.dataclass
class Categorical:
    """π(a) = softmax(logits)_a over the last axis.

    Attributes:
        logits: [..., num_actions] unnormalised log-probabilities.
    """

    logits: jax.Array

    @property
    def log_probs(self) -> jax.Array:
        """[..., num_actions] normalised log-probabilities log π(·)."""
        return jax.nn.log_softmax(self.logits, axis=-1)

    @property
    def probs(self) -> jax.Array:
        """[..., num_actions] probabilities π(·)."""
        return jax.nn.softmax(self.logits, axis=-1)

    def sample(self, key: jax.Array) -> jax.Array:
        """[...] int32 actions a ~ π (Gumbel-max)."""
        return jax.random.categorical(key, self.logits, axis=-1).astype(jnp.int32)

    def log_prob(self, action: jax.Array) -> jax.Array:
        """[...] log π(a) for integer actions `action: [...]`."""
        action = jnp.asarray(action, jnp.int32)
        return jnp.take_along_axis(self.log_probs, action[..., None], axis=-1)[..., 0]

    def entropy(self) -> jax.Array:
        """[...] H = -Σ_a π(a) log π(a)."""
        log_p = self.log_probs
        return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)

    def kl(self, other: Categorical) -> jax.Array:
        """[...] KL(self ‖ other) = Σ_a p(a) (log p(a) - log q(a))."""
        log_p, log_q = self.log_probs, other.log_probs
        return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)

    def mode(self) -> jax.Array:
        """[...] argmax_a π(a)."""
        return jnp.argmax(self.logits, axis=-1).astype(jnp.int32)

    def fisher_vector_product(self, tangent: Categorical) -> Categorical:
        """F v w.r.t. the logits: (diag(p) − p pᵀ) v, as a Categorical-shaped pytree [..., num_actions].

        This is the Hessian of KL(π_old ‖ π) in the logits at π = π_old: the Gauss-Newton factor
        that turns a Jacobian-vector product through a policy network into a Fisher product.
        `tangent.logits` holds v.
        """
        p, v = self.probs, tangent.logits
        return Categorical(p * v - p * jnp.sum(p * v, axis=-1, keepdims=True))


@struct.dataclass
class FactorisedCategorical:
    """π(a) = Π_d softmax(logits_d)_{a_d}: one independent categorical per action component (MultiDiscrete).

    Attributes:
        logits: [..., Σ_d n_d], the components' logits one after another.
        nvec: (n_1, ..., n_D), static: the number of choices of each component.

    Every quantity is the sum of the components' (they are independent): log π(a) = Σ_d log π_d(a_d),
    H = Σ_d H_d, KL(p ‖ q) = Σ_d KL(p_d ‖ q_d); the Fisher matrix in the logits is block-diagonal.
    """

    logits: jax.Array
    nvec: tuple[int, ...] = struct.field(pytree_node=False)

    def components(self) -> list[Categorical]:
        """The D categoricals, component d over logits[..., o_d : o_d + n_d]."""
        out, start = [], 0
        for n in self.nvec:
            out.append(Categorical(self.logits[..., start:start + n]))
            start += n
        return out

    def sample(self, key: jax.Array) -> jax.Array:
        """[..., D] int32 actions, a_d ~ π_d independently."""
        keys = jax.random.split(key, len(self.nvec))
        return jnp.stack([c.sample(k) for c, k in zip(self.components(), keys)], axis=-1)

    def log_prob(self, action: jax.Array) -> jax.Array:
        """[...] log π(a) = Σ_d log π_d(a_d) for integer actions `action: [..., D]`."""
        return sum(c.log_prob(action[..., d]) for d, c in enumerate(self.components()))

    def entropy(self) -> jax.Array:
        """[...] H = Σ_d H[π_d]."""
        return sum(c.entropy() for c in self.components())

    def kl(self, other: FactorisedCategorical) -> jax.Array:
        """[...] KL(p ‖ q) = Σ_d KL(p_d ‖ q_d)."""
        return sum(p.kl(q) for p, q in zip(self.components(), other.components()))

    def mode(self) -> jax.Array:
        """[..., D] the most likely action: argmax of each component."""
        return jnp.stack([c.mode() for c in self.components()], axis=-1)

    def fisher_vector_product(self, tangent: FactorisedCategorical) -> FactorisedCategorical:
        """F v w.r.t. the logits, block by block: (diag(p_d) − p_d p_dᵀ) v_d for each component d."""
        v = FactorisedCategorical(tangent.logits, self.nvec).components()
        blocks = [c.fisher_vector_product(t).logits for c, t in zip(self.components(), v)]
        return FactorisedCategorical(jnp.concatenate(blocks, axis=-1), self.nvec)


@struct.dataclass
class DiagGaussian:
    """π(a) = N(a; mean, diag(exp(log_std)²)), event dimension last.

    Attributes:
        mean: [..., action_dim].
        log_std: [..., action_dim] or [action_dim] (state-independent, broadcast against mean).
    """

    mean: jax.Array
    log_std: jax.Array

    @property
    def std(self) -> jax.Array:
        return jnp.exp(self.log_std)

    def _log_std_full(self) -> jax.Array:
        return jnp.broadcast_to(self.log_std, self.mean.shape)

    def sample(self, key: jax.Array) -> jax.Array:
        """[..., action_dim] a = mean + σ ε, ε ~ N(0, I)."""
        noise = jax.random.normal(key, self.mean.shape, self.mean.dtype)
        return self.mean + self.std * noise

    def sample_and_log_prob(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(a, log π(a)) with a = mean + σ ε: reparameterised in (mean, log_std)."""
        action = self.sample(key)
        return action, self.log_prob(action)

    def log_prob(self, action: jax.Array) -> jax.Array:
        """[...] log π(a) = Σ_i [-(a_i - μ_i)² / (2σ_i²) - log σ_i - ½ log 2π]."""
        log_std = self._log_std_full()
        z = (action - self.mean) * jnp.exp(-log_std)
        return jnp.sum(-0.5 * jnp.square(z) - log_std - 0.5 * _LOG_2PI, axis=-1)

    def entropy(self) -> jax.Array:
        """[...] H = Σ_i (log σ_i + ½ log 2πe)."""
        return jnp.sum(self._log_std_full() + 0.5 * (_LOG_2PI + 1.0), axis=-1)

    def kl(self, other: DiagGaussian) -> jax.Array:
        """[...] KL(p ‖ q) = Σ_i [log(σq/σp) + (σp² + (μp - μq)²) / (2σq²) - ½].

        With σp = σq = σ this is the lecture's closed form Σ_i (μp - μq)² / (2σ²).
        """
        log_sp, log_sq = self._log_std_full(), other._log_std_full()
        var_ratio = jnp.exp(2.0 * (log_sp - log_sq))
        mean_term = jnp.square(self.mean - other.mean) * jnp.exp(-2.0 * log_sq)
        return jnp.sum(log_sq - log_sp + 0.5 * (var_ratio + mean_term) - 0.5, axis=-1)

    def mode(self) -> jax.Array:
        """[..., action_dim] the mean."""
        return self.mean

    def fisher_vector_product(self, tangent: DiagGaussian) -> DiagGaussian:
        """F v w.r.t. (mean, log_std): diagonal, 1/σ² for the mean and 2 for log σ (per dimension).

        `tangent` holds (v_mean, v_log_std); the result has the same structure.
        """
        return DiagGaussian(tangent.mean * jnp.exp(-2.0 * self._log_std_full()), 2.0 * tangent.log_std)


@struct.dataclass
class SquashedGaussian:
    """a = c + h · tanh(u), u ~ N(mean, diag(exp(log_std)²)): a Gaussian squashed into the box (c − h, c + h).

    The soft actor-critic policy. Its density follows from the change of variables a = g(u):

        log π(a) = log N(u; mean, σ²) − Σ_i log(h_i (1 − tanh²(u_i)))

    Attributes:
        mean, log_std: [..., action_dim], the pre-squash Gaussian.
        center, half_width: [action_dim], c = (high + low) / 2 and h = (high − low) / 2 of the Box.
    """

    mean: jax.Array
    log_std: jax.Array
    center: jax.Array
    half_width: jax.Array

    def _gaussian(self) -> DiagGaussian:
        return DiagGaussian(self.mean, self.log_std)

    def _squash(self, u: jax.Array) -> jax.Array:
        return self.center + self.half_width * jnp.tanh(u)

    def _log_det(self, u: jax.Array) -> jax.Array:
        # log(1 − tanh²(u)) = 2 (log 2 − u − softplus(−2u)), stable for large |u|
        log_one_minus_tanh2 = 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))
        return jnp.sum(jnp.log(self.half_width) + log_one_minus_tanh2, axis=-1)

    def sample_and_log_prob(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(a [..., action_dim], log π(a) [...]) with a = c + h tanh(mean + σ ε): reparameterised in θ."""
        u = self._gaussian().sample(key)
        return self._squash(u), self._gaussian().log_prob(u) - self._log_det(u)

    def sample(self, key: jax.Array) -> jax.Array:
        """[..., action_dim] a = c + h tanh(mean + σ ε), ε ~ N(0, I)."""
        return self._squash(self._gaussian().sample(key))

    def log_prob(self, action: jax.Array) -> jax.Array:
        """[...] log π(a) with u = atanh((a − c) / h) (clipped just inside (−1, 1) at the box's edges)."""
        y = jnp.clip((action - self.center) / self.half_width, -1.0 + 1e-6, 1.0 - 1e-6)
        u = jnp.arctanh(y)
        return self._gaussian().log_prob(u) - self._log_det(u)

    def mode(self) -> jax.Array:
        """[..., action_dim] c + h tanh(mean): the image of the Gaussian's mode, the action deterministic
        evaluation takes."""
        return self._squash(self.mean)


Distribution = Categorical | FactorisedCategorical | DiagGaussian | SquashedGaussian
