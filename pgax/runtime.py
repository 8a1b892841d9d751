"""Runtime settings pgax applies when it is imported, each with an environment variable to undo it.

Layer 0 (no pgax imports). Settings 1 and 2 concern JAX's CPU backend only; GPU programs are
untouched. Setting 3 applies to every backend.

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

3. JAX's persistent compilation cache, on by default (`PGAX_COMPILATION_CACHE=0` turns it off):
   compiled programs are kept in `$PGAX_CACHE_DIR` (default `$XDG_CACHE_HOME/pgax/jax`, i.e.
   `~/.cache/pgax/jax`), so a second run of the same program skips XLA compilation. Programs that
   compile in under a second are not stored. The cache is keyed by the program, the jax version
   and the device, so it never serves a program compiled for something else.
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


def compilation_cache_dir() -> str:
    """Where the persistent compilation cache lives: $PGAX_CACHE_DIR, else $XDG_CACHE_HOME/pgax/jax."""
    if os.environ.get("PGAX_CACHE_DIR"):
        return os.environ["PGAX_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pgax", "jax")


def enable_compilation_cache() -> str | None:
    """Turn on JAX's persistent compilation cache unless PGAX_COMPILATION_CACHE=0; returns its folder
    (None when off). A folder that cannot be created leaves the cache off, with a one-line warning."""
    if os.environ.get("PGAX_COMPILATION_CACHE", "1") == "0":
        return None
    import jax

    path = compilation_cache_dir()
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        warnings.warn(f"pgax: compilation cache off: cannot create {path} ({e.strerror}); set PGAX_CACHE_DIR to a "
                      "writable folder or PGAX_COMPILATION_CACHE=0 to silence this", RuntimeWarning, stacklevel=2)
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return path
