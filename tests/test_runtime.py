"""The CPU runtime settings of pgax/runtime.py: the unrolled threefry lowering is installed and draws
bit-for-bit the same random numbers as JAX's default rolled loop."""

import os
import subprocess
import sys

import jax
import numpy as np

import pgax  # noqa: F401  (applies the settings)

_DRAW = """
import jax, jax.numpy as jnp, numpy as np
key = jax.random.PRNGKey(123)
k1, k2 = jax.random.split(key)
out = np.concatenate([
    np.asarray(jax.random.normal(k1, (257,))),
    np.asarray(jax.random.uniform(k2, (3, 5))).ravel(),
    np.asarray(jax.random.permutation(k1, 64), np.float32),
    np.asarray(jax.random.split(k2, 7), np.float32).ravel(),
    np.asarray(jax.jit(lambda k: jax.random.categorical(k, jnp.zeros((50, 4))))(k2), np.float32),
])
"""


def _draws() -> np.ndarray:
    scope: dict = {}
    exec(_DRAW, scope)
    return scope["out"]


def test_threefry_is_unrolled_on_cpu():
    hlo = jax.jit(lambda k: jax.random.normal(k, (8,))).lower(jax.random.PRNGKey(0)).as_text()
    assert "while" not in hlo, "threefry still lowers to a while loop on the CPU"


def test_unrolled_threefry_draws_the_same_numbers_as_the_default(tmp_path):
    code = _DRAW + "\nimport sys; np.save(sys.argv[1], out)\n"
    path = str(tmp_path / "rolled.npy")
    env = dict(os.environ, PGAX_CPU_ROLLED_THREEFRY="1", JAX_PLATFORMS="cpu")
    # The reference process imports pgax with the default (rolled) lowering kept.
    subprocess.run([sys.executable, "-c", "import pgax\n" + code, path], check=True, env=env, timeout=120)
    reference = np.load(path)
    rolled_hlo = subprocess.run(
        [sys.executable, "-c", "import pgax, jax; print(jax.jit(lambda k: jax.random.normal(k, (8,)))"
                               ".lower(jax.random.PRNGKey(0)).as_text())"],
        check=True, env=env, timeout=120, capture_output=True, text=True).stdout
    assert "while" in rolled_hlo, "PGAX_CPU_ROLLED_THREEFRY=1 did not keep JAX's default lowering"
    np.testing.assert_array_equal(_draws(), reference)
