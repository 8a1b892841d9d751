"""CPU runtime settings pgax applies when it is imported, each with an environment variable to undo it.

Layer 0 (no pgax imports). Both settings concern JAX's CPU backend only; GPU programs are untouched.

1. Asynchronous dispatch off (`PGAX_CPU_ASYNC_DISPATCH=1` keeps it on). JAX's asynchronous dispatch
   on the CPU backend can wedge a process forever (main thread parked in the executable's
   in-flight semaphore, every worker idle; upstream jax-ml/jax#25861). We saw it in long benchmark
   loops. It must be set before the CPU backend starts, hence at import. Throughput is the same
   within noise (benchmarks/RESULTS.md).

2. Threefry unrolled on the CPU (`PGAX_CPU_ROLLED_THREEFRY=1` keeps JAX's rolled loop). JAX lowers
   the threefry2x32 hash behind every `jax.random` call to a 5-iteration `while` loop on the CPU
   (to save compile time) and to straight-line code on GPUs. Each such loop runs as separate
   kernels, one round at a time, and a policy step draws random numbers on every environment step:
   in the Gymnasium host driver the per-step jitted policy call took 117-146 µs with the loop and
   44-47 µs unrolled (Hopper-v5, 1 env; benchmarks/RESULTS.md), and the jitted CartPole PPO
   program compiles faster. The hash and so every random number are bit-for-bit the same
   (tests/test_runtime.py); only the lowering changes. The switch uses JAX's lowering registry
   (`jax._src`, a private API of the pinned jax); if that API moves, pgax warns once and keeps the
   default.
"""

from __future__ import annotations

import os
import warnings


def configure_cpu_async_dispatch() -> bool:
    """Turn JAX's CPU asynchronous dispatch off unless PGAX_CPU_ASYNC_DISPATCH=1; True if turned off."""
    if os.environ.get("PGAX_CPU_ASYNC_DISPATCH", "0") == "1":
        return False
    import jax

    jax.config.update("jax_cpu_enable_async_dispatch", False)
    return True


def unroll_threefry_on_cpu() -> bool:
    """Lower threefry2x32 on the CPU to its unrolled (straight-line) form, the one JAX uses on GPUs.

    Returns True if the lowering was installed, False if PGAX_CPU_ROLLED_THREEFRY=1 or the private
    API is missing (then with a one-line warning naming the variable that silences it).
    """
    if os.environ.get("PGAX_CPU_ROLLED_THREEFRY", "0") == "1":
        return False
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32 as threefry

        mlir.register_lowering(threefry.threefry2x32_p, threefry._threefry2x32_lowering_rule, platform="cpu")
    except (ImportError, AttributeError) as e:  # pragma: no cover - depends on the jax version
        warnings.warn(f"pgax: could not unroll threefry on the CPU ({e}); random numbers are unchanged, only "
                      "slower to draw. Set PGAX_CPU_ROLLED_THREEFRY=1 to silence this.", RuntimeWarning, stacklevel=2)
        return False
    return True
