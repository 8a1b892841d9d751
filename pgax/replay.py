"""Replay buffers for the off-policy presets: a fixed-capacity ring of transitions, sampled uniformly.

Layer 0 (data). A thin layer over flashbax's item buffer, whose state is a pytree (so it lives in the
agent state, is saved in checkpoints, and is jitted and vmapped over seeds like the rest):

    buffer = replay_buffer(capacity, sample_size)
    state  = buffer.init(example)          # example: one transition (a pytree of arrays, no batch axis)
    state  = buffer.add(state, items)      # items: the same pytree with a leading axis [B, ...]
    sample = buffer.sample(state, key)     # [sample_size, ...], uniform over the stored transitions
    buffer.size(state)                     # how many transitions are stored (≤ capacity)
    samples = buffer.sample_after_add(state, items, keys)  # = sample(add(state, items), k) for k in keys

Once `capacity` transitions are stored, each new one overwrites the oldest. Sampling is with
replacement, each stored transition with probability 1 / size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pgax.batch import Batch

REPLAY_FIELDS = ("obs", "action", "reward", "terminated", "next_obs", "log_prob")
"""The fields of `Batch` a replay buffer stores (log_prob: the behaviour policy's, for importance weights)."""


class ReplayBuffer(NamedTuple):
    """Pure functions over a buffer state (see the module docstring)."""

    init: Callable
    add: Callable
    sample: Callable
    size: Callable
    sample_after_add: Callable
    capacity: int


def replay_buffer(capacity: int, sample_size: int) -> ReplayBuffer:
    """A uniform ring buffer of `capacity` transitions that samples `sample_size` at a time.

    Sampling from an empty buffer returns arbitrary (zero) transitions: callers start updating once
    `size(state)` has reached their `learning_starts`.
    """
    import flashbax  # deferred: only the off-policy presets need it

    if sample_size > capacity:
        raise ValueError(f"replay_buffer: sample_size {sample_size} exceeds the capacity {capacity}")
    inner = flashbax.make_item_buffer(max_length=int(capacity), min_length=1, sample_batch_size=int(sample_size),
                                      add_batches=True)

    def init(example):
        return inner.init(example)

    def add(state, items):
        return inner.add(state, items)

    def sample(state, key):
        return inner.sample(state, key).experience

    def size(state) -> jax.Array:
        return jnp.where(state.is_full, capacity, state.current_index).astype(jnp.int32)

    def sample_after_add(state, items, keys):
        """`sample(add(state, items), key)` for each key [K] -> [K, sample_size, ...], the same draws,
        gathered from `state` (rows of the insert window are taken from `items`) without forming the
        added buffer. A program that reads a buffer after inserting into it in place has to copy the
        whole buffer first; sampling this way lets the insert come after every read."""
        count = jax.tree_util.tree_leaves(items)[0].shape[0]
        # flashbax's draws on the added state (sequence length 1, period 1)
        after = state.current_index + count
        full = state.is_full | (after >= capacity)
        stored = jnp.where(full, capacity, after % capacity)
        head = jnp.where(full, after % capacity, 0)

        def rows(key):
            _, key_items = jax.random.split(key)
            return (head + jax.random.randint(key_items, (sample_size,), 0, stored)) % capacity

        physical = jax.vmap(rows)(keys)                              # [K, sample_size]
        offset = (physical - state.current_index) % capacity        # position in the insert window
        fresh = offset < count

        def take(stored_field, new_field):
            old = stored_field[0][physical]                          # [K, sample_size, ...]
            new = new_field[jnp.minimum(offset, count - 1)]
            mask = fresh.reshape(fresh.shape + (1,) * (old.ndim - 2))
            return jnp.where(mask, new, old)

        return jax.tree_util.tree_map(take, state.experience, items)

    return ReplayBuffer(init, add, sample, size, sample_after_add, int(capacity))


def transitions(batch: Batch) -> dict[str, Any]:
    """The transitions of a [T, N] batch as replay items with one leading axis [T · N, ...].

    Fields `REPLAY_FIELDS`; `terminated` as float32 (1 ends the episode: no bootstrap), so truncated
    steps bootstrap from their `next_obs`, the true final observation.
    """
    items = {name: getattr(batch, name) for name in REPLAY_FIELDS}
    items["terminated"] = items["terminated"].astype(jnp.float32)
    items["reward"] = items["reward"].astype(jnp.float32)
    return jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), items)


def example_transition(obs: jax.Array, action: jax.Array) -> dict[str, jax.Array]:
    """One zero transition shaped like a single observation [obs_dim] and action (for `init`)."""
    zero = jnp.zeros((), jnp.float32)
    return {"obs": jnp.zeros_like(obs), "action": jnp.zeros_like(action), "reward": zero, "terminated": zero,
            "next_obs": jnp.zeros_like(obs), "log_prob": zero}


def transition_bytes(obs_shape, obs_dtype, action_shape, action_dtype) -> int:
    """Bytes one stored transition takes: two observations, an action and three float32 scalars."""
    obs = int(np.prod(obs_shape, dtype=np.int64)) * np.dtype(obs_dtype).itemsize
    action = int(np.prod(action_shape, dtype=np.int64)) * np.dtype(action_dtype).itemsize
    return 2 * obs + action + 3 * 4
