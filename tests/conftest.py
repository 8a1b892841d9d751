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


# `--dist loadgroup` sends the tests of one `xdist_group` to one worker by suffixing their node ids
# with "@group". pytest-xdist 3.8 writes the suffix to `item._nodeid`, which pytest 9 no longer reads
# (a node id is the structured `item._id`), so the marks had no effect. This puts the suffix where
# pytest 9 reads it; with an xdist that does it itself, the id already ends in "@group" and is kept.
def _grouped_node_id(node_id, group: str):
    import dataclasses

    from _pytest.nodeid import NodeId

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class GroupedNodeId(NodeId):
        group: str = ""

        def __str__(self) -> str:
            return f"{NodeId.__str__(self)}@{self.group}"

    return GroupedNodeId(path=node_id.path, names=node_id.names, params=node_id.params, group=group)


def pytest_collection_modifyitems(config, items):
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        groups = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
        if groups and "@" not in item.nodeid and hasattr(item, "_id"):
            item._id = _grouped_node_id(item._id, "_".join(sorted(groups)))
