"""pgax: policy-gradient reinforcement learning in JAX, verified against exact math."""

from pgax import runtime as _runtime

__version__ = "0.1.0"

# CPU runtime settings, applied before JAX's CPU backend starts (see pgax/runtime.py for why and
# for the environment variables that undo them).
_runtime.configure_cpu_async_dispatch()
_runtime.unroll_threefry_on_cpu()
_runtime.enable_compilation_cache()


def load(run_dir, checkpoint="best", seed_index: int = 0):
    """The trained policy of a run folder: `pgax.load(run_dir).act(obs, deterministic=True)` (numpy in
    and out, the run's observation normalisation included). See `pgax.experiment.load_policy`."""
    from pgax.experiment import load_policy

    return load_policy(run_dir, checkpoint, seed_index)
