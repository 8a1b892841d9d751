"""Checkpoints of a run: the whole training state, written atomically with orbax-checkpoint.

Layer 3. A run folder keeps

    checkpoints/latest/<iterations>/   the last `keep` checkpoints (schedule, end of run, signals)
    checkpoints/best/<iterations>/     the one with the best periodic-evaluation return

Each checkpoint has three items: `state` (the driver's training state: parameters, optimiser
states, every PRNG key, the env states of JAX-native envs, normaliser statistics; leaves with a
leading seed axis), `policy` (what acting needs: params and observation statistics) and `meta`
(JSON: algorithm, env, seeds, iterations done, metrics.csv / eval.csv byte offsets, the evaluation
return). orbax writes each into a temporary folder and renames it when complete, so a checkpoint
is either whole or absent. Restoring needs a state of the same structure (a fresh `driver.init()`
gives one); a checkpoint that does not fit raises `CheckpointError` with one line.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np

from pgax.errors import ConfigError


class CheckpointError(ConfigError):
    """A checkpoint that cannot be used: missing, damaged, or from another run."""


def _ocp():
    # orbax logs through absl: every save at INFO, and a failed write from each of its threads as an
    # ERROR with a traceback. pgax reports the failure itself, in one line, so only CRITICAL passes.
    logging.getLogger("absl").setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import orbax.checkpoint as ocp
    return ocp


def _to_numpy(tree: Any) -> Any:
    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


class CheckpointStore:
    """The checkpoints of one folder (`checkpoints/latest` or `checkpoints/best`), at most `keep`."""

    def __init__(self, directory: str | Path, keep: int | None = None, read_only: bool = False):
        ocp = _ocp()
        self.directory = Path(directory).absolute()  # orbax's storage layer needs absolute paths
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False,
                                               create=not read_only, read_only=read_only,
                                               cleanup_tmp_directories=not read_only)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._manager = ocp.CheckpointManager(self.directory, options=options,
                                                  item_names=("state", "policy", "meta"))

    def steps(self) -> list[int]:
        """Iteration counts of the complete checkpoints, ascending."""
        return sorted(self._manager.all_steps())

    def latest(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, state: Any, policy: Any, meta: dict) -> None:
        """Write checkpoint `step` (replacing one of the same step) and drop the oldest beyond `keep`."""
        ocp = _ocp()
        if step in self._manager.all_steps():
            self._manager.delete(step)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._manager.save(step, args=ocp.args.Composite(
                state=ocp.args.StandardSave(_to_numpy(state)), policy=ocp.args.StandardSave(_to_numpy(policy)),
                meta=ocp.args.JsonSave(meta)), force=True)
            self._manager.wait_until_finished()

    def meta(self, step: int) -> dict:
        ocp = _ocp()
        try:
            return dict(self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])
        except Exception as e:  # noqa: BLE001 - any failure to read is a damaged checkpoint
            raise CheckpointError(f"checkpoint {self.directory / str(step)} is damaged ({_first_line(e)}); "
                                  "use an earlier one (pgax eval/resume --checkpoint STEP)") from None

    def restore(self, step: int, item: str, like: Any) -> Any:
        """Item "state" or "policy" of checkpoint `step`, with the structure, shapes and dtypes of `like`."""
        ocp = _ocp()
        abstract = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype), like)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                restored = self._manager.restore(step, args=ocp.args.Composite(
                    **{item: ocp.args.StandardRestore(abstract)}))[item]
        except Exception as e:  # noqa: BLE001 - a structure mismatch or a damaged file: one line either way
            raise CheckpointError(f"checkpoint {self.directory / str(step)} does not fit this run or is damaged "
                                  f"({_first_line(e)}); use a checkpoint of this run") from None
        leaves, treedef = jax.tree_util.tree_flatten(restored)
        like_leaves = jax.tree_util.tree_leaves(like)
        if len(leaves) != len(like_leaves) or any(np.shape(a) != np.shape(b) for a, b in zip(leaves, like_leaves)):
            raise CheckpointError(f"checkpoint {self.directory / str(step)} holds a state of another shape; "
                                  "use a checkpoint of this run")
        return jax.tree_util.tree_map(lambda x, ref: jax.numpy.asarray(x, dtype=np.asarray(ref).dtype), restored, like)

    def close(self) -> None:
        self._manager.close()


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def resolve(run_dir: str | Path, which: str | int = "latest") -> tuple[CheckpointStore, int]:
    """(store, step) of checkpoint `which` of a run folder: "latest", "best" (falls back to latest when
    the run had no periodic evaluation) or an iteration count that one of them holds."""
    root = Path(run_dir) / "checkpoints"
    latest = CheckpointStore(root / "latest", read_only=True) if (root / "latest").is_dir() else None
    best = CheckpointStore(root / "best", read_only=True) if (root / "best").is_dir() else None
    if latest is None and best is None:
        raise CheckpointError(f"{run_dir} has no checkpoints (no {root}); train with pgax train first")
    if which == "best" and best is not None and best.latest() is not None:
        return best, best.latest()
    if which in ("best", "latest"):
        if latest is None or latest.latest() is None:
            raise CheckpointError(f"{root / 'latest'} holds no complete checkpoint; the run saved none")
        return latest, latest.latest()
    try:
        step = int(which)
    except ValueError:
        raise CheckpointError(f"--checkpoint {which!r}: use best, latest or an iteration count") from None
    for store in (latest, best):
        if store is not None and step in store.steps():
            return store, step
    have = sorted(set((latest.steps() if latest else []) + (best.steps() if best else [])))
    raise CheckpointError(f"--checkpoint {step}: no such checkpoint in {root}; there are {have}")
