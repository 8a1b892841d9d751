import os
import shutil
import tempfile

# Tests run on the CPU in float32 unless a test asks for float64 explicitly.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Each pytest run starts from an empty compilation cache of its own (shared by its xdist workers and
# the `pgax` subprocesses its tests start), so the suite's time is the cold time and no test depends
# on programs compiled by an earlier run. PGAX_TEST_CACHE_DIR names a cache to keep instead.
if "PGAX_TEST_CACHE_DIR" in os.environ:
    os.environ["PGAX_CACHE_DIR"] = os.environ["PGAX_TEST_CACHE_DIR"]
elif "PGAX_TEST_SESSION_CACHE" not in os.environ:  # the controller (or a run without xdist) makes it
    os.environ["PGAX_TEST_SESSION_CACHE"] = os.environ["PGAX_CACHE_DIR"] = tempfile.mkdtemp(prefix="pgax-test-cache-")
    _OWN_CACHE = os.environ["PGAX_CACHE_DIR"]


def pytest_unconfigure(config):
    if globals().get("_OWN_CACHE") and not hasattr(config, "workerinput"):
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
