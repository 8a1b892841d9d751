import os

# Tests run on the CPU in float32 unless a test asks for float64 explicitly.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
