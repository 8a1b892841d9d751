"""pgax: policy-gradient reinforcement learning in JAX, verified against exact math."""

import os as _os

__version__ = "0.1.0"

# JAX's asynchronous dispatch on the CPU backend can wedge a process forever (main thread parked
# in the executable's in-flight semaphore, every worker idle; upstream jax-ml/jax#25861). We saw
# it here in long benchmark loops, so pgax turns it off unless PGAX_CPU_ASYNC_DISPATCH=1. It must
# be set before the CPU backend starts, hence at import. Throughput is unchanged within noise
# (benchmarks/RESULTS.md).
if _os.environ.get("PGAX_CPU_ASYNC_DISPATCH", "0") != "1":
    import jax as _jax

    _jax.config.update("jax_cpu_enable_async_dispatch", False)
