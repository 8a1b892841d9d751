"""pgax: policy-gradient reinforcement learning in JAX, verified against exact math."""

from pgax import runtime as _runtime

__version__ = "0.1.0"

# CPU runtime settings, applied before JAX's CPU backend starts (see pgax/runtime.py for why and
# for the environment variables that undo them).
_runtime.configure_cpu_async_dispatch()
_runtime.unroll_threefry_on_cpu()
